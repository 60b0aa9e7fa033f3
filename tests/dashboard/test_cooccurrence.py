"""AppTest of the co-occurrence page: heatmap, pair selector, explained/unexplained galleries."""
from __future__ import annotations

from analysis.cooccurrence import pair_stats, rank_pairs
from analysis.evalset import build_evalset
from data.cct import load_dataset
from data.runs import load_run


def _evalset(demo_small, synthetic_run):
    return build_evalset(load_dataset(demo_small.json_paths), load_run(synthetic_run))


def test_defaults_to_the_top_ranked_pair(app, no_exception, texts, demo_small, synthetic_run):
    ev = _evalset(demo_small, synthetic_run)
    top = rank_pairs(ev, policy="set", k=1).iloc[0]
    at = app("cooccurrence")
    no_exception(at)
    assert at.selectbox(key="w:cooc_pair").value == f"{top['a']} → {top['b']}"
    stats = pair_stats(ev, top["a"], top["b"], policy="set")
    shown = texts(at)
    assert f"**{stats['a_to_b']:,}** image(s) labelled **{top['a']}**" in shown
    assert f"{stats['a_to_b_explained']:.1%}" in shown
    assert len(at.get("plotly_chart")) == 1
    assert "Explained" in at.tabs[0].label


def test_changing_the_pair_changes_the_numbers_and_url(app, no_exception, texts):
    at = app("cooccurrence")
    box = at.selectbox(key="w:cooc_pair")
    assert len(box.options) >= 2
    before = texts(at)
    other = box.options[1]
    box.set_value(other).run()
    no_exception(at)
    a, b = other.split(" → ")
    assert at.query_params["cooc_pair"] in (f"{a}|{b}", [f"{a}|{b}"])
    assert f"labelled **{a}** were predicted **{b}**" in texts(at)
    assert texts(at) != before


def test_pair_from_url_and_capture_counting(app, no_exception):
    first = app("cooccurrence")
    pick = first.selectbox(key="w:cooc_pair").options[-1]
    at = app("cooccurrence", cooc_pair=pick.replace(" → ", "|"))
    no_exception(at)
    assert at.selectbox(key="w:cooc_pair").value == pick
    fig_before = at.get("plotly_chart")[0].proto.spec
    at.segmented_control(key="cooc_by").set_value("capture").run()
    no_exception(at)
    assert at.get("plotly_chart")[0].proto.spec != fig_before
