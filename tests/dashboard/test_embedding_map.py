"""Embedding map page (AppTest) and the relabel queue's selection and filters."""
from __future__ import annotations

import base64
import re

import numpy as np

import plotly.io as pio
import pytest

from analysis.evalset import build_evalset
from analysis.issues import issue_queue, issue_table
from data.cct import load_dataset
from data.runs import load_run


def _array(value) -> np.ndarray:
    """A figure JSON's array, plain or plotly's typed-array form ``{"dtype", "bdata"}``."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


@pytest.fixture(scope="module", autouse=True)
def projected(demo_small, dashboard_runs):
    """The map of ``synthetic`` computed once, as the page would (cached beside the run), on
    one thread: t-SNE's thread pool on a loaded 2-core machine can take minutes, which an
    AppTest run (120 s) cannot wait for."""
    from threadpoolctl import threadpool_limits

    from analysis.embedding_map import map_points

    ev = build_evalset(load_dataset(demo_small.json_paths), load_run(dashboard_runs / "synthetic"))
    with threadpool_limits(1):
        return map_points(ev, dashboard_runs / "synthetic")


def test_map_page_draws_the_run_with_webgl(app, no_exception, texts):
    at = app("embedding_map")
    no_exception(at)
    chart = at.get("plotly_chart")
    assert chart, "the map is a plotly chart"
    fig = pio.from_json(chart[0].proto.spec)
    assert {t.type for t in fig.data} == {"scattergl"}
    drawn = sum(len(_array(t.customdata)) for t in fig.data)
    assert drawn == int(re.search(r"([\d,]+) image\(s\)", texts(at)).group(1).replace(",", ""))
    assert "Select images on the map" in texts(at)
    # Near-duplicates and outliers are listed; outliers as a gallery of 12 per page.
    assert "isolation" in "".join(str(m.value) for m in at.markdown)


def test_colour_by_is_kept_in_the_url(app, no_exception):
    at = app("embedding_map", emb_colour="loss")
    no_exception(at)
    fig = pio.from_json(at.get("plotly_chart")[0].proto.spec)
    assert len(fig.data) == 1 and fig.data[0].marker.showscale is True


def _queue_size(at) -> tuple[int, int]:
    text = at.get("progress")[0].proto.text
    done, total = re.search(r"\*\*(\d+) of (\d+)\*\*", text).groups()
    return int(done), int(total)


def test_a_sent_selection_is_the_queue(app, dashboard_env, no_exception, demo_small,
                                       dashboard_runs, texts):
    from streamlit.testing.v1 import AppTest

    from tests.dashboard.conftest import APP, TIMEOUT

    ev = build_evalset(load_dataset(demo_small.json_paths), load_run(dashboard_runs / "synthetic"))
    ids = ev.meta["image_id"].astype(str).tolist()[:7]
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update({"relabel_curator": "Ana"})
    at.session_state["relabel_selection"] = {"ids": ids, "source": "the embedding map"}
    at.switch_page("app_pages/relabel.py").run()
    no_exception(at)
    assert _queue_size(at)[1] == 7
    assert "selected on the embedding map" in texts(at)
    at.button(key="relabel_clear_selection").click().run()
    assert _queue_size(at)[1] > 7


@pytest.mark.parametrize("key,value,kw", [("relabel_class", "zebra", "classes"),
                                          ("relabel_split", "test", "split"),
                                          ("relabel_reason", "top_loss", "kinds")])
def test_queue_filters_match_issue_queue(app, no_exception, demo_small, dashboard_runs, key,
                                         value, kw):
    at = app("relabel", relabel_curator="Ana", **{key: value})
    no_exception(at)
    ev = build_evalset(load_dataset(demo_small.json_paths), load_run(dashboard_runs / "synthetic"))
    arg = value if kw == "split" else [value]
    expected = issue_queue(ev, issues=issue_table(ev), **{kw: arg})
    assert 0 < len(expected) < len(issue_table(ev))
    assert _queue_size(at)[1] == len(expected)
