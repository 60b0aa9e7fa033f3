"""Confusion matrix page: the matrix, its controls, and the gallery of exactly one cell."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from analysis.confusion import OTHER, cell_mask, most_confused
from dashboard import loaders


def _plain(obj):
    """Plotly JSON with its typed arrays ({dtype, bdata, shape}) decoded to lists."""
    if isinstance(obj, dict) and "bdata" in obj and "dtype" in obj:
        arr = np.frombuffer(base64.b64decode(obj["bdata"]), dtype=obj["dtype"])
        if obj.get("shape"):
            arr = arr.reshape([int(v) for v in str(obj["shape"]).split(",")])
        return arr.tolist()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj


def _figure(at) -> dict:
    """The page's Plotly figure as plain JSON."""
    charts = at.get("plotly_chart")
    assert charts, "no plotly chart on the page"
    return _plain(json.loads(charts[0].proto.spec))


def _truth(view_of):
    view = view_of()
    ev = loaders.evalset(view)
    y_true, y_pred = loaders.targets(view)
    return ev, y_true, y_pred


def _all_pages(at, gallery, key="cm_gal") -> list[tuple[str, str]]:
    cards = gallery(at)
    while any(b.key == f"{key}_next" and not b.disabled for b in at.button):
        at.button(key=f"{key}_next").click().run()
        cards += gallery(at)
    return cards


def test_matrix_cells_carry_class_indices(app, no_exception, view_of):
    at = app("confusion", cm_top="50")
    no_exception(at)
    ev, y_true, y_pred = _truth(view_of)
    trace = _figure(at)["data"][0]
    assert trace["type"] == "scatter" and trace["marker"]["symbol"] == "square"
    cm = loaders.confusion(view_of())
    for (a, p, count, *_rest), x, y in zip(trace["customdata"], trace["x"], trace["y"]):
        assert (ev.classes[int(a)], ev.classes[int(p)]) == (y, x)
        assert cm[int(a), int(p)] == count


def test_clicked_cell_gallery_is_exactly_that_cell(app, no_exception, gallery, view_of):
    ev, y_true, y_pred = _truth(view_of)
    cm = loaders.confusion(view_of())
    top = most_confused(cm, ev.classes, k=1).iloc[0]
    a, p = ev.classes.index(top["actual"]), ev.classes.index(top["predicted"])
    at = app("confusion", cm_cell=f"{top['actual']}|{top['predicted']}")
    no_exception(at)
    want = set(ev.image_ids[cell_mask(y_true, y_pred, a, p)])
    cards = _all_pages(at, gallery)
    assert {i for i, _ in cards} == want and len(cards) == len(want) == top["count"]
    for _, caption in cards:  # fastai captions: predicted / actual / loss / p / p
        pred, actual, *_ = caption.split(" / ")
        assert (pred, actual) == (top["predicted"], top["actual"])


def test_diagonal_cell_paginates(app, no_exception, gallery, view_of):
    ev, y_true, y_pred = _truth(view_of)
    cm = loaders.confusion(view_of())
    a = int(np.argmax(np.diag(cm)))
    assert cm[a, a] > 24, "the demo's biggest class should need more than one page"
    at = app("confusion", cm_cell=f"{ev.classes[a]}|{ev.classes[a]}")
    first = gallery(at)
    assert len(first) == 24
    cards = _all_pages(at, gallery)
    assert {i for i, _ in cards} == set(ev.image_ids[cell_mask(y_true, y_pred, a, a)])
    assert at.query_params["cm_gal_page"] == str(int(np.ceil(cm[a, a] / 24)))


def test_most_confused_list_matches_analysis(app, view_of):
    at = app("confusion")
    ev, *_ = _truth(view_of)
    want = most_confused(loaders.confusion(view_of()), ev.classes, k=15)
    shown = at.dataframe[0].value
    assert shown[["actual", "predicted", "count"]].values.tolist() == \
        want[["actual", "predicted", "count"]].values.tolist()


@pytest.mark.parametrize("widget, value, check", [
    ("w:cm_norm", "true", lambda f: "share of actual" in json.dumps(f["data"][0]["marker"])),
    ("w:cm_order", "name", lambda f: f["layout"]["xaxis"]["categoryarray"]
     == sorted(f["layout"]["xaxis"]["categoryarray"])),
])
def test_controls_change_the_matrix(app, no_exception, widget, value, check):
    at = app("confusion")
    before = _figure(at)
    at.segmented_control(key=widget).set_value(value).run()
    no_exception(at)
    after = _figure(at)
    assert after != before and check(after)


def test_top_n_pools_the_rest_into_other(app, no_exception, gallery, view_of):
    at = app("confusion", cm_top="3")
    no_exception(at)
    names = _figure(at)["layout"]["xaxis"]["categoryarray"]
    assert len(names) == 4 and OTHER in names
    ev, y_true, y_pred = _truth(view_of)
    shown = [n for n in names if n != OTHER]
    other = [i for i, c in enumerate(ev.classes) if c not in shown]
    at = app("confusion", cm_top="3", cm_cell=f"{OTHER}|{OTHER}")
    want = set(ev.image_ids[np.isin(y_true, other) & np.isin(y_pred, other)])
    assert {i for i, _ in _all_pages(at, gallery)} == want


def test_bad_cell_in_url_asks_for_a_click(app, no_exception):
    at = app("confusion", cm_cell="unicorn|zebra")
    no_exception(at)
    assert any("Click a cell" in i.value for i in at.info)
