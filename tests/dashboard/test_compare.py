"""AppTest of the compare page: friendly message without B; deltas, matrices, fixed/broken."""
from __future__ import annotations

import pytest

from analysis.compare import compare
from analysis.evalset import build_evalset
from data.cct import load_dataset
from data.runs import load_run


@pytest.fixture(scope="module")
def result(demo_small, dashboard_runs):
    ds = load_dataset(demo_small.json_paths)
    ev_a = build_evalset(ds, load_run(dashboard_runs / "synthetic"))
    ev_b = build_evalset(ds, load_run(dashboard_runs / "synthetic_b"))
    return compare(ev_a, ev_b, n_resamples=0)


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_friendly_message_without_a_comparison_run(app, no_exception, texts):
    at = app("compare", run="synthetic")
    no_exception(at)
    assert "Compare with" in texts(at)
    assert not at.metric


def test_shows_fixed_broken_and_both_matrices(app, no_exception, result):
    at = app("compare", run="synthetic", vs="synthetic_b")
    no_exception(at)
    assert _metric(at, "Images B fixed") == f"{result['n_fixed']:,}"
    assert _metric(at, "Images B broke") == f"{result['n_broken']:,}"
    assert _metric(at, "Macro F1 change (B − A)") == f"{result['macro_f1_delta']:+.3f}"
    assert len(at.get("plotly_chart")) == 3  # delta F1 + two confusion matrices
    assert at.tabs[1].label == f"Broken by B ({result['n_broken']:,})"


def test_swapping_runs_swaps_fixed_and_broken(app, no_exception, result):
    at = app("compare", run="synthetic_b", vs="synthetic")
    no_exception(at)
    assert _metric(at, "Images B fixed") == f"{result['n_broken']:,}"
    assert _metric(at, "Images B broke") == f"{result['n_fixed']:,}"


def test_matrix_size_follows_the_slider(app, no_exception):
    at = app("compare", run="synthetic", vs="synthetic_b")
    before = at.get("plotly_chart")[1].proto.spec
    at.select_slider(key="w:cmp_top").set_value("5").run()
    no_exception(at)
    assert at.get("plotly_chart")[1].proto.spec != before
    assert at.query_params["cmp_top"] in ("5", ["5"])
