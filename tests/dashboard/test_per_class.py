"""Per-class page: the table matches analysis.metrics, choosing a class shows its errors."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.metrics import evaluate
from dashboard import loaders


def test_table_matches_evaluate(app, no_exception, view_of):
    at = app("per_class")
    no_exception(at)
    view = view_of()
    want = {r["class"]: r for r in evaluate(loaders.evalset(view))["per_class"]}
    table = at.dataframe[0].value
    assert len(table) == sum(r["support"] > 0 for r in want.values())
    for row in table.to_dict("records"):
        assert row["f1"] == pytest.approx(want[row["class"]]["f1"])
        assert row["support"] == want[row["class"]]["support"]
        assert row["f1_low"] <= row["f1"] + 1e-9 <= row["f1_high"] + 2e-9
    assert list(table["f1"]) == sorted(table["f1"]), "worst class first"


@pytest.mark.parametrize("kind", ["missed", "false alarms"])
def test_choosing_a_class_opens_its_errors(app, no_exception, gallery, view_of, kind):
    view = view_of()
    ev = loaders.evalset(view)
    y_true, y_pred = loaders.targets(view)
    c = int(np.argmax(np.bincount(y_true[y_true != y_pred], minlength=len(ev.classes))))
    name = ev.classes[c]
    at = app("per_class")
    assert not gallery(at)
    at.selectbox(key="w:pc_class").set_value(name).run()
    if kind != "missed":
        at.segmented_control(key="pc_kind").set_value(kind).run()
    no_exception(at)
    assert at.query_params["pc_class"] == name
    mask = (y_true == c) & (y_pred != c) if kind == "missed" else (y_pred == c) & (y_true != c)
    cards = gallery(at)
    assert {i for i, _ in cards} <= set(ev.image_ids[mask])
    assert len(cards) == min(24, int(mask.sum())) > 0
    for _, caption in cards:
        pred, actual = caption.split(" / ")[:2]
        assert (actual == name and pred != name) if kind == "missed" else \
            (pred == name and actual != name)


def test_class_from_url_reloads_the_same_gallery(app, gallery, view_of):
    ev = loaders.evalset(view_of())
    at = app("per_class", pc_class=ev.classes[1])
    assert at.selectbox(key="w:pc_class").value == ev.classes[1]
    again = app("per_class", **dict(at.query_params))
    assert gallery(again) == gallery(at)


def test_sequence_level_counts_captures(app, no_exception, view_of):
    at = app("per_class", level="sequence")
    no_exception(at)
    seq = loaders.evalset(view_of(level="sequence"), level="sequence")
    assert int(at.dataframe[0].value["support"].sum()) == len(seq)
