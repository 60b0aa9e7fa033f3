"""The JSON report: every diagnostic of a run, from the same analysis functions the dashboard
pages call.

:func:`build_report` joins the run with the dataset once (an :class:`ReportContext`), then
computes each key the sections of :data:`analysis.report.sections.SECTIONS` name with its
builder in :data:`BUILDERS`; keys come out in the order of :data:`BUILDERS`, the order of the
table in docs/formats.md ("The report").
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import calibration, confusion, coverage, metrics
from analysis.compare import compare
from analysis.cooccurrence import cooccurrence, rank_pairs
from analysis.decision import (certified_automation, ecology_report, fit_run_temperature,
                               generalisation_report, run_train_sites)
from analysis.evalset import (EvalSet, Policy, at_level, build_evalset, label_space_summary,
                              select_split, targets)
from analysis.ranking import label_issues, top_losses
from analysis.report.sections import section_keys
from analysis.sequences import frame_accuracy, suspects
from analysis.slices import slice_table
from data.files import atomic_write

log = logging.getLogger(__name__)

#: Target precisions of the automation-coverage table: 95 % and the volunteers' 96.6 %
#: (Norouzzadeh et al. 2018).
TARGET_PRECISIONS = coverage.TARGET_PRECISIONS
#: The report's ``slices`` block: JSON key -> ``EvalSet.meta`` column, in display order.
SLICE_DIMENSIONS = {"site": "location", "season": "season", "day_night": "day_night",
                    "frame_num": "frame_num", "split": "split"}
#: Rows of the most-confused and co-occurrence tables.
TOP_PAIRS = 20
#: Top losses kept in the report when every suspect is asked for (``k=None``).
TOP_LOSSES = 100
#: Precision the ``certified_automation`` block certifies (and the ecology's "model where
#: certified" variant uses).
CERTIFY_TARGET = 0.95
#: Fixed and broken image ids kept in the ``comparison`` block (all of them would make the
#: JSON as large as the dataset).
COMPARISON_EXAMPLES = 20


def plain(value: Any) -> Any:
    """A JSON-ready copy: numpy scalars/arrays to Python, NaN/inf to None, tuples to lists,
    DataFrames to lists of records, timestamps to ISO 8601.

    >>> plain({"a": np.float32(0.5), "b": (np.int64(1), float("nan"))})
    {'a': 0.5, 'b': [1, None]}
    """
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray, pd.Index, pd.Series)):
        return [plain(v) for v in (value.tolist() if hasattr(value, "tolist") else value)]
    if isinstance(value, pd.DataFrame):
        return [plain(r) for r in value.to_dict("records")]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    return value


@dataclass
class ReportContext:
    """What every builder reads: the evaluated images and the report's options.

    The targets, the confusion matrix and the sequence suspects are computed once, on first
    use, and shared by the builders that need them.
    """

    ev: EvalSet
    run: Any
    dataset: Any
    split: str | None = None
    policy: Policy = "set"
    aggregation: str = "mean"
    n_resamples: int = 200
    empty_class: str | None = "empty"
    k: int | None = 100
    compare_run: Any = None
    corrections: pd.DataFrame | None = None
    ev_label: EvalSet | None = None
    mapping: Any = None
    score_unknown: bool = False
    taxon_level: str = "label"
    full: EvalSet | None = None           # every prediction (the calibration fit's val rows)
    train_sites_file: str | None = None   # --train-sites, for imported runs
    store_calibration: bool = True        # write the fitted temperature beside the run

    @cached_property
    def targets(self) -> tuple[np.ndarray, np.ndarray]:
        return targets(self.ev, policy=self.policy)

    @cached_property
    def cm(self) -> np.ndarray:
        y_true, y_pred = self.targets
        return metrics.confusion(y_true, y_pred, self.ev.n_classes)

    @cached_property
    def suspects(self) -> pd.DataFrame:
        return suspects(self.ev, empty_class=self.empty_class)

    @cached_property
    def certification(self) -> dict:
        return certified_automation(self.ev, target=CERTIFY_TARGET)


def run_summary(ev: EvalSet, run, *, split: str | None) -> dict:
    """The report's ``run`` block: what was evaluated, from which files."""
    man = run.manifest
    model = man.get("model") or {}
    dataset = man.get("dataset") or {}
    return {"run_id": run.run_id, "path": str(run.path), "created_at": man.get("created_at"),
            "model": {k: model.get(k) for k in ("arch", "checkpoint", "input_size")},
            "dataset": {"paths": dataset.get("paths"), "images_root": dataset.get("images_root")},
            "n_classes": len(run.classes), "n_predictions": int(len(run.image_ids)),
            "n_evaluated": int(len(ev)), "split": split,
            "missing_predictions": {"count": len(ev.missing), "examples": ev.missing[:10]},
            "unreadable": len(man.get("unreadable") or [])}




def _with_context(ev: EvalSet, table: pd.DataFrame) -> pd.DataFrame:
    """Add ``file_name``, ``seq_id`` and ``frame_num`` of each ``image_id`` (for thumbnails)."""
    if table.empty:
        return table
    rows = (table.index.to_numpy() if table.index.name == "row"  # top_losses' own rows
            else ev.rows_of(table["image_id"]))
    extra = {c: ev.meta[c].take(rows).astype(object).to_numpy()
             for c in ("file_name", "seq_id", "frame_num") if c in ev.meta.columns
             and c not in table.columns}
    return table.assign(**extra)


def slice_scores(ev: EvalSet, *, policy: Policy = "set", split: str | None = None) -> dict:
    """The report's ``slices`` block: per-slice scores for every slicing dimension, worst first.

    Parameters
    ----------
    ev : EvalSet
        The evaluated images (already restricted to ``split`` when one was chosen).
    policy : {"set", "primary"}
    split : str, optional
        The split the report is restricted to; the ``split`` dimension is left out then (it
        would hold that one split).

    Returns
    -------
    dict
        ``{dimension: [{value, n, accuracy, balanced_accuracy, macro_f1, weighted_f1}]}`` for
        the dimensions of :data:`SLICE_DIMENSIONS` (``site`` is ``meta["location"]``), rows
        sorted by macro F1 ascending (:func:`analysis.slices.slice_table`); a dimension whose
        column the dataset lacks maps to an empty list. Images without a value form a slice
        whose ``value`` is None.
    """
    out: dict[str, list] = {}
    for key, column in SLICE_DIMENSIONS.items():
        if key == "split" and split is not None:
            continue
        if column not in ev.meta.columns:
            out[key] = []
            continue
        table = slice_table(ev, by=column, policy=policy).rename(columns={column: "value"})
        out[key] = table.to_dict("records")
    return out


# --- builders: one per JSON key, ReportContext -> JSON-able value (None: key left out) ------

def _evaluate(level: str) -> Callable[[ReportContext], dict]:
    def build(ctx: ReportContext) -> dict:
        extra = {"aggregation": ctx.aggregation} if level == "sequence" else {}
        return metrics.evaluate(ctx.ev, policy=ctx.policy, level=level,
                                n_resamples=ctx.n_resamples, **extra)
    return build


def _cooccurrence(ctx: ReportContext) -> dict:
    return {"pairs": rank_pairs(ctx.ev, policy=ctx.policy, k=TOP_PAIRS),
            "classes": ctx.ev.classes,
            "image": cooccurrence(ctx.ev, by="image"),
            "capture": cooccurrence(ctx.ev, by="capture")}


def _label_issues(ctx: ReportContext) -> pd.DataFrame:
    # k None ("--suspects all"): every suspect, every wrongly predicted image as a top loss.
    k_losses = 100 if ctx.k is not None else None
    return _with_context(ctx.ev, label_issues(ctx.ev, empty_class=ctx.empty_class, k=ctx.k,
                                              k_losses=k_losses,
                                              sequence_suspects=ctx.suspects))


def _calibration(ctx: ReportContext) -> dict:
    ev, policy = ctx.ev, ctx.policy
    return {"ece": calibration.ece(ev, policy=policy),
            "per_class": calibration.per_class_ece(ev, policy=policy),
            "bins": calibration.reliability(ev, policy=policy)}


def _comparison(ctx: ReportContext) -> dict | None:
    """Per-class F1 change of this run (B) against ``compare_run`` (A) with intervals; fixed
    and broken counts with a few examples."""
    if ctx.compare_run is None:
        return None
    ev_a = select_split(build_evalset(ctx.dataset, ctx.compare_run,
                                       corrections=ctx.corrections,
                                       score_unknown=ctx.score_unknown), ctx.split)
    ev_b = ctx.ev_label if ctx.ev_label is not None else ctx.ev
    out = compare(ev_a, ev_b, policy=ctx.policy, n_resamples=ctx.n_resamples,
                  taxon_level=ctx.taxon_level)
    rows = {k: out.pop(f"{k}_rows_b") for k in ("fixed", "broken")}
    return {"baseline": ctx.compare_run.run_id, "run": ctx.run.run_id, **out,
            **{f"{k}_examples": ev_b.image_ids[r[:COMPARISON_EXAMPLES]].tolist()
               for k, r in rows.items()}}


def _generalisation(ctx: ReportContext) -> dict | None:
    sites, source = run_train_sites(ctx.run, ctx.dataset, train_sites_file=ctx.train_sites_file)
    if sites is None:
        log.warning("no training sites (no split.parquet, no train rows, no --train-sites): "
                    "generalisation left out")
        return None
    return generalisation_report(ctx.ev, train_sites=sites, source=source, policy=ctx.policy,
                                 n_resamples=ctx.n_resamples)


def _calibration_fit(ctx: ReportContext) -> dict | None:
    out = fit_run_temperature(ctx.full if ctx.full is not None else ctx.ev, ctx.ev,
                              run_dir=ctx.run.path, store=ctx.store_calibration)
    if out is None:
        log.warning("no validation split: calibration_fit left out")
    return out


#: JSON key -> builder, in the key order of the report.
BUILDERS: dict[str, Callable[[ReportContext], Any]] = {
    "run": lambda ctx: run_summary(ctx.ev, ctx.run, split=ctx.split),
    "policy": lambda ctx: ctx.policy,
    "label_space": lambda ctx: {**label_space_summary(
        ctx.ev_label if ctx.ev_label is not None else ctx.ev), "taxon_level": ctx.taxon_level},
    "image_level": _evaluate("image"),
    "sequence_level": _evaluate("sequence"),
    "frame_accuracy": lambda ctx: frame_accuracy(ctx.ev, policy=ctx.policy),
    "slices": lambda ctx: slice_scores(ctx.ev, policy=ctx.policy, split=ctx.split),
    "most_confused": lambda ctx: confusion.most_confused(ctx.cm, ctx.ev.classes, k=TOP_PAIRS),
    "confusion": lambda ctx: {"classes": ctx.ev.classes, "counts": ctx.cm},
    "cooccurrence": _cooccurrence,
    "sequence_suspects": lambda ctx: _with_context(
        ctx.ev, ctx.suspects if ctx.k is None else ctx.suspects.head(ctx.k)),
    "label_issues": _label_issues,
    "top_losses": lambda ctx: _with_context(ctx.ev, top_losses(ctx.ev, k=ctx.k or TOP_LOSSES)),
    "calibration": _calibration,
    "coverage": lambda ctx: coverage.coverage_curve(ctx.ev, policy=ctx.policy),
    "automation": lambda ctx: coverage.automation_summary(ctx.ev, targets_=TARGET_PRECISIONS,
                                                          policy=ctx.policy),
    "generalisation": _generalisation,
    "certified_automation": lambda ctx: ctx.certification,
    "calibration_fit": _calibration_fit,
    "ecology": lambda ctx: ecology_report(ctx.ev, certification=ctx.certification,
                                          n_resamples=ctx.n_resamples),
    "comparison": _comparison,
}


def build_report(dataset, run, *, compare_run=None, split: str | None = None,
                 policy: Policy = "set", aggregation: str = "mean", n_resamples: int = 200,
                 empty_class: str | None = "empty", k: int | None = 100,
                 corrections: pd.DataFrame | None = None, mapping: Any = None,
                 score_unknown: bool = False, taxon_level: str = "label",
                 train_sites_file: str | Path | None = None,
                 store_calibration: bool = True) -> dict:
    """Every diagnostic of a run, JSON-ready.

    Parameters
    ----------
    dataset : data.cct.Dataset
    run : data.runs.Run
    compare_run : data.runs.Run, optional
        A second run over the same dataset: adds the ``comparison`` block (this run = B,
        ``compare_run`` = A, the baseline).
    split : str, optional
        Evaluate only predictions of this split (e.g. "test").
    policy : {"set", "primary"}
    aggregation : {"mean", "max", "vote"}
        Frame aggregation for ``sequence_level``.
    n_resamples : int
        Bootstrap resamples for the intervals.
    empty_class : str or None
        The "nothing here" class (inherited labels are skipped when it is not a class).
    k : int or None
        Rows kept in ``sequence_suspects``, ``label_issues`` and ``top_losses``; None: every
        sequence suspect and relabel candidate (``top_losses`` keeps :data:`TOP_LOSSES`).
    corrections : DataFrame, optional
        Label corrections (see :func:`analysis.evalset.build_evalset`).
    mapping : str, Path or dict, optional
        Model label -> dataset class (default: the run folder's ``mapping.csv`` if any).
    score_unknown : bool
        Score images whose only labels the model cannot predict as errors (default: leave
        them out; ``label_space`` counts them either way).
    taxon_level : {"label", "species", "genus", "family", "order", "class"}
        Every metric section at this level (:func:`analysis.evalset.at_level`).
    train_sites_file : path, optional
        Sites the model trained on (one per line, or a CSV with a ``site``/``location``
        column), for imported runs without ``split.parquet``.
    store_calibration : bool
        Write the fitted temperature to the run's ``calibration.json``.

    Returns
    -------
    dict
        Keys ``run, policy, label_space, image_level, sequence_level, frame_accuracy, slices,
        most_confused, confusion, cooccurrence, sequence_suspects, label_issues, top_losses,
        calibration, coverage, automation, generalisation, certified_automation,
        calibration_fit, ecology`` and, with ``compare_run``, ``comparison``; see
        docs/formats.md ("The report").
    """
    full = build_evalset(dataset, run, corrections=corrections, mapping=mapping,
                         score_unknown=score_unknown)
    ev_label = select_split(full, split)
    ev = at_level(ev_label, taxon_level)
    if len(ev) == 0:
        raise ValueError(f"{run.path}: no prediction of a labelled dataset image to evaluate")
    if empty_class is not None and empty_class not in ev.classes:
        log.warning("no class %r: inherited-label suspects skipped", empty_class)
        empty_class = None
    ctx = ReportContext(ev=ev, run=run, dataset=dataset, split=split, policy=policy,
                        aggregation=aggregation, n_resamples=n_resamples,
                        empty_class=empty_class, k=k, compare_run=compare_run,
                        corrections=corrections, ev_label=ev_label, mapping=mapping,
                        score_unknown=score_unknown, taxon_level=taxon_level, full=full,
                        train_sites_file=None if train_sites_file is None
                        else str(train_sites_file), store_calibration=store_calibration)
    wanted = set(section_keys())
    report = {}
    for key, build in BUILDERS.items():
        if key in wanted:
            value = build(ctx)
            if value is not None:
                report[key] = value
    return plain(report)


#: The report keys the story (:mod:`analysis.story`) and its figures read.
STORY_KEYS = ("image_level", "sequence_level", "frame_accuracy", "most_confused", "confusion",
              "cooccurrence", "sequence_suspects", "coverage", "automation")


def story_report(ev: EvalSet, *, run_id: str, split: str | None = None, policy: Policy = "set",
                 aggregation: str = "mean", n_resamples: int = 200,
                 empty_class: str | None = "empty") -> dict:
    """The part of :func:`build_report` the story needs (:data:`STORY_KEYS` and a ``run`` block
    with ``run_id`` and ``split``), over an already filtered ``ev``: what the dashboard's Story
    page tells, computed by the same builders as the report.

    Returns
    -------
    dict
        JSON-ready, keys ``run`` and :data:`STORY_KEYS`.
    """
    if empty_class is not None and empty_class not in ev.classes:
        empty_class = None
    ctx = ReportContext(ev=ev, run=None, dataset=None, split=split, policy=policy,
                        aggregation=aggregation, n_resamples=n_resamples,
                        empty_class=empty_class)
    report = {"run": {"run_id": run_id, "split": split, "n_evaluated": int(len(ev))}}
    report.update({key: BUILDERS[key](ctx) for key in STORY_KEYS})
    return plain(report)


def write_json(report: dict, path: str | Path) -> Path:
    """Write the report as strict JSON (no NaN tokens), atomically."""
    return atomic_write(path, json.dumps(report, indent=1, allow_nan=False))
