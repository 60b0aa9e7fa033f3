"""The figure of a report section, drawn from the JSON report alone.

The story (:mod:`analysis.story`) names, for each step, the report section whose figure goes
under its headline (``Step.figure``); :func:`section_figure` draws it with the builders of
:mod:`analysis.plots`, the same the dashboard pages and the HTML report use. The Story page,
the report's story section and the downloads all call it, so they show one figure.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from analysis import plots


def _frame(rows, numeric=()) -> pd.DataFrame:
    df = pd.DataFrame(list(rows))
    for c in numeric:
        if c in df.columns:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return df


def present(matrix) -> tuple[np.ndarray, np.ndarray]:
    """The rows and columns of classes with any count, and their indices.

    >>> m, keep = present([[2, 0, 1], [0, 0, 0], [0, 0, 3]])
    >>> keep.tolist(), m.tolist()
    ([0, 2], [[2, 1], [0, 3]])
    """
    matrix = np.asarray(matrix)
    keep = np.flatnonzero((matrix.sum(axis=0) + matrix.sum(axis=1)) > 0)
    return matrix[np.ix_(keep, keep)], keep


def _per_class(rep: Mapping):
    conf = rep.get("confusion") or {}
    rows = rep["image_level"].get("per_class") or []
    if conf.get("counts"):
        _, keep = present(conf["counts"])
        shown = {conf["classes"][i] for i in keep}
        rows = [r for r in rows if r["class"] in shown]
    else:
        rows = [r for r in rows if r.get("support")]
    if not rows:
        return None
    return plots.f1_bar(_frame(rows, ["f1", "precision", "recall"]),
                        title="F1 per class (95 % capture-bootstrap interval)")


def _confusion(rep: Mapping):
    conf = rep["confusion"]
    cm, keep = present(conf["counts"])
    return plots.confusion_figure(cm, [conf["classes"][i] for i in keep], log_color=True,
                                  title="Confusion (counts, log colour)")


def _cooccurrence(rep: Mapping):
    cooc = rep["cooccurrence"]
    co, keep = present(cooc["capture"])
    return plots.cooccurrence_figure(co, [cooc["classes"][i] for i in keep],
                                     title="Species annotated together (captures)")


def _frames(rep: Mapping):
    return plots.frame_accuracy_figure(_frame(rep["frame_accuracy"], ["accuracy"]))


def _coverage(rep: Mapping):
    targets = [a["target_precision"] for a in rep.get("automation") or []]
    return plots.coverage_figure(_frame(rep["coverage"], ["coverage", "accuracy"]),
                                 targets=targets)


#: ``Step.figure`` -> (report keys it needs, builder).
FIGURES: dict[str, tuple[tuple[str, ...], Callable]] = {
    "image_level": (("image_level",), _per_class),
    "confusion": (("confusion",), _confusion),
    "cooccurrence": (("cooccurrence",), _cooccurrence),
    "frame_accuracy": (("frame_accuracy",), _frames),
    "coverage": (("coverage",), _coverage),
}


def section_figure(report: Mapping, name: str):
    """The Plotly figure of report section ``name`` (a ``Step.figure``), or None when the
    report lacks what it needs or no figure is drawn for it (``generalisation``, ``ecology``).

    >>> section_figure({"frame_accuracy": [{"frame_num": 1, "n": 10, "accuracy": 0.9}]},
    ...                "frame_accuracy").layout.title.text
    'Accuracy by frame position'
    >>> section_figure({}, "confusion") is None
    True
    """
    keys, build = FIGURES.get(name, ((), None))
    if build is None or not all(report.get(k) for k in keys):
        return None
    return build(report)
