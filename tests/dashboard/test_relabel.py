"""AppTest of the relabel queue: curator name, decisions through the buttons, undo, filters."""
from __future__ import annotations

import pytest

from data.cct import load_dataset
from data.curation import DecisionStore
from data.paths import curation_db


def _current_id(at) -> str:
    """The image id in the queue's subheader (``\\`id\\` · score 0.93``)."""
    return at.subheader[0].value.split("`")[1]


def test_asks_the_curator_name_once_then_keeps_it(app, no_exception, texts):
    at = app("relabel")
    no_exception(at)
    assert "Your name" in [t.label for t in at.text_input]
    assert "relabel_accept" not in [b.key for b in at.button]
    at.text_input(key="relabel_name").input("Ana").run()
    no_exception(at)
    assert at.query_params["relabel_curator"] in ("Ana", ["Ana"])
    assert "curating as **Ana**" in at.get("progress")[0].proto.text
    at.run()  # a rerun keeps the name: no form again
    assert "Your name" not in [t.label for t in at.text_input]


@pytest.mark.parametrize("action, expected", [("accept", None), ("empty", ("empty",)),
                                              ("unsure", "same"), ("skip", "same")])
def test_button_records_a_decision_and_undo_reverts_it(app, no_exception, action, expected):
    at = app("relabel", relabel_curator="Ana")
    no_exception(at)
    first = _current_id(at)
    at.button(key=f"relabel_{action}").click().run()
    no_exception(at)
    store = DecisionStore(curation_db())
    latest = store.latest()
    assert len(latest) == 1
    row = latest.iloc[0]
    assert (row["curator"], row["scope"], row["item_id"], row["action"]) == (
        "Ana", "image", first, action)
    if expected == "same":
        assert row["labels_after"] == row["labels_before"]
    elif expected is not None:
        assert row["labels_after"] == expected
    assert _current_id(at) != first, "the decided image must leave the queue"

    at.button(key="relabel_undo").click().run()
    no_exception(at)
    assert store.latest().empty
    assert list(store.decisions()["action"]) == [action, "undo"]
    assert _current_id(at) == first, "undo brings the image back to the head of the queue"


def test_set_labels_on_whole_capture(app, no_exception, demo_small):
    at = app("relabel", relabel_curator="Bo")
    first = _current_id(at)
    at.segmented_control(key="relabel_scope").set_value("whole capture").run()
    ms = at.multiselect(key=f"relabel_labels:{first}")
    pick = [o for o in ms.options if o != "empty"][:2]
    ms.set_value(pick).run()
    at.button(key="relabel_set").click().run()
    no_exception(at)
    row = DecisionStore(curation_db()).latest().iloc[0]
    assert row["scope"] == "capture" and row["action"] == "set"
    assert set(row["labels_after"]) == set(pick)
    images = load_dataset(demo_small.json_paths).images.set_index("image_id")
    assert row["item_id"] == str(images.loc[first, "seq_id"])


def test_filters_narrow_the_queue(app, no_exception):
    at = app("relabel", relabel_curator="Ana")
    total = at.get("progress")[0].proto.text
    reason = at.selectbox(key="w:relabel_reason")
    kinds = [o for o in reason.options if o != "(any)"]
    assert kinds, "the demo run should produce candidates of at least one kind"
    sizes = set()
    for kind in kinds:
        at.selectbox(key="w:relabel_reason").set_value(kind).run()
        no_exception(at)
        sizes.add(at.get("progress")[0].proto.text)
        assert at.query_params["relabel_reason"] in (kind, [kind])
    assert any(s != total for s in sizes)


def test_corrections_toggle_scores_with_the_decisions(app, no_exception, demo_small,
                                                      dashboard_runs):
    """Accepting the model's suggestions, then "apply curated corrections", changes the
    metrics to exactly those of the corrected labels."""
    from analysis.evalset import build_evalset
    from data.runs import load_run
    from analysis.metrics import evaluate

    at = app("relabel", relabel_curator="Ana")
    for _ in range(3):
        at.button(key="relabel_accept").click().run()
        no_exception(at)
    ds = load_dataset(demo_small.json_paths)
    corrections = DecisionStore(curation_db()).corrections(ds)
    assert len(corrections) == 3
    run = load_run(dashboard_runs / "synthetic")
    raw = evaluate(build_evalset(ds, run), n_resamples=0)["accuracy"]
    fixed = evaluate(build_evalset(ds, run, corrections=corrections), n_resamples=0)["accuracy"]
    assert fixed > raw

    shown = {}
    for flag in (None, "1"):
        page = app("sequences", fix=flag)
        no_exception(page)
        shown[flag] = page.table[0].value.loc["accuracy", "images"]
    assert shown == {None: f"{raw:.3f}", "1": f"{fixed:.3f}"}
