"""The HTML report: one self-contained page drawn from the JSON report alone.

:func:`render_html` draws every section of :data:`analysis.report.sections.SECTIONS` with its
renderer in :data:`RENDERERS` (JSON in, HTML out: no analysis here, only Plotly figure
builders from :mod:`analysis.plots`), so a report read back from disk renders the same page.
plotly.js is embedded once and thumbnails are inline base64 JPEGs: the page fetches nothing,
a presenter can open it offline or send it by mail.
"""
from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import plots
from analysis.format import fastai_caption
from analysis.report.figures import present, section_figure
from analysis.report.images import thumbnails
from analysis.report.sections import SECTIONS, THUMBNAIL_KEYS, Section
from analysis.story import build_story
from data.files import atomic_write

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
.step{margin:24px 0 36px}.headline{font-size:1.45em;font-weight:600;margin:6px 0}
.weak{display:inline-block;background:#fff3cd;color:#7a5b00;border-radius:4px;padding:1px 8px;
 font-size:.8em}
"""


# --- building blocks ------------------------------------------------------------------------

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


def _cards(items: Sequence[tuple[str, str]]) -> str:
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="v">{_esc(v)}</div><div class="l">{_esc(l)}</div></div>'
        for v, l in items) + "</div>"


def _note(text: str) -> str:
    return f'<p class="note">{text}</p>'


def _pct(x) -> str:
    return "–" if x is None else f"{x:.1%}"


def _ci(ci) -> str:
    return "" if not ci or ci[0] is None else f" [{ci[0]:.3f}, {ci[1]:.3f}]"


def _frame(rows, numeric: Sequence[str] = ()) -> pd.DataFrame:
    """Report rows as a DataFrame for a figure builder (None -> NaN in ``numeric`` columns)."""
    df = pd.DataFrame(rows)
    for c in numeric:
        if c in df.columns:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return df


class Page:
    """What renderers share while one page is drawn: figures (plotly.js embedded once, in
    the first), the thumbnails, and the rows shown with them."""

    def __init__(self, report: dict, *, images_root: str | Path | None,
                 max_thumbnails: int) -> None:
        self.first = True
        self.shown = {key: report[key][:max_thumbnails] for key in THUMBNAIL_KEYS}
        self.thumbs = thumbnails([r for rows in self.shown.values() for r in rows],
                                 images_root)

    def fig(self, fig) -> str:
        """A Plotly figure as an HTML fragment."""
        frag = plots.figure_html(fig, include_plotlyjs=self.first)
        self.first = False
        return f'<div class="fig">{frag}</div>'


# --- renderers: one per section, (report, page) -> HTML parts -------------------------------

def _summary(rep: dict, page: Page) -> list[str]:
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
    return ["\n".join(lines)]


def _label_space(rep: dict, page: Page) -> list[str]:
    ls = rep["label_space"]
    unknown, extra = ls["unknown_to_model"], ls["extra_in_model"]
    what = "scored as errors" if ls["scored_as_errors"] else "left out of the metrics"
    lines = [_cards([
        (_esc(ls["kind"]), "run classes vs dataset classes"),
        (f"{len(ls['run_classes'])} / {len(ls['dataset_classes'])}", "run / dataset classes"),
        (f"{ls['n_not_scorable']:,}", f"images not scorable by this model ({what})"),
        (_esc(ls["taxon_level"]), "taxonomic level")])]
    if ls["mapping"]:
        lines.append(_note(f"Mapping file {_esc(ls['mapping'])}: {len(ls['mapped'])} model "
                           "label(s) renamed or merged."))
    if not unknown and not extra:
        lines.append(_note("The model predicts exactly the dataset's classes."))
        return lines
    lines.append("<h3>Dataset classes the model cannot predict</h3>")
    lines.append(_table(unknown, [("class", "class", ""), ("n_images", "images", ",")]))
    lines.append("<h3>Model labels outside the dataset (unmapped)</h3>")
    lines.append(_table(extra, [("class", "label", ""), ("n_predicted", "predicted", ",")]))
    if ls["not_scorable_examples"]:
        lines.append("<h3>Not scorable (examples)</h3>")
        lines.append(_table(ls["not_scorable_examples"],
                            [("image_id", "image", ""), ("labels", "labels", "")]))
    return lines


_PER_CLASS = [("class", "class", ""), ("support", "support", ","),
              ("precision", "precision", ".3f"),
              ("recall", "recall", ".3f"), ("f1", "F1", ".3f"), ("f1_ci", "F1 95% CI", "ci")]


def _per_class(rep: dict, page: Page) -> list[str]:
    conf = rep["confusion"]
    _, keep = present(np.array(conf["counts"]))
    classes = {conf["classes"][i] for i in keep}
    # 61 classes of which a slice holds a handful: show the classes that occur.
    rows = [r for r in rep["image_level"]["per_class"] if r["class"] in classes]
    per_class = _frame(rows, ["f1", "precision", "recall"])
    return [_note(f"{len(classes)} of {len(conf['classes'])} classes occur (as truth or "
                  f"prediction); the others are left out here."),
            page.fig(plots.f1_bar(per_class, title="F1 per class "
                                                   "(95% capture-bootstrap interval)")),
            _table(rows, _PER_CLASS)]


_SLICE_TITLES = {"site": "Sites", "season": "Seasons", "day_night": "Day / night",
                 "frame_num": "Frame position", "split": "Splits"}
_SLICE_COLUMNS = [("value", "slice", ""), ("n", "images", ","), ("accuracy", "accuracy", ".3f"),
                  ("macro_f1", "macro F1", ".3f")]


def _slices(rep: dict, page: Page, *, rows: int = 10) -> list[str]:
    """One small worst-first table per slicing dimension, side by side."""
    parts = [f"<div><h3>{_esc(_SLICE_TITLES.get(key, key))}</h3>"
             + _table(table[:rows], _SLICE_COLUMNS, empty="Not in this dataset.")
             + (f'<p class="note">{len(table) - rows} better slice(s) not shown.</p>'
                if len(table) > rows else "") + "</div>"
             for key, table in (rep.get("slices") or {}).items()]
    return ['<div class="slices">' + "".join(parts) + "</div>"]


def _confusion(rep: dict, page: Page) -> list[str]:
    conf = rep["confusion"]
    cm, keep = present(np.array(conf["counts"]))
    classes = [conf["classes"][i] for i in keep]
    return [page.fig(plots.confusion_figure(cm, classes, log_color=True,
                                            title="Confusion (counts, log colour)")),
            _table(rep["most_confused"], [("actual", "actual", ""),
                                          ("predicted", "predicted", ""),
                                          ("count", "count", ",")])]


_SUSPECTS = [("kind", "kind", ""), ("score", "score", ".3f"), ("reason", "reason", ""),
             ("suggested", "suggested", ""), ("seq_id", "capture", "")]


def _captures(rep: dict, page: Page) -> list[str]:
    return [page.fig(plots.frame_accuracy_figure(_frame(rep["frame_accuracy"], ["accuracy"]))),
            _table([{"level": "image", **rep["image_level"]},
                    {"level": "capture", **rep["sequence_level"]}],
                   [("level", "level", ""), ("n", "n", ","), ("accuracy", "accuracy", ".3f"),
                    ("macro_f1", "macro F1", ".3f"), ("macro_f1_ci", "95% CI", "ci")]),
            "<h3>Sequence suspects</h3>",
            _table(page.shown["sequence_suspects"], _SUSPECTS, thumbs=page.thumbs,
                   empty="No sequence suspects.")]


_PAIRS = [("a", "A", ""), ("b", "B", ""), ("images_together", "images with both", ","),
          ("a_error_with_b", "A error with B", ".1%"),
          ("a_error_without_b", "A error without B", ".1%"), ("a_to_b", "A→B", ","),
          ("a_to_b_explained", "A→B explained by B", ".1%")]


def _cooccurrence(rep: dict, page: Page) -> list[str]:
    cooc = rep["cooccurrence"]
    co, keep = present(np.array(cooc["capture"]))
    return [page.fig(plots.cooccurrence_figure(co, [cooc["classes"][i] for i in keep],
                                               title="Species annotated together (captures)")),
            _table(cooc["pairs"], _PAIRS, empty="No two classes are annotated together.")]


_ISSUES = [("score", "score", ".3f"), ("given", "given", "list"),
           ("suggested", "suggested", ""), ("reason", "reason", "")]


def _label_issues(rep: dict, page: Page) -> list[str]:
    return [_table(page.shown["label_issues"], _ISSUES, thumbs=page.thumbs)]


def _top_losses(rep: dict, page: Page) -> list[str]:
    """fastai's ``plot_top_losses`` as a grid of captioned thumbnails."""
    cells = []
    for r in page.shown["top_losses"]:
        caption = fastai_caption(_esc(r["predicted"]), _esc(r["actual"]), r["loss"],
                                 r["p_predicted"], r["p_actual"])
        cells.append(f'<div class="cell">{_thumb_tag(page.thumbs.get(r["image_id"]), "g")}'
                     f'<div>{caption}</div><div class="note">{_esc(r["image_id"])}</div></div>')
    return ['<div class="grid">' + "".join(cells) + "</div>"]


def _calibration(rep: dict, page: Page) -> list[str]:
    calib = rep["calibration"]
    worst = sorted((r for r in calib["per_class"] if r["support"]),
                   key=lambda r: -(r["ece"] or 0))[:15]
    return [page.fig(plots.reliability_figure(
                _frame(calib["bins"], ["lo", "hi", "confidence", "accuracy", "count"]),
                ece=calib["ece"])),
            _table(worst, [("class", "class", ""), ("ece", "ECE", ".4f"),
                           ("support", "support", ",")])]


def _automation(rep: dict, page: Page) -> list[str]:
    targets = [a["target_precision"] for a in rep["automation"]]
    return [page.fig(plots.coverage_figure(_frame(rep["coverage"], ["coverage", "accuracy"]),
                                           targets=targets)),
            _table(rep["automation"], [("target_precision", "target precision", ".1%"),
                                       ("n_accepted", "auto-labelled", ","),
                                       ("n_left", "left for people", ","),
                                       ("accuracy_accepted", "accuracy of auto-labelled",
                                        ".2%")])]


def _comparison(rep: dict, page: Page) -> list[str]:
    cmp_ = rep["comparison"]
    return [_cards([(f"{cmp_['macro_f1_delta']:+.3f}", "macro F1 change"
                     + _ci(cmp_.get("macro_f1_delta_ci"))),
                    (f"{cmp_['n_fixed']:,}", "images fixed"),
                    (f"{cmp_['n_broken']:,}", "images broken")]),
            *([_note(f"Compared over the classes both runs can predict; left out: "
                     f"{_esc(', '.join(cmp_['classes_left_out']))} "
                     f"({cmp_.get('n_left_out', 0):,} images without a compared label).")]
              if cmp_.get("classes_left_out") else []),
            page.fig(plots.compare_f1_figure(cmp_))]


def _story(rep: dict, page: Page) -> list[str]:
    """The findings in the story's fixed order (:mod:`analysis.story`), each headline over its
    figure, as the dashboard's Story page tells them."""
    story = build_story(rep)
    parts = []
    for i, step in enumerate(story.steps, 1):
        fig = section_figure(rep, step.figure)
        weak = ('<span class="weak">weak finding: the interval includes no effect</span>'
                if step.weak else "")
        parts.append(f'<div class="step" id="story-{_esc(step.key)}">'
                     f"<h3>{i}. {_esc(step.title)}</h3>"
                     f'<p class="headline">{_esc(step.headline)}</p>{weak}'
                     + (_note(_esc(step.detail)) if step.detail else "")
                     + (page.fig(fig) if fig is not None else "") + "</div>")
    if story.skipped:
        parts.append(_note("Not told for this run: " + "; ".join(
            f"{_esc(s.title)} ({_esc(s.reason)})" for s in story.skipped) + "."))
    return parts


def _generalisation(rep: dict, page: Page) -> list[str]:
    gen = rep["generalisation"]
    cards = [(f"{gen[g]['macro_f1']:.3f}" if gen[g]["n"] else "–",
              f"macro F1, {g} sites ({gen[g]['n']:,} images)" + _ci(gen[g]["macro_f1_ci"]))
             for g in ("seen", "unseen")]
    parts = [_cards(cards),
             _note(f"{gen['n_train_sites']:,} training sites, from "
                   f"{_esc(gen['train_sites_source'])}.")]
    if gen["all_unseen"]:
        sp = gen["site_spread"]
        parts.append(_note(
            f"Every evaluated site is unseen (a split by location): no gap to measure. Macro "
            f"F1 over {sp['n_sites']} sites: median {_fmt(sp['median'], '.3f')}, quartiles "
            f"{_fmt(sp['q25'], '.3f')}–{_fmt(sp['q75'], '.3f')}, range "
            f"{_fmt(sp['min'], '.3f')}–{_fmt(sp['max'], '.3f')}."))
    else:
        parts.append(page.fig(plots.seen_unseen_figure(gen)))
        gaps = [r for r in gen["per_class_gap"] if r["gap"] is not None][:15]
        parts.append(_table(gaps, [("class", "class", ""), ("f1_seen", "F1 seen", ".3f"),
                                   ("f1_unseen", "F1 unseen", ".3f"), ("gap", "gap", "+.3f"),
                                   ("support_unseen", "support unseen", ",")]))
    parts.append(_table(gen["per_site"][:20], [
        ("site", "site (worst first)", ""), ("seen", "seen", ""), ("n", "images", ","),
        ("accuracy", "accuracy", ".3f"), ("macro_f1", "macro F1", ".3f"),
        ("macro_f1_ci", "95 % interval", "ci")]))
    return parts


def _certified_automation(rep: dict, page: Page) -> list[str]:
    cert = rep["certified_automation"]
    cap = cert.get("capture_level") or {}
    rows = [r for r in cert["per_class"] if r["n_predicted"]]
    parts = [_cards([(_pct(cert["coverage"]), "auto-labelled, certified thresholds"),
                     (_pct(cert["coverage_point"]), "auto-labelled, point estimates"),
                     (_pct(cap.get("coverage")), "captures auto-labelled, certified")]),
             page.fig(plots.certified_coverage_figure(
                 _frame(rows, ["coverage", "point_coverage"])))]
    parts.append(_table(rows, [
        ("class", "class", ""), ("threshold", "certified threshold", ".3f"),
        ("precision_lower_bound", "precision lower bound", ".3f"),
        ("coverage", "coverage", ".1%"), ("n_accepted", "accepted", ","),
        ("point_threshold", "point threshold", ".3f"), ("point_coverage", "point coverage", ".1%"),
        ("captures_needed", "captures needed", ",")]))
    if cert["uncertifiable"]:
        parts.append(_note("Cannot be certified at "
                           f"{cert['target_precision']:.0%}: {_esc(', '.join(cert['uncertifiable']))}"
                           " (captures needed: labelled captures at the observed precision)."))
    return parts


def _calibration_fit(rep: dict, page: Page) -> list[str]:
    fit = rep["calibration_fit"]
    cap = fit.get("capture_level") or {}
    rows = sorted(fit["per_class"], key=lambda r: -(r["ece_before"] or 0))[:15]
    return [_cards([(f"{fit['temperature']:.3f}", f"temperature (fitted on {fit['n_fit']:,} "
                                                   "validation images)"),
                    (f"{fit['ece_before']:.4f} → {fit['ece_after']:.4f}", "ECE, images"),
                    (f"{_fmt(cap.get('ece_before'), '.4f')} → {_fmt(cap.get('ece_after'), '.4f')}",
                     "ECE, captures (mean frame logits)")]),
            _table(rows, [("class", "class", ""), ("ece_before", "ECE before", ".4f"),
                          ("ece_after", "ECE after", ".4f")])]


def _ecology(rep: dict, page: Page) -> list[str]:
    eco = rep["ecology"]
    cols = [("species", "species", ""), ("captures_labels", "captures (labels)", ","),
            ("captures_model", "captures (model)", ","), ("captures_bias", "bias", "+.1%"),
            ("captures_bias_ci", "95 % interval", "ci"),
            ("occupancy_labels", "occupancy (labels)", ".2f"),
            ("occupancy_model", "occupancy (model)", ".2f"), ("overlap", "activity overlap", ".3f"),
            ("overlap_ci", "95 % interval", "ci"), ("flagged", "flagged", "")]
    parts = [_note(_esc(f"{eco['n_captures']:,} captures at {eco['n_sites']} sites; "
                        f"{eco['effort_note']}.")),
             _table(eco["per_species"][:25], cols)]
    cert = eco.get("certified")
    if cert:
        parts.append(f"<h3>Model where certified ({cert['target_precision']:.0%}), people "
                     f"elsewhere: {_pct(cert['share_model'])} of images labelled by the "
                     "model</h3>")
        parts.append(_table(cert["per_species"][:25], cols))
    site = eco["per_site"]
    if site["species"] is not None and site["rows"]:
        parts.append(page.fig(plots.site_difference_figure(
            _frame(site["rows"], ["rai_diff"]), species=site["species"])))
    return parts


#: Section name -> renderer ``(report, page) -> list of HTML parts``.
RENDERERS: dict[str, Callable[[dict, Page], list[str]]] = {
    "summary": _summary, "story": _story, "label_space": _label_space, "per_class": _per_class,
    "slices": _slices,
    "confusion": _confusion, "captures": _captures, "cooccurrence": _cooccurrence,
    "label_issues": _label_issues, "top_losses": _top_losses, "calibration": _calibration,
    "automation": _automation, "generalisation": _generalisation,
    "certified_automation": _certified_automation, "calibration_fit": _calibration_fit,
    "ecology": _ecology, "comparison": _comparison,
}


def _draw(section: Section, rep: dict, page: Page) -> str:
    parts = "".join(RENDERERS[section.name](rep, page))
    if section.title is None:
        return parts
    note = _note(section.intro) if section.intro else ""
    return f"<section><h2>{_esc(section.title.format_map(rep))}</h2>{note}{parts}</section>"


def render_html(report: dict, *, images_root: str | Path | None = None,
                max_thumbnails: int = 24) -> str:
    """One self-contained HTML page from :func:`analysis.report.build.build_report`'s dict.

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
    page = Page(report, images_root=images_root, max_thumbnails=max_thumbnails)
    sections = [_draw(s, report, page) for s in SECTIONS if all(k in report for k in s.keys)]
    title = f"TrapLens report: {report['run']['run_id']}"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(sections)
            + '<footer class="note"><p>Generated by TrapLens (python -m analysis report); '
              "self-contained, readable offline.</p></footer></body></html>\n")


def render_view(title: str, blocks: Sequence[tuple[str, object]], *, subtitle: str = "") -> str:
    """A dashboard view as one self-contained HTML page ("download this view").

    Parameters
    ----------
    title, subtitle : str
        Plain text (escaped here).
    blocks : sequence of (kind, value)
        In page order: ``("heading", str)``, ``("text", str)`` (plain text, escaped),
        ``("figure", go.Figure)`` (plotly.js embedded once), ``("table", DataFrame)``,
        ``("image", (data URI or None, caption))``.

    Returns
    -------
    str
        An HTML page that fetches nothing.

    Examples
    --------
    >>> page = render_view("Per-class <1>", [("text", "a < b"), ("table", pd.DataFrame({"f1": [0.5]}))])
    >>> "Per-class &lt;1&gt;" in page and "a &lt; b" in page and "<td>0.500</td>" in page
    True
    """
    page = Page({k: [] for k in THUMBNAIL_KEYS}, images_root=None, max_thumbnails=0)
    parts = [f"<h1>{_esc(title)}</h1>"]
    if subtitle:
        parts.append(f'<p class="sub">{_esc(subtitle)}</p>')
    for kind, value in blocks:
        if kind == "heading":
            parts.append(f"<h2>{_esc(value)}</h2>")
        elif kind == "text":
            parts.append("<p>" + _esc(value).replace("\n", "<br>") + "</p>")
        elif kind == "figure":
            parts.append(page.fig(value))
        elif kind == "table":
            parts.append(value.to_html(index=False, border=0, escape=True, na_rep="–",
                                       float_format=lambda x: f"{x:.3f}"))
        elif kind == "image":
            uri, caption = value
            parts.append(f'<div class="cell">{_thumb_tag(uri, "g")}<div>{_esc(caption)}</div>'
                         "</div>")
        else:
            raise ValueError(f"render_view: unknown block kind {kind!r}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(parts)
            + '<footer class="note"><p>Downloaded from the TrapLens dashboard; self-contained, '
              "readable offline.</p></footer></body></html>\n")


def write_html(page: str, path: str | Path) -> Path:
    """Write the HTML page atomically."""
    return atomic_write(path, page)
