"""Plotly figure builders: tables and arrays in, ``go.Figure`` out; nothing is rendered here
(:func:`figure_html` only serialises a figure for the HTML report). The one module of
``analysis`` that imports plotly.

Class-by-class matrices (confusion, co-occurrence) are drawn as a grid of square markers
(``go.Scatter``), not a heatmap: every cell is a point, so a click or box selection in the
dashboard returns the cell's ``customdata`` = (row class index, column class index, ...)
reliably, and the grid stays readable at 61 classes.
"""
from __future__ import annotations

import html
import threading
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from analysis.confusion import normalize as _normalize

COLORSCALE = "Blues"
_TEXT_SWITCH = 0.715  # see text_colors
_FONT = {"size": 11}


def _cell_px(n: int) -> int:
    """Cell size in pixels: large for a handful of classes, at least 11 px at 61."""
    return int(np.clip(900 // max(n, 1), 11, 48))


def text_colors(values: np.ndarray, cmin: float, cmax: float) -> np.ndarray:
    """Cell text colour over :data:`COLORSCALE`: black up to 0.715 of the scale, white above.

    At that switch both colours have a contrast of at least 4.5:1 (WCAG AA) against every
    cell colour they are drawn on.
    """
    t = (np.asarray(values, float) - cmin) / ((cmax - cmin) or 1.0)
    return np.where(np.nan_to_num(t) > _TEXT_SWITCH, "white", "black")


def square_grid(values: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], *,
                customdata: np.ndarray, hovertemplate: str, color: np.ndarray | None = None,
                colorbar_title: str = "", show_zeros: bool = False,
                text: np.ndarray | None = None, x_title: str = "", y_title: str = "",
                title: str | None = None) -> go.Figure:
    """A matrix as square markers, one per cell (the shared helper of the matrix figures).

    Parameters
    ----------
    values : ndarray, shape (R, K)
        Cells with value 0 are skipped unless ``show_zeros``.
    row_labels, col_labels : sequence of str
        y (top to bottom) and x (left to right) categories, in display order.
    customdata : ndarray, shape (R, K, m)
        Per-cell data returned on selection.
    hovertemplate : str
        Plotly hover template over ``customdata``.
    color : ndarray, shape (R, K), optional
        Colour value per cell (default ``values``).
    colorbar_title, x_title, y_title, title : str
    show_zeros : bool
    text : ndarray of str, shape (R, K), optional
        Text drawn inside cells (only for small grids).

    Returns
    -------
    plotly.graph_objects.Figure
    """
    values = np.asarray(values)
    color = values if color is None else np.asarray(color)
    r, k = values.shape
    keep = np.ones_like(values, bool) if show_zeros else values != 0
    rows, cols = np.nonzero(keep)
    px = _cell_px(max(r, k))
    ylab, xlab = np.asarray(row_labels, dtype=object), np.asarray(col_labels, dtype=object)
    cmin = float(np.nanmin(color)) if color.size else 0.0
    cmax = float(np.nanmax(color)) if color.size and np.nanmax(color) > 0 else 1.0
    cell = color[rows, cols]
    trace = go.Scatter(
        x=xlab[cols], y=ylab[rows], mode="markers+text" if text is not None else "markers",
        text=None if text is None else np.asarray(text)[rows, cols],
        textfont={"size": max(8, px // 3), "color": text_colors(cell, cmin, cmax)},
        marker={"symbol": "square", "size": px * 0.92, "color": cell,
                "colorscale": COLORSCALE, "showscale": True, "line": {"width": 0},
                "cmin": cmin, "cmax": cmax,
                "colorbar": {"title": {"text": colorbar_title}, "thickness": 12}},
        customdata=np.asarray(customdata)[rows, cols], hovertemplate=hovertemplate,
        showlegend=False)
    fig = go.Figure(trace)
    margin = {"l": 130, "r": 40, "t": 60 if title else 30, "b": 130}
    fig.update_layout(
        # No drag mode: a box-select drag swallows the single clicks that select a cell.
        title=title, font=_FONT, plot_bgcolor="white", clickmode="event+select",
        dragmode=False, width=k * px + margin["l"] + margin["r"] + 90,
        height=r * px + margin["t"] + margin["b"], margin=margin)
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=list(xlab),
                     range=[-0.5, k - 0.5], title=x_title, tickangle=-60, showgrid=False,
                     tickfont={"size": 10 if k > 30 else 11}, constrain="domain")
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=list(ylab),
                     range=[r - 0.5, -0.5], title=y_title, showgrid=False,
                     tickfont={"size": 10 if r > 30 else 11}, scaleanchor="x", scaleratio=1)
    return fig


def fit_grid(fig: go.Figure, width: int) -> go.Figure:
    """Resize a :func:`square_grid` figure to about ``width`` pixels, in place.

    Its markers have a fixed pixel size, so the figure must be resized rather than stretched;
    cells stay between 10 and 48 px and the label margins are kept.
    """
    n = max(len(fig.layout.xaxis.categoryarray or ()), len(fig.layout.yaxis.categoryarray or ()), 1)
    m = fig.layout.margin
    px = int(np.clip((width - m.l - m.r - 90) // n, 10, 48))
    fig.update_traces(marker_size=px * 0.92, textfont_size=max(7, px // 3))
    return fig.update_layout(width=n * px + m.l + m.r + 90, height=n * px + m.t + m.b)


def confusion_figure(cm: np.ndarray, classes: Sequence[str], *,
                     normalize: str = "none", log_color: bool = False,
                     order: Sequence[int] | None = None, show_zeros: bool = False,
                     title: str | None = None,
                     hover_names: Sequence[str] | None = None) -> go.Figure:
    """Confusion matrix (rows actual, columns predicted) as clickable square markers.

    Parameters
    ----------
    cm : ndarray of int, shape (C, C)
    classes : sequence of str
    normalize : {"none", "true", "pred"}
        Colour by counts, by share of the actual class (row) or of the predicted class (column).
    log_color : bool
        Colour by log10(1 + count) (counts only), so rare confusions stay visible beside a huge
        ``empty`` diagonal.
    order : sequence of int, optional
        Display order of class indices (e.g. :func:`analysis.confusion.class_order`).
    show_zeros : bool
    title : str, optional
    hover_names : sequence of str, optional
        A longer name per class shown on hover (vernacular and scientific name:
        :func:`analysis.labelspace.display_names`).

    Returns
    -------
    plotly.graph_objects.Figure
        Each point's ``customdata`` = (actual index, predicted index, count, row share,
        column share[, actual hover name, predicted hover name]), indices into ``classes``
        (not the display order).
    """
    cm = np.asarray(cm)
    c = len(classes)
    order = np.arange(c) if order is None else np.asarray(order)
    view = cm[np.ix_(order, order)]
    by_true = _normalize(cm, by="true")[np.ix_(order, order)]
    by_pred = _normalize(cm, by="pred")[np.ix_(order, order)]
    if normalize == "none":
        color, label = (np.log10(1 + view), "log10(1+count)") if log_color else (view, "count")
    else:
        color = by_true if normalize == "true" else by_pred
        label = "share of actual" if normalize == "true" else "share of predicted"
    idx = np.asarray(order)
    custom = np.stack([*np.broadcast_arrays(idx[:, None], idx[None, :]), view, by_true,
                       by_pred], axis=-1)
    names = [classes[i] for i in order]
    text = None
    if c <= 15:
        text = view.astype(str) if normalize == "none" else np.char.mod("%.2f", color)
    who = ("actual: %{y}", "predicted: %{x}")
    if hover_names is not None:
        # Names from a table are data, not markup: escaped before they enter the template.
        long = np.asarray([html.escape(str(hover_names[i])) for i in order], dtype=object)
        custom = np.concatenate([custom.astype(object),
                                 np.stack(np.broadcast_arrays(long[:, None], long[None, :]),
                                          axis=-1)], axis=-1)
        who = ("actual: %{y} (%{customdata[5]})", "predicted: %{x} (%{customdata[6]})")
    return square_grid(
        view, names, names, customdata=custom, color=color, colorbar_title=label,
        show_zeros=show_zeros, text=text, x_title="predicted", y_title="actual", title=title,
        hovertemplate=(f"{who[0]}<br>{who[1]}<br>count: %{{customdata[2]:,}}"
                       "<br>share of actual: %{customdata[3]:.1%}"
                       "<br>share of predicted: %{customdata[4]:.1%}<extra></extra>"))


def cooccurrence_figure(matrix: np.ndarray, classes: Sequence[str], *, log_color: bool = True,
                        order: Sequence[int] | None = None, title: str | None = None
                        ) -> go.Figure:
    """Species co-occurrence counts as clickable square markers (diagonal: images of a class).

    Returns
    -------
    plotly.graph_objects.Figure
        ``customdata`` = (row class index, column class index, count).
    """
    m = np.asarray(matrix)
    order = np.arange(len(classes)) if order is None else np.asarray(order)
    view = m[np.ix_(order, order)]
    idx = np.asarray(order)
    custom = np.stack([*np.broadcast_arrays(idx[:, None], idx[None, :]), view], axis=-1)
    names = [classes[i] for i in order]
    return square_grid(
        view, names, names, customdata=custom,
        color=np.log10(1 + view) if log_color else view,
        colorbar_title="log10(1+count)" if log_color else "count", title=title,
        hovertemplate="%{y} with %{x}: %{customdata[2]:,}<extra></extra>")


def f1_bar(per_class_df: pd.DataFrame, *, sort: bool = True, title: str | None = None
           ) -> go.Figure:
    """Horizontal bars of per-class F1 with bootstrap intervals when ``f1_ci`` is present.

    Parameters
    ----------
    per_class_df : DataFrame
        ``class, f1, support`` and optionally ``precision, recall, f1_ci`` ([lo, hi] per row),
        e.g. ``pd.DataFrame(evaluate(ev)["per_class"])``.
    sort : bool
        Worst class on top.
    """
    df = per_class_df.copy()
    if sort:
        df = df.sort_values("f1", kind="stable")
    error = None
    if "f1_ci" in df.columns:
        ci = np.array([[np.nan, np.nan] if v is None or v[0] is None else v
                       for v in df["f1_ci"]], dtype=float)
        error = {"type": "data", "symmetric": False, "array": ci[:, 1] - df["f1"],
                 "arrayminus": df["f1"] - ci[:, 0], "thickness": 1}
    extra = [c for c in ("precision", "recall", "support") if c in df.columns]
    fig = go.Figure(go.Bar(
        x=df["f1"], y=df["class"], orientation="h", error_x=error, marker_color="#3b75af",
        customdata=df[extra].to_numpy() if extra else None,
        hovertemplate="%{y}: F1 %{x:.3f}" + "".join(
            f"<br>{c} %{{customdata[{i}]:{',' if c == 'support' else '.3f'}}}"
            for i, c in enumerate(extra)) + "<extra></extra>"))
    fig.update_layout(title=title, font=_FONT, height=max(300, 18 * len(df) + 80),
                      xaxis={"range": [0, 1.02], "title": "F1"},
                      yaxis={"type": "category", "categoryorder": "array",
                             "categoryarray": list(df["class"])},
                      margin={"l": 130, "r": 30, "t": 50 if title else 20, "b": 40})
    return fig


def reliability_figure(bins: pd.DataFrame, *, ece: float | None = None,
                       title: str | None = None) -> go.Figure:
    """Reliability diagram from :func:`analysis.calibration.reliability`."""
    mid = (bins["lo"] + bins["hi"]) / 2
    fig = go.Figure()
    fig.add_trace(go.Bar(x=mid, y=bins["accuracy"], width=bins["hi"] - bins["lo"],
                         name="accuracy", marker_color="#3b75af",
                         customdata=np.stack([bins["count"], bins["confidence"]], axis=-1),
                         hovertemplate="confidence %{customdata[1]:.3f}<br>accuracy %{y:.3f}"
                                       "<br>images %{customdata[0]:,}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                             line={"dash": "dash", "color": "grey"}))
    heading = title or "Reliability"
    if ece is not None:
        heading += f" (ECE {ece:.3f})"
    fig.update_layout(title=heading, font=_FONT, xaxis={"range": [0, 1], "title": "confidence"},
                      yaxis={"range": [0, 1], "title": "accuracy"}, bargap=0.02)
    return fig


def coverage_figure(curve: pd.DataFrame, *, targets: Sequence[float] = (),
                    title: str | None = None) -> go.Figure:
    """Coverage and accuracy of auto-accepted images against the confidence threshold."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=curve["threshold"], y=curve["coverage"], name="coverage",
                             mode="lines", hovertemplate="threshold %{x:.2f}: %{y:.1%} "
                                                         "auto-accepted<extra></extra>"))
    fig.add_trace(go.Scatter(x=curve["threshold"], y=curve["accuracy"], name="accuracy",
                             mode="lines", hovertemplate="threshold %{x:.2f}: accuracy "
                                                         "%{y:.1%}<extra></extra>"))
    for t in targets:
        fig.add_hline(y=t, line_dash="dot", line_color="grey",
                      annotation_text=f"{t:.1%}", annotation_position="bottom right")
    fig.update_layout(title=title or "Automation coverage", font=_FONT,
                      xaxis={"range": [0, 1], "title": "confidence threshold"},
                      yaxis={"range": [0, 1.02], "title": "share", "tickformat": ".0%"})
    return fig


def frame_accuracy_figure(frames: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Accuracy by frame position (``frame_num, n, accuracy``, e.g.
    ``analysis.sequences.frame_accuracy``)."""
    fig = go.Figure(go.Bar(x=frames["frame_num"].astype(str), y=frames["accuracy"],
                           customdata=frames[["n"]].to_numpy(), marker_color="#3b75af",
                           hovertemplate="frame %{x}: accuracy %{y:.1%}<br>images "
                                         "%{customdata[0]:,}<extra></extra>"))
    fig.update_layout(title=title or "Accuracy by frame position", font=_FONT,
                      xaxis={"title": "frame", "type": "category"},
                      yaxis={"range": [0, 1], "title": "accuracy", "tickformat": ".0%"})
    return fig


def compare_f1_figure(comparison: dict, *, title: str | None = None) -> go.Figure:
    """Per-class F1 change (B - A) with paired-bootstrap intervals, from
    :func:`analysis.compare.compare`; largest drop on top."""
    df = pd.DataFrame(comparison["per_class"]).sort_values("delta", kind="stable")
    ci = np.array([[np.nan, np.nan] if v[0] is None else v for v in df["delta_ci"]], float)
    colors = np.where(ci[:, 1] < 0, "#c0392b", np.where(ci[:, 0] > 0, "#27ae60", "#7f8c8d"))
    fig = go.Figure(go.Scatter(
        x=df["delta"], y=df["class"], mode="markers", marker={"color": colors, "size": 9},
        error_x={"type": "data", "symmetric": False, "array": ci[:, 1] - df["delta"],
                 "arrayminus": df["delta"] - ci[:, 0], "thickness": 1},
        customdata=df[["f1_a", "f1_b", "support"]].to_numpy(),
        hovertemplate="%{y}: %{x:+.3f}<br>F1 A %{customdata[0]:.3f} -> B "
                      "%{customdata[1]:.3f}<br>support %{customdata[2]:,}<extra></extra>"))
    fig.add_vline(x=0, line_color="grey")
    fig.update_layout(title=title or "Change in F1 (B - A)", font=_FONT,
                      height=max(300, 18 * len(df) + 80), xaxis={"title": "delta F1"},
                      yaxis={"type": "category", "categoryorder": "array",
                             "categoryarray": list(df["class"])},
                      margin={"l": 130, "r": 30, "t": 50, "b": 40})
    return fig


def _ci_error(values: np.ndarray, cis) -> dict:
    ci = np.array([[np.nan, np.nan] if v is None or v[0] is None else v for v in cis],
                  float).reshape(-1, 2)  # (0, 2) when there is nothing to draw
    values = np.asarray(values, dtype=float)
    return {"type": "data", "symmetric": False, "array": ci[:, 1] - values,
            "arrayminus": values - ci[:, 0], "thickness": 1}


def seen_unseen_figure(gen: dict, *, title: str | None = None) -> go.Figure:
    """Macro F1 and accuracy at seen and unseen sites with their intervals, from
    :func:`analysis.generalisation.generalisation`."""
    groups = [g for g in ("seen", "unseen") if gen[g]["n"]]
    f1 = [gen[g]["macro_f1"] for g in groups]
    fig = go.Figure(go.Bar(
        x=[f"{g} ({gen[g]['n']:,} images)" for g in groups], y=f1, name="macro F1",
        marker_color=["#3b75af" if g == "seen" else "#e67e22" for g in groups],
        error_y=_ci_error(f1, [gen[g]["macro_f1_ci"] for g in groups]),
        hovertemplate="%{x}: macro F1 %{y:.3f}<extra></extra>"))
    fig.update_layout(title=title or "Seen vs unseen camera sites", font=_FONT,
                      yaxis={"range": [0, 1.02], "title": "macro F1"}, showlegend=False)
    return fig


def site_scores_figure(per_site: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Per-site macro F1 with intervals (``site, seen, n, macro_f1, macro_f1_ci``), worst on
    top; seen sites blue, unseen orange."""
    df = per_site[per_site["site"].notna()].iloc[::-1]
    colors = np.where(df["seen"].astype(bool), "#3b75af", "#e67e22")
    fig = go.Figure(go.Scatter(
        x=df["macro_f1"], y=df["site"].astype(str), mode="markers",
        marker={"color": colors, "size": 9}, error_x=_ci_error(df["macro_f1"], df["macro_f1_ci"]),
        customdata=df[["n"]].to_numpy(),
        hovertemplate="%{y}: macro F1 %{x:.3f}<br>images %{customdata[0]:,}<extra></extra>"))
    fig.update_layout(title=title or "Macro F1 per site (blue seen, orange unseen)", font=_FONT,
                      height=max(300, 18 * len(df) + 80), xaxis={"range": [0, 1.02],
                                                                  "title": "macro F1"},
                      yaxis={"type": "category"}, margin={"l": 110, "r": 30, "t": 50, "b": 40})
    return fig


def certified_coverage_figure(per_class: pd.DataFrame, *, title: str | None = None
                              ) -> go.Figure:
    """Per-class coverage with certified and with point-estimate thresholds, side by side
    (``class, coverage, point_coverage`` of :func:`analysis.certify.certify`'s rows)."""
    df = per_class.sort_values("point_coverage", kind="stable")
    fig = go.Figure()
    fig.add_trace(go.Bar(x=df["coverage"], y=df["class"], orientation="h", name="certified",
                         marker_color="#3b75af",
                         hovertemplate="%{y}: %{x:.1%} certified<extra></extra>"))
    fig.add_trace(go.Bar(x=df["point_coverage"], y=df["class"], orientation="h",
                         name="point estimate", marker_color="#b0c4de",
                         hovertemplate="%{y}: %{x:.1%} point estimate<extra></extra>"))
    fig.update_layout(title=title or "Share of each class's predictions auto-labelled",
                      font=_FONT, barmode="group", height=max(300, 26 * len(df) + 80),
                      xaxis={"range": [0, 1.02], "title": "coverage", "tickformat": ".0%"},
                      yaxis={"type": "category"}, margin={"l": 130, "r": 30, "t": 50, "b": 40})
    return fig


def activity_figure(curves: pd.DataFrame, *, species: str, overlap: float | None = None,
                    title: str | None = None) -> go.Figure:
    """Time-of-day densities of a species' labelled and predicted captures (``hour, labels,
    model``, e.g. :func:`analysis.ecology.activity_curves`), both curves drawn."""
    fig = go.Figure()
    for col, colour, dash in (("labels", "#3b75af", "solid"), ("model", "#e67e22", "dash")):
        fig.add_trace(go.Scatter(x=curves["hour"], y=curves[col], mode="lines", name=col,
                                 line={"color": colour, "dash": dash},
                                 hovertemplate=f"{col} %{{x:.1f}} h: %{{y:.3f}}<extra></extra>"))
    heading = title or f"Activity of {species}"
    if overlap is not None:
        heading += f" (overlap {overlap:.3f})"
    fig.update_layout(title=heading, font=_FONT,
                      xaxis={"range": [0, 24], "title": "time of day (h)", "dtick": 3},
                      yaxis={"title": "density (per hour)", "rangemode": "tozero"})
    return fig


def site_difference_figure(rows: pd.DataFrame, *, species: str, title: str | None = None
                           ) -> go.Figure:
    """RAI (captures per 100 camera-days) of the model minus the labels per site, with
    intervals (``site, rai_diff, rai_diff_ci, captures_labels, captures_model``)."""
    df = rows[rows["rai_diff"].notna()].sort_values("rai_diff", kind="stable")
    colors = np.where(df["rai_diff"] < 0, "#c0392b", "#27ae60")
    fig = go.Figure(go.Bar(
        x=df["rai_diff"], y=df["site"].astype(str), orientation="h", marker_color=colors,
        error_x=_ci_error(df["rai_diff"], df["rai_diff_ci"]),
        customdata=df[["captures_labels", "captures_model"]].to_numpy(),
        hovertemplate="%{y}: %{x:+.2f} per 100 camera-days<br>captures labels "
                      "%{customdata[0]:,}, model %{customdata[1]:,}<extra></extra>"))
    fig.add_vline(x=0, line_color="grey")
    fig.update_layout(title=title or f"{species}: RAI difference per site (model - labels)",
                      font=_FONT, height=max(300, 18 * len(df) + 80),
                      xaxis={"title": "captures per 100 camera-days, model - labels"},
                      yaxis={"type": "category"}, margin={"l": 110, "r": 30, "t": 50, "b": 40})
    return fig


_MARKUP = ("<", ">", "&")
#: Trace attributes whose strings come from data (class names, sites, run ids, file names).
_DATA_ATTRS = ("x", "y", "text", "hovertext", "customdata", "labels", "name")


def _inert(value):
    if isinstance(value, str):
        return html.escape(value, quote=False) if any(m in value for m in _MARKUP) else value
    if isinstance(value, (list, tuple, np.ndarray)):
        arr = np.asarray(value, dtype=object)
        if arr.dtype == object:
            flat = arr.reshape(-1)
            hits = [i for i, v in enumerate(flat) if isinstance(v, str)
                    and any(m in v for m in _MARKUP)]
            if hits:
                flat = flat.copy()
                flat[hits] = [html.escape(flat[i], quote=False) for i in hits]
                return flat.reshape(arr.shape)
    return value


def inert_figure(fig: go.Figure) -> go.Figure:
    """A copy of ``fig`` whose data-borne text cannot act as markup.

    Plotly renders a subset of HTML (links, bold, line breaks) in tick labels, hover values,
    legend names and titles; a class, site or run name from a file must show as its
    characters, never as a live link.
    Escapes ``<``, ``>`` and ``&`` in the traces' data strings (:data:`_DATA_ATTRS`), the
    titles and the annotations; templates (``hovertemplate``) are the figure's own markup and
    stay.

    >>> fig = inert_figure(go.Figure(go.Bar(x=["<a href='x'>zebra</a>"], y=[1])))
    >>> fig.data[0].x[0]
    "&lt;a href='x'&gt;zebra&lt;/a&gt;"
    """
    out = go.Figure(fig)
    for trace in out.data:
        for attr in _DATA_ATTRS:
            if attr in trace and trace[attr] is not None:
                trace[attr] = _inert(trace[attr])
    layout = out.layout
    for obj in (layout.title, layout.legend.title, *(layout[k].title for k in layout
                                                       if k.startswith(("xaxis", "yaxis"))
                                                       and layout[k] is not None)):
        if obj is not None and obj.text:
            obj.text = _inert(obj.text)
    for axis in (k for k in layout if k.startswith(("xaxis", "yaxis"))):
        if layout[axis] is not None and layout[axis].ticktext is not None:
            layout[axis].ticktext = _inert(layout[axis].ticktext)
    for ann in layout.annotations or ():
        if ann.text:
            ann.text = _inert(ann.text)
    return out


def figure_html(fig: go.Figure, *, include_plotlyjs: bool = True) -> str:
    """A figure as an HTML fragment for a self-contained page (no network).

    Parameters
    ----------
    fig : go.Figure
    include_plotlyjs : bool
        Embed the plotly.js bundle (about 4.6 MB) in this fragment: once per page, in the
        first figure.

    Returns
    -------
    str
        ``<div>`` and ``<script>`` of the figure (the mode bar without the Plotly logo,
        responsive).
    """
    return pio.to_html(inert_figure(fig), include_plotlyjs=include_plotlyjs, full_html=False,
                       config={"displaylogo": False, "responsive": True})


# --- take-away figures: slide-sized PNG and SVG ----------------------------------------------

#: Slide size of an exported figure, in CSS pixels (16:9); PNGs are drawn at this size times
#: ``SLIDE_SCALE``, SVGs carry it as their width and height.
SLIDE_WIDTH, SLIDE_HEIGHT, SLIDE_SCALE = 1920, 1080, 1
#: The browser Plotly's static export (kaleido 1.x) drives, when ``BROWSER_PATH`` is unset.
BROWSER_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
EXPORT_FORMATS = ("png", "svg")


class FigureExportError(RuntimeError):
    """A figure cannot be exported as an image on this machine (no browser); the message says
    what to install."""


def slide_figure(fig: go.Figure, *, run: str, title: str | None = None) -> go.Figure:
    """A copy of ``fig`` ready for a slide: its title (or ``title``) followed by the run's name,
    slide-sized type and margins; axis titles are kept.

    >>> fig = slide_figure(go.Figure(layout={"title": {"text": "F1 per class"}}), run="demo")
    >>> fig.layout.title.text
    'F1 per class · run demo'
    """
    out = go.Figure(fig)
    heading = title or (out.layout.title.text if out.layout.title and out.layout.title.text
                        else "TrapLens")
    out.update_layout(title={"text": f"{heading} · run {run}", "x": 0.02, "font": {"size": 30}},
                      font={"size": 20}, margin={"t": 90}, width=None, height=None,
                      autosize=True, paper_bgcolor="white")
    return out


def browser_path() -> str | None:
    """The Chromium/Chrome the static export uses: ``$BROWSER_PATH``, else the first of
    :data:`BROWSER_CANDIDATES` that exists (None: there is none)."""
    import os
    import shutil

    chosen = os.environ.get("BROWSER_PATH")
    if chosen:
        return chosen if os.path.exists(chosen) else None
    for path in (*BROWSER_CANDIDATES, shutil.which("chromium"), shutil.which("google-chrome")):
        if path and os.path.exists(path):
            return path
    return None


_SERVER_LOCK = threading.Lock()
_SERVER_STARTED = False


def _ensure_export_server() -> None:
    """Point kaleido at the browser and keep one browser running for every export (starting
    Chromium costs seconds on a shared machine; a running one answers in under one)."""
    global _SERVER_STARTED
    import atexit
    import os

    path = browser_path()
    if path is None:
        raise FigureExportError(
            "Figure downloads need Chromium or Chrome on the machine running TrapLens: "
            "install it (`make browser`, or `apt-get install chromium`) or set BROWSER_PATH.")
    with _SERVER_LOCK:
        if _SERVER_STARTED:
            return
        os.environ["BROWSER_PATH"] = path       # where kaleido (choreographer) looks
        try:
            import kaleido
        except ImportError as exc:
            raise FigureExportError("Figure downloads need the kaleido package "
                                    "(pip install -r requirements.txt).") from exc
        if hasattr(kaleido, "start_sync_server"):
            kaleido.start_sync_server(silence_warnings=True)
            atexit.register(kaleido.stop_sync_server, silence_warnings=True)
        _SERVER_STARTED = True


def figure_bytes(fig: go.Figure, *, format: str, width: int = SLIDE_WIDTH,
                 height: int = SLIDE_HEIGHT, scale: float = SLIDE_SCALE) -> bytes:
    """A figure as a PNG or SVG file of ``width`` x ``height`` (PNG pixels times ``scale``).

    Parameters
    ----------
    fig : go.Figure
        Usually :func:`slide_figure`'s.
    format : {"png", "svg"}
    width, height : int
        Size in CSS pixels (the SVG's ``width``/``height`` attributes).
    scale : float
        PNG pixel density: 1 gives ``width`` x ``height`` pixels, 2 twice that.

    Returns
    -------
    bytes

    Raises
    ------
    ValueError
        An unknown ``format``.
    FigureExportError
        No browser (or kaleido) to draw with; the message says what to install.
    """
    import logging

    if format not in EXPORT_FORMATS:
        raise ValueError(f"figure export: format must be one of {EXPORT_FORMATS}, got {format!r}")
    _ensure_export_server()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # "kopts ignored when using a server"
        try:
            return pio.to_image(fig, format=format, width=width, height=height, scale=scale)
        except (RuntimeError, OSError) as exc:
            logging.getLogger(__name__).warning("figure export failed: %s", exc)
            raise FigureExportError(f"The figure could not be drawn as {format.upper()}: "
                                    f"{str(exc).strip().splitlines()[0][:200]}") from exc


def empty_filter_figure(curve: pd.DataFrame, *, threshold: float | None = None,
                        x_title: str = "animal score threshold",
                        title: str | None = None) -> go.Figure:
    """Share of empty images removed and of animal images lost against the threshold
    (``analysis.empty_filter.filter_curve``), with the chosen threshold marked."""
    fig = go.Figure()
    for col, name, color in (("empty_removed", "empty removed", "#3b75af"),
                             ("animal_lost", "animals lost", "#c0392b")):
        fig.add_trace(go.Scatter(x=curve["threshold"], y=curve[col], name=name, mode="lines",
                                 line={"color": color},
                                 hovertemplate=f"threshold %{{x:.2f}}: %{{y:.1%}} {name}"
                                               "<extra></extra>"))
    if threshold is not None:
        fig.add_vline(x=threshold, line_dash="dot", line_color="grey")
    fig.update_layout(title=title or "Empty-image filter", font=_FONT,
                      xaxis={"range": [0, 1], "title": x_title},
                      yaxis={"range": [0, 1.02], "title": "share", "tickformat": ".0%"})
    return fig


#: Points drawn one by one (WebGL) on the embedding map; above, a density layer + a sample.
MAP_MAX_POINTS = 200_000


def embedding_map_figure(xy: np.ndarray, values: np.ndarray, *, continuous: bool = False,
                         max_points: int = MAP_MAX_POINTS, colour_label: str = "",
                         hover: np.ndarray | None = None, seed: int = 0) -> go.Figure:
    """The embedding map: WebGL points coloured by ``values`` (categories get a legend,
    numbers a colour scale); above ``max_points`` images a density layer of all of them with a
    seeded sample of ``max_points`` drawn on top.

    Every drawn point carries its row of ``xy`` as ``customdata`` (what a click returns);
    selections are answered from the box / lasso geometry over all of ``xy``
    (:func:`analysis.embedding_map.selection_rows`), so undrawn images are selected too.

    Examples
    --------
    >>> fig = embedding_map_figure(np.zeros((3, 2)), np.array(["a", "b", "a"]))
    >>> [t.name for t in fig.data], fig.data[0].type
    (['a', 'b'], 'scattergl')
    """
    from analysis.embedding import density_grid, sample_points

    xy = np.asarray(xy, dtype=np.float64)
    values = np.asarray(values)
    fig = go.Figure()
    drawn = sample_points(len(xy), max_points, seed=seed)
    if len(drawn) < len(xy):
        counts, xe, ye = density_grid(xy, bins=200)
        fig.add_trace(go.Heatmap(z=np.log1p(counts), x=(xe[:-1] + xe[1:]) / 2,
                                 y=(ye[:-1] + ye[1:]) / 2, colorscale="Greys", showscale=False,
                                 hoverinfo="skip", name="density", opacity=0.6))
    text = None if hover is None else np.asarray(hover, dtype=object)
    marker = dict(size=4 if len(drawn) > 20_000 else 6, opacity=0.75)
    if continuous:
        rows = drawn
        fig.add_trace(go.Scattergl(
            x=xy[rows, 0], y=xy[rows, 1], mode="markers", customdata=rows, name=colour_label,
            text=None if text is None else text[rows], hoverinfo="text" if text is not None
            else "x+y", marker={**marker, "color": values[rows].astype(float),
                                "colorscale": "Viridis", "showscale": True,
                                "colorbar": {"title": colour_label}}))
    else:
        cats, codes = np.unique(values[drawn].astype(str), return_inverse=True)
        for j, cat in enumerate(cats):
            rows = drawn[codes == j]
            fig.add_trace(go.Scattergl(
                x=xy[rows, 0], y=xy[rows, 1], mode="markers", customdata=rows, name=str(cat),
                text=None if text is None else text[rows],
                hoverinfo="text" if text is not None else "x+y", marker=marker))
    fig.update_layout(height=620, margin=dict(l=10, r=10, t=30, b=10), dragmode="lasso",
                      legend_title_text=colour_label, xaxis=dict(showticklabels=False,
                      title=None), yaxis=dict(showticklabels=False, title=None),
                      plot_bgcolor="white", uirevision="embedding-map")
    return fig
