"""The whole evaluation of a run as one JSON document and one self-contained HTML page.

:func:`build_report` gathers every diagnostic of ``analysis/`` into a JSON-ready dict (keys in
docs/formats.md); :func:`render_html` turns it, with Plotly figures and thumbnails, into a
single HTML file a presenter can open offline or send by mail: plotly.js is embedded once and
thumbnails are inline base64 JPEGs, so the page fetches nothing.
"""
from __future__ import annotations

import base64
import html
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import calibration, confusion, coverage, metrics
from analysis.compare import compare
from analysis.cooccurrence import cooccurrence, rank_pairs
from analysis.evalset import EvalSet, Policy, build_evalset, targets
from analysis.ranking import label_issues, top_losses
from analysis.sequences import frame_accuracy, suspects
from analysis.slices import slice_table
from data.files import atomic_write

log = logging.getLogger(__name__)

#: Target precisions of the automation-coverage table: 95 % and the volunteers' 96.6 %
#: (Norouzzadeh et al. 2018).
TARGET_PRECISIONS = (0.95, 0.966)
THUMB_SIZE = 224
#: The report's ``slices`` block: JSON key -> ``EvalSet.meta`` column, in display order.
SLICE_DIMENSIONS = {"site": "location", "season": "season", "day_night": "day_night",
                    "frame_num": "frame_num", "split": "split"}


# ------------------------------------------------------------------------------------------
# JSON
# ------------------------------------------------------------------------------------------

def _plain(value):
    """A JSON-ready copy: numpy scalars/arrays to Python, NaN/inf to None, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray, pd.Index, pd.Series)):
        return [_plain(v) for v in (value.tolist() if hasattr(value, "tolist") else value)]
    if isinstance(value, pd.DataFrame):
        return [_plain(r) for r in value.to_dict("records")]
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


def _select_split(ev: EvalSet, split: str | None) -> EvalSet:
    if split is None:
        return ev
    values = ev.meta["split"].astype("string")
    mask = values.eq(split).fillna(False).to_numpy(bool)
    if not mask.any():
        known = sorted(values.dropna().unique().tolist())
        raise ValueError(f"--split {split!r}: no prediction has that split (splits: {known})")
    return ev.subset(mask)


def _with_context(ev: EvalSet, table: pd.DataFrame) -> pd.DataFrame:
    """Add ``file_name``, ``seq_id`` and ``frame_num`` of each ``image_id`` (for thumbnails)."""
    if table.empty:
        return table
    rows = ev.rows_of(table["image_id"])
    extra = {c: ev.meta[c].take(rows).astype(object).to_numpy()
             for c in ("file_name", "seq_id", "frame_num") if c in ev.meta.columns
             and c not in table.columns}
    return table.assign(**extra)


def build_report(dataset, run, *, compare_run=None, split: str | None = None,
                 policy: Policy = "set", aggregation: str = "mean", n_resamples: int = 200,
                 empty_class: str | None = "empty", k: int = 100,
                 corrections: pd.DataFrame | None = None) -> dict:
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
    k : int
        Rows kept in ``sequence_suspects``, ``label_issues`` and ``top_losses``.
    corrections : DataFrame, optional
        Label corrections (see :func:`analysis.evalset.build_evalset`).

    Returns
    -------
    dict
        Keys ``run, policy, image_level, sequence_level, frame_accuracy, slices,
        most_confused, confusion, cooccurrence, sequence_suspects, label_issues, top_losses,
        calibration, coverage, automation`` and, with ``compare_run``, ``comparison``; see
        docs/formats.md ("The report").
    """
    ev = _select_split(build_evalset(dataset, run, corrections=corrections), split)
    if len(ev) == 0:
        raise ValueError(f"{run.path}: no prediction of a labelled dataset image to evaluate")
    if empty_class is not None and empty_class not in ev.classes:
        log.warning("no class %r: inherited-label suspects skipped", empty_class)
        empty_class = None
    y_true, y_pred = targets(ev, policy=policy)
    cm = metrics.confusion(y_true, y_pred, ev.n_classes)
    sus = suspects(ev, empty_class=empty_class)
    report = {
        "run": run_summary(ev, run, split=split),
        "policy": policy,
        "image_level": metrics.evaluate(ev, policy=policy, level="image",
                                        n_resamples=n_resamples),
        "sequence_level": metrics.evaluate(ev, policy=policy, level="sequence",
                                           aggregation=aggregation, n_resamples=n_resamples),
        "frame_accuracy": frame_accuracy(ev, policy=policy),
        "slices": slice_scores(ev, policy=policy, split=split),
        "most_confused": confusion.most_confused(cm, ev.classes, k=20),
        "confusion": {"classes": ev.classes, "counts": cm},
        "cooccurrence": {"pairs": rank_pairs(ev, policy=policy, k=20),
                         "classes": ev.classes,
                         "image": cooccurrence(ev, by="image"),
                         "capture": cooccurrence(ev, by="capture")},
        "sequence_suspects": _with_context(ev, sus.head(k)),
        "label_issues": _with_context(ev, label_issues(ev, empty_class=empty_class, k=k,
                                                       sequence_suspects=sus)),
        "top_losses": _with_context(ev, top_losses(ev, k=k)),
        "calibration": _calibration(ev, policy),
        "coverage": coverage.coverage_curve(ev, policy=policy),
        "automation": _automation(ev, policy),
    }
    if compare_run is not None:
        ev_a = _select_split(build_evalset(dataset, compare_run, corrections=corrections), split)
        report["comparison"] = {"baseline": compare_run.run_id, "run": run.run_id,
                                **_comparison(ev_a, ev, policy=policy, n_resamples=n_resamples)}
    return _plain(report)


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


def _comparison(ev_a: EvalSet, ev_b: EvalSet, *, policy: Policy, n_resamples: int) -> dict:
    """Per-class F1 change of B against A with intervals; fixed and broken counts."""
    out = compare(ev_a, ev_b, policy=policy, n_resamples=n_resamples)
    # Ids of every fixed/broken image would make the JSON as large as the dataset.
    return {**{k: v for k, v in out.items() if k not in ("fixed", "broken")},
            "fixed_examples": out["fixed"][:20], "broken_examples": out["broken"][:20]}


def _calibration(ev: EvalSet, policy: Policy) -> dict:
    return {"ece": calibration.ece(ev, policy=policy),
            "per_class": calibration.per_class_ece(ev, policy=policy),
            "bins": calibration.reliability(ev, policy=policy)}


def _automation(ev: EvalSet, policy: Policy) -> list[dict]:
    out = []
    for target in TARGET_PRECISIONS:
        table = coverage.class_thresholds(ev, target_precision=target, policy=policy)
        out.append({**table.attrs,
                    "per_class": table[table["n_predicted"] > 0]})
    return out


def write_json(report: dict, path: str | Path) -> Path:
    """Write the report as strict JSON (no NaN tokens), atomically."""
    return _write_text(Path(path), json.dumps(report, indent=1, allow_nan=False))


def write_html(page: str, path: str | Path) -> Path:
    """Write the HTML page atomically."""
    return _write_text(Path(path), page)


def _write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text)
    return path


# ------------------------------------------------------------------------------------------
# HTML
# ------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
 max-width:1200px;padding:0 24px 48px;color:#1d2733;line-height:1.45}
h1{margin:24px 0 4px}h2{margin-top:40px;border-bottom:2px solid #3b75af;padding-bottom:4px}
.sub{color:#5b6773}.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{border:1px solid #d5dce3;border-radius:8px;padding:10px 16px;min-width:150px}
.card .v{font-size:1.6em;font-weight:600}.card .l{color:#5b6773;font-size:.85em}
table{border-collapse:collapse;margin:12px 0;font-size:.9em}
th,td{border-bottom:1px solid #e3e8ee;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f6f9}td.n{text-align:right;font-variant-numeric:tabular-nums}
img.t{max-width:160px;max-height:120px;border-radius:4px;display:block}
.grid{display:flex;flex-wrap:wrap;gap:10px}.cell{width:200px;font-size:.8em}
.slices{display:flex;flex-wrap:wrap;gap:0 32px}.slices h3{margin:12px 0 0}
.cell img{max-width:200px;max-height:150px;border-radius:4px}.cell .note{word-break:break-all}
.na{width:160px;height:90px;background:#eef1f4;color:#8a96a3;display:flex;
 align-items:center;justify-content:center;font-size:.8em;border-radius:4px}
.note{color:#5b6773;font-size:.9em}
"""


def _esc(value) -> str:
    return html.escape("" if value is None else str(value))


def _fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if spec == "list":
        return _esc(", ".join(map(str, value)))
    if spec == "ci":
        return "–" if value[0] is None else f"{value[0]:.3f}–{value[1]:.3f}"
    return _esc(format(value, spec) if spec else value)


def _table(rows: Sequence[dict], columns: Sequence[tuple[str, str, str]], *,
           thumbs: dict[str, str | None] | None = None, empty: str = "None.") -> str:
    """An HTML table; ``columns`` = (key, heading, format spec); optional thumbnail column."""
    if not rows:
        return f'<p class="note">{_esc(empty)}</p>'
    head = ("<th>image</th>" if thumbs is not None else "") + "".join(
        f"<th>{_esc(h)}</th>" for _, h, _ in columns)
    body = []
    for r in rows:
        cells = [_thumb_tag(thumbs.get(r.get("image_id")))] if thumbs is not None else []
        for key, _, spec in columns:
            cls = ' class="n"' if spec and spec not in ("list", "") else ""
            cells.append(f"<td{cls}>{_fmt(r.get(key), spec)}</td>")
        body.append("<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>"
                                     for c in cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _thumb_tag(uri: str | None, cls: str = "t") -> str:
    if uri is None:
        return '<div class="na">image unavailable</div>'
    return f'<img class="{cls}" src="{uri}" alt="thumbnail">'


def thumbnails(rows: Sequence[dict], images_root: str | Path | None, *,
               size: int = THUMB_SIZE) -> dict[str, str | None]:
    """``image_id -> data:image/jpeg;base64,...`` (None where the image cannot be opened).

    Thumbnails come from :func:`data.images.thumbnail` (cached under the work folder); an
    image that is missing, truncated or outside the root gets no picture, and the report goes on.
    """
    from data.images import ImageError, UnsafePath, thumbnail
    from data.paths import thumbnail_dir

    out: dict[str, str | None] = {}
    failed = []
    cache = thumbnail_dir()
    for r in rows:
        iid, name = r.get("image_id"), r.get("file_name")
        if iid in out:
            continue
        out[iid] = None
        if images_root is None or not name:
            continue
        try:
            path = thumbnail(images_root, name, size=size, cache_dir=cache)
            out[iid] = "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode()
        except (ImageError, UnsafePath, OSError) as exc:
            failed.append(f"{name}: {exc}")
    if failed:
        log.warning("%d thumbnail(s) unavailable, e.g. %s", len(failed), failed[0])
    return out


class _Figures:
    """Plotly figures as HTML fragments; plotly.js is embedded once, in the first."""

    def __init__(self) -> None:
        self.first = True

    def __call__(self, fig) -> str:
        import plotly.io as pio

        frag = pio.to_html(fig, include_plotlyjs=self.first, full_html=False,
                           config={"displaylogo": False, "responsive": True})
        self.first = False
        return f'<div class="fig">{frag}</div>'


def _cards(items: Sequence[tuple[str, str]]) -> str:
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="v">{_esc(v)}</div><div class="l">{_esc(l)}</div></div>'
        for v, l in items) + "</div>"


def _pct(x) -> str:
    return "–" if x is None else f"{x:.1%}"


def _ci(ci) -> str:
    return "" if not ci or ci[0] is None else f" [{ci[0]:.3f}, {ci[1]:.3f}]"


def _frame(rows, numeric: Sequence[str] = ()) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for c in numeric:
        if c in df.columns:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return df


def _header(rep: dict) -> str:
    run = rep["run"]
    img, seq = rep["image_level"], rep["sequence_level"]
    model = run["model"].get("arch") or "?"
    miss = run["missing_predictions"]
    lines = [f"<h1>TrapLens report: {_esc(run['run_id'])}</h1>",
             f'<p class="sub">model {_esc(model)} · {run["n_evaluated"]:,} images evaluated'
             f'{" (split " + _esc(run["split"]) + ")" if run["split"] else ""} · scoring policy '
             f'<b>{_esc(rep["policy"])}</b> · run created {_esc(run["created_at"])}</p>']
    if miss["count"]:
        lines.append(f'<p class="note">{miss["count"]:,} dataset image(s) have no prediction '
                     f'(e.g. {_esc(miss["examples"][0])}); they are not evaluated.</p>')
    lines.append(_cards([
        (_pct(img["accuracy"]), "image accuracy"),
        (f"{img['macro_f1']:.3f}", "image macro F1" + _ci(img.get("macro_f1_ci"))),
        (_pct(img["balanced_accuracy"]), "balanced accuracy"),
        (f"{seq['macro_f1']:.3f}", f"capture macro F1 ({seq.get('aggregation')})"
         + _ci(seq.get("macro_f1_ci"))),
        (f"{rep['calibration']['ece']:.3f}" if rep["calibration"]["ece"] is not None else "–",
         "expected calibration error")]))
    return "\n".join(lines)


_PER_CLASS = [("class", "class", ""), ("support", "support", ","),
              ("precision", "precision", ".3f"),
              ("recall", "recall", ".3f"), ("f1", "F1", ".3f"), ("f1_ci", "F1 95% CI", "ci")]
_SUSPECTS = [("kind", "kind", ""), ("score", "score", ".3f"), ("reason", "reason", ""),
             ("suggested", "suggested", ""), ("seq_id", "capture", "")]
_ISSUES = [("score", "score", ".3f"), ("given", "given", "list"),
           ("suggested", "suggested", ""), ("reason", "reason", "")]
_PAIRS = [("a", "A", ""), ("b", "B", ""), ("images_together", "images with both", ","),
          ("a_error_with_b", "A error with B", ".1%"),
          ("a_error_without_b", "A error without B", ".1%"), ("a_to_b", "A→B", ","),
          ("a_to_b_explained", "A→B explained by B", ".1%")]


_SLICE_TITLES = {"site": "Sites", "season": "Seasons", "day_night": "Day / night",
                 "frame_num": "Frame position", "split": "Splits"}
_SLICE_COLUMNS = [("value", "slice", ""), ("n", "images", ","), ("accuracy", "accuracy", ".3f"),
                  ("macro_f1", "macro F1", ".3f")]


def _slices_html(block: dict, *, rows: int = 10) -> str:
    """One small worst-first table per slicing dimension, side by side."""
    parts = [f"<div><h3>{_esc(_SLICE_TITLES.get(key, key))}</h3>"
             + _table(table[:rows], _SLICE_COLUMNS, empty="Not in this dataset.")
             + (f'<p class="note">{len(table) - rows} better slice(s) not shown.</p>'
                if len(table) > rows else "") + "</div>"
             for key, table in block.items()]
    return '<div class="slices">' + "".join(parts) + "</div>"


def _present(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows and columns of classes with any count, and their indices."""
    keep = np.flatnonzero((matrix.sum(axis=0) + matrix.sum(axis=1)) > 0)
    return matrix[np.ix_(keep, keep)], keep


def _section(title: str, *parts: str, intro: str = "") -> str:
    note = f'<p class="note">{intro}</p>' if intro else ""
    return f"<section><h2>{_esc(title)}</h2>{note}{''.join(parts)}</section>"


def _gallery(rows: Sequence[dict], thumbs: dict[str, str | None]) -> str:
    cells = []
    for r in rows:
        caption = (f"{_esc(r['predicted'])} / {_esc(r['actual'])} / {r['loss']:.2f} / "
                   f"{r['p_predicted']:.2f} / {r['p_actual']:.2f}")
        cells.append(f'<div class="cell">{_thumb_tag(thumbs.get(r["image_id"]), "g")}'
                     f'<div>{caption}</div><div class="note">{_esc(r["image_id"])}</div></div>')
    return '<div class="grid">' + "".join(cells) + "</div>"


def render_html(report: dict, *, images_root: str | Path | None = None,
                max_thumbnails: int = 24) -> str:
    """One self-contained HTML page from :func:`build_report`'s dict.

    Parameters
    ----------
    report : dict
        The JSON report (as built or as read back from disk).
    images_root : str or Path, optional
        Where the dataset's ``file_name`` paths live; without it (or for unreadable images)
        rows show "image unavailable".
    max_thumbnails : int
        Rows shown (with thumbnails) in each of the suspects, label-issue and top-loss
        sections; the JSON holds the full lists.

    Returns
    -------
    str
        The page: plotly.js embedded once, thumbnails as base64 JPEG, no external resource.
    """
    from analysis import plots

    fig = _Figures()
    rep = report
    img = rep["image_level"]
    conf = rep["confusion"]
    cm, keep = _present(np.array(conf["counts"]))
    classes = [conf["classes"][i] for i in keep]
    # 61 classes of which a slice holds a handful: show the classes that occur.
    rows = [r for r in img["per_class"] if r["class"] in set(classes)]
    per_class = _frame(rows, ["f1", "precision", "recall"])
    shown = {key: rep[key][:max_thumbnails]
             for key in ("sequence_suspects", "label_issues", "top_losses")}
    thumbs = thumbnails([r for rows in shown.values() for r in rows], images_root)
    cooc = rep["cooccurrence"]
    co, co_keep = _present(np.array(cooc["capture"]))
    calib = rep["calibration"]
    sections = [
        _header(rep),
        _section("Per-class metrics", fig(plots.f1_bar(per_class, title="F1 per class "
                                                       "(95% capture-bootstrap interval)")),
                 _table(rows, _PER_CLASS),
                 intro=f"{len(classes)} of {len(conf['classes'])} classes occur (as truth or "
                       f"prediction); the others are left out here."),
        _section("Slices", _slices_html(rep.get("slices") or {}),
                 intro="Macro F1 per site, season, day/night and frame position (and split "
                       "when the report covers several), worst first: where the model needs "
                       "attention. Small slices are noisy: read the image count too."),
        _section("Confusion", fig(plots.confusion_figure(cm, classes, log_color=True,
                                                         title="Confusion (counts, log colour)")),
                 _table(rep["most_confused"], [("actual", "actual", ""),
                                               ("predicted", "predicted", ""),
                                               ("count", "count", ",")]),
                 intro="Rows actual, columns predicted; the table lists the most frequent "
                       "confusions."),
        _section("Captures (sequences)",
                 fig(plots.frame_accuracy_figure(_frame(rep["frame_accuracy"], ["accuracy"]))),
                 _table([{"level": "image", **img}, {"level": "capture", **rep["sequence_level"]}],
                        [("level", "level", ""), ("n", "n", ","), ("accuracy", "accuracy", ".3f"),
                         ("macro_f1", "macro F1", ".3f"), ("macro_f1_ci", "95% CI", "ci")]),
                 "<h3>Sequence suspects</h3>",
                 _table(shown["sequence_suspects"], _SUSPECTS, thumbs=thumbs,
                        empty="No sequence suspects."),
                 intro="A drop at frames 2-3 is the signature of labels inherited from the "
                       "capture. Suspects: frames the model calls empty while another frame "
                       "of the capture shows the labelled species (inherited_label), and "
                       "species the model is confident of but nobody annotated "
                       "(missed_species)."),
        _section("Co-occurrence",
                 fig(plots.cooccurrence_figure(co, [cooc["classes"][i] for i in co_keep],
                                               title="Species annotated together (captures)")),
                 _table(cooc["pairs"], _PAIRS, empty="No two classes are annotated together."),
                 intro="A→B: images whose first label is A predicted B; 'explained' is the "
                       "share of them where B is annotated too (errors under the primary "
                       "policy, correct under the set policy)."),
        _section("Relabel candidates", _table(shown["label_issues"], _ISSUES, thumbs=thumbs),
                 intro="Confident learning (cleanlab, out-of-sample predictions), sequence "
                       "suspects and top losses merged, one row per image; score = how "
                       "strongly the model doubts the given label."),
        _section("Top losses", _gallery(shown["top_losses"], thumbs),
                 intro="predicted / actual / loss / probability of predicted / probability "
                       "of actual"),
        _section("Calibration",
                 fig(plots.reliability_figure(_frame(calib["bins"], ["lo", "hi", "confidence",
                                                                     "accuracy", "count"]),
                                              ece=calib["ece"])),
                 _table(sorted((r for r in calib["per_class"] if r["support"]),
                               key=lambda r: -(r["ece"] or 0))[:15],
                        [("class", "class", ""), ("ece", "ECE", ".4f"),
                         ("support", "support", ",")])),
        _section("Automation coverage",
                 fig(plots.coverage_figure(_frame(rep["coverage"], ["coverage", "accuracy"]),
                                           targets=TARGET_PRECISIONS)),
                 _table(rep["automation"], [("target_precision", "target precision", ".1%"),
                                            ("n_accepted", "auto-labelled", ","),
                                            ("n_left", "left for people", ","),
                                            ("accuracy_accepted", "accuracy of auto-labelled",
                                             ".2%")]),
                 intro="Accept the model's label when its confidence reaches a per-class "
                       "threshold chosen for the target precision; 96.6 % is the volunteers' "
                       "accuracy (Norouzzadeh et al. 2018)."),
    ]
    if "comparison" in rep:
        cmp_ = rep["comparison"]
        sections.append(_section(
            f"Comparison with {cmp_['baseline']}",
            _cards([(f"{cmp_['macro_f1_delta']:+.3f}", "macro F1 change"
                     + _ci(cmp_.get("macro_f1_delta_ci"))),
                    (f"{cmp_['n_fixed']:,}", "images fixed"),
                    (f"{cmp_['n_broken']:,}", "images broken")]),
            fig(plots.compare_f1_figure(cmp_))))
    title = f"TrapLens report: {rep['run']['run_id']}"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(sections)
            + '<footer class="note"><p>Generated by TrapLens (python -m analysis report); '
              "self-contained, readable offline.</p></footer></body></html>\n")
