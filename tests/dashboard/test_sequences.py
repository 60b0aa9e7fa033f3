"""AppTest of the sequences page: frame accuracy, image vs capture metrics, suspects."""
from __future__ import annotations

import pytest

from analysis.evalset import build_evalset
from analysis.metrics import evaluate
from analysis.sequences import suspects
from data.cct import load_dataset
from data.runs import load_run


@pytest.fixture(scope="module")
def ev(demo_small, synthetic_run):
    return build_evalset(load_dataset(demo_small.json_paths), load_run(synthetic_run))


def _table(at):
    return at.table[0].value


@pytest.mark.parametrize("how", ["mean", "max", "vote"])
def test_aggregation_choice_changes_capture_metrics(app, no_exception, ev, how):
    at = app("sequences", seq_how=how)
    no_exception(at)
    table = _table(at)
    expected = evaluate(ev, level="sequence", aggregation=how, n_resamples=0)
    assert table.loc["accuracy", f"captures ({how})"] == f"{expected['accuracy']:.3f}"
    assert table.loc["n", "images"] == f"{len(ev):,}"
    assert len(at.get("plotly_chart")) == 1


def test_suspects_shown_with_capture_strips_and_kind_filter(app, no_exception, texts, ev):
    from dashboard.components import esc

    sus = suspects(ev)
    assert len(sus), "the demo should have sequence suspects"
    at = app("sequences")
    no_exception(at)
    shown = texts(at)
    top = sus.iloc[0]
    assert esc(top["reason"]) in shown  # as the page writes it: inert text (issue 17)
    assert f"Capture `{top['seq_id']}`" in shown
    kinds = sus["kind"].unique().tolist()
    at.segmented_control(key="w:seq_kind").set_value(kinds[-1]).run()
    no_exception(at)
    first = sus[sus["kind"] == kinds[-1]].iloc[0]
    assert esc(first["reason"]) in texts(at)
    assert at.query_params["seq_kind"] in (kinds[-1], [kinds[-1]])


def test_switching_aggregation_in_the_page(app, no_exception):
    at = app("sequences")
    before = _table(at).copy()
    at.segmented_control(key="w:seq_how").set_value("vote").run()
    no_exception(at)
    assert "captures (vote)" in _table(at).columns
    assert not _table(at).equals(before)
