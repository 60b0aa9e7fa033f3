"""analysis.plots: figures carry the right data (click payloads, hover, order), not pixels."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from analysis.calibration import ece, reliability
from analysis.compare import compare
from analysis.confusion import class_order
from analysis.coverage import coverage_curve
from analysis.evalset import evalset_from_arrays
from analysis.metrics import confusion, evaluate
from analysis.plots import (compare_f1_figure, confusion_figure, cooccurrence_figure,
                            coverage_figure, f1_bar, frame_accuracy_figure, reliability_figure)
from tests.synth import make_arrays


@pytest.fixture(scope="module")
def ev():
    probs, y, cap = make_arrays(2000, 61, seed=0)
    meta = pd.DataFrame({"image_id": np.arange(2000).astype(str), "seq_id": cap.astype(str)})
    return evalset_from_arrays(probs, y, meta=meta, classes=[f"species{i}" for i in range(61)])


def _cm(ev):
    return confusion(ev.primary, ev.pred, ev.n_classes)


def test_confusion_figure_is_a_square_marker_grid_with_cell_payloads(ev):
    cm = _cm(ev)
    fig = confusion_figure(cm, ev.classes)
    assert isinstance(fig, go.Figure) and len(fig.data) == 1
    tr = fig.data[0]
    assert tr.type == "scatter" and tr.marker.symbol == "square"
    assert len(tr.x) == np.count_nonzero(cm)  # one point per non-empty cell
    for x, y, cd in zip(tr.x, tr.y, tr.customdata):
        a, p = int(cd[0]), int(cd[1])
        assert (ev.classes[a], ev.classes[p]) == (y, x)
        assert cd[2] == cm[a, p]
    assert "count" in tr.hovertemplate and "share of actual" in tr.hovertemplate
    assert fig.layout.width <= 1400 and fig.layout.height <= 1400  # readable at 61 classes
    assert tr.marker.size >= 10
    assert list(fig.layout.xaxis.categoryarray) == ev.classes


def test_confusion_figure_order_normalize_and_log(ev):
    cm = _cm(ev)
    order = class_order(cm, ev.classes, by="support")
    fig = confusion_figure(cm, ev.classes, order=order, normalize="true")
    assert list(fig.layout.yaxis.categoryarray) == [ev.classes[i] for i in order]
    tr = fig.data[0]
    a, p = int(tr.customdata[0][0]), int(tr.customdata[0][1])
    assert tr.marker.color[0] == pytest.approx(cm[a, p] / cm[a].sum())
    log = confusion_figure(cm, ev.classes, log_color=True).data[0]
    assert max(log.marker.color) == pytest.approx(np.log10(1 + cm.max()))
    small = confusion_figure(np.array([[3, 1], [0, 2]]), ["a", "b"])
    assert list(small.data[0].text) == ["3", "1", "2"]


def _luminance(rgb) -> float:
    c = np.asarray(rgb, float) / 255
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(c @ [0.2126, 0.7152, 0.0722])


def test_cell_text_is_readable_on_every_cell_colour():
    from plotly.colors import sample_colorscale, unlabel_rgb

    from analysis.plots import COLORSCALE, text_colors

    t = np.linspace(0, 1, 501)
    cells = [unlabel_rgb(c) for c in sample_colorscale(COLORSCALE, list(t))]
    text = text_colors(t * 40 + 10, 10, 50)  # any value range maps onto the scale
    for cell, ink in zip(cells, text):
        hi, lo = sorted([_luminance(cell), _luminance((255,) * 3 if ink == "white" else (0,) * 3)],
                        reverse=True)
        assert (hi + 0.05) / (lo + 0.05) >= 4.5, (cell, ink)
    fig = confusion_figure(np.array([[30, 1], [0, 2]]), ["a", "b"])
    assert list(fig.data[0].textfont.color) == ["white", "black", "black"]


def test_cooccurrence_figure_reuses_the_grid():
    m = np.array([[10, 4, 0], [4, 7, 1], [0, 1, 2]])
    fig = cooccurrence_figure(m, ["zebra", "wildebeest", "lion"])
    tr = fig.data[0]
    assert tr.marker.symbol == "square" and len(tr.x) == 7
    assert [tuple(map(int, c[:2])) for c in tr.customdata][:2] == [(0, 0), (0, 1)]


def test_other_figures(ev):
    res = evaluate(ev, n_resamples=20)
    fig = f1_bar(pd.DataFrame(res["per_class"]))
    assert list(fig.data[0].y)[0] == min(res["per_class"], key=lambda r: r["f1"])["class"]
    assert fig.data[0].error_x.array is not None
    rel = reliability_figure(reliability(ev), ece=ece(ev))
    assert "ECE" in rel.layout.title.text and len(rel.data) == 2
    cov = coverage_figure(coverage_curve(ev), targets=[0.95, 0.966])
    assert [t.name for t in cov.data] == ["coverage", "accuracy"]
    assert len(cov.layout.shapes) == 2
    frames = pd.DataFrame({"frame_num": [1, 2, 3], "n": [10, 8, 5],
                           "accuracy": [0.9, 0.7, 0.6]})
    assert list(frame_accuracy_figure(frames).data[0].x) == ["1", "2", "3"]
    comp = compare(ev, ev, n_resamples=10)
    assert len(compare_f1_figure(comp).data[0].x) == 61
    for f in (fig, rel, cov):
        f.to_json()  # serialisable (what Streamlit and the HTML report need)


def test_seen_unseen_figure_with_no_group_to_draw():
    """A run whose evaluated images have no site on either side still gets a (blank) figure."""
    from analysis.plots import seen_unseen_figure

    fig = seen_unseen_figure({"seen": {"n": 0}, "unseen": {"n": 0}})
    assert len(fig.data[0].x) == 0


def test_inert_figure_escapes_names_from_files():
    """A hostile class name becomes text in every place Plotly renders markup."""
    import numpy as np

    from analysis.plots import confusion_figure, inert_figure

    evil = "<a href='https://evil.example'>zebra</a>"
    fig = inert_figure(confusion_figure(np.array([[3, 1], [0, 2]]), [evil, "lion"],
                                        title=f"run {evil}"))
    trace = fig.data[0]
    shown = [*map(str, trace.x), *map(str, trace.y), fig.layout.title.text]
    assert not any("<a href" in t for t in shown)
    assert "&lt;a href='https://evil.example'&gt;zebra&lt;/a&gt;" in trace.x
    assert "lion" in trace.x  # other names untouched
    assert "evil.example" in fig.layout.title.text and "<a" not in fig.layout.title.text
    assert trace.hovertemplate is None or "<extra>" in trace.hovertemplate  # own markup kept
