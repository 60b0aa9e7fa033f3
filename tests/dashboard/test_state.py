"""dashboard.state: the view lives in the URL, both ways, and survives page switches."""
from __future__ import annotations

import pytest

from dashboard.state import ViewState

VIEW_KEY = "_traplens_view"


def _view(at) -> ViewState:
    return at.session_state[VIEW_KEY]


def test_viewstate_query_and_slices_leave_defaults_out():
    v = ViewState(runs_dir="/r", run="a", dataset_paths=("x.json",), images_root=None)
    assert v.query() == {"run": "a"}
    assert v.slice_kwargs() == {"location": None, "season": None, "day_night": None,
                                "frame_num": None, "split": None}
    w = v.with_(split="test", site=("B03", "D04"), frame=(1,), day_night="night",
                policy="primary", level="sequence", presenter=True, corrected=True, compare="b")
    assert w.query() == {"run": "a", "vs": "b", "split": "test", "site": ["B03", "D04"],
                         "dn": "night", "frame": ["1"], "policy": "primary",
                         "level": "sequence", "present": "1", "fix": "1"}
    assert w.slice_kwargs() == {"location": ["B03", "D04"], "season": None,
                                "day_night": "night", "frame_num": [1], "split": "test"}
    assert hash(w) != hash(v) and w != v


def test_url_sets_every_sidebar_widget(app, no_exception):
    at = app(run="synthetic_b", vs="synthetic", split="test", site=["B03"], dn="day",
             frame=["1", "2"], policy="primary", level="sequence", fix="1")
    no_exception(at)
    view = _view(at)
    assert (view.run, view.compare, view.split, view.site, view.day_night, view.frame,
            view.policy, view.level, view.corrected) == (
        "synthetic_b", "synthetic", "test", ("B03",), "day", (1, 2), "primary", "sequence",
        True)
    assert at.selectbox(key="sb_run").value == "synthetic_b"
    assert at.multiselect(key="sb_site").value == ["B03"]
    assert at.query_params["frame"] == ["1", "2"]


def test_widgets_write_the_url_and_a_reload_restores_the_view(app, no_exception):
    at = app()
    at.segmented_control(key="sb_split").set_value("val").run()
    at.segmented_control(key="sb_policy").set_value("primary").run()
    at.multiselect(key="sb_frame").set_value(["2"]).run()
    no_exception(at)
    url = dict(at.query_params)
    assert url["split"] == "val" and url["policy"] == "primary" and url["frame"] in ("2", ["2"])
    again = app(**url)
    assert _view(again) == _view(at)
    at.segmented_control(key="sb_split").set_value("all").run()
    assert "split" not in at.query_params, "defaults are left out of the URL"


@pytest.mark.parametrize("query", [
    {"run": "no-such-run"}, {"split": "bogus"}, {"site": ["nowhere"]}, {"frame": ["x"]},
    {"policy": "majority"}, {"level": "pixel"},
])
def test_bad_url_values_fall_back_to_defaults(app, no_exception, query):
    at = app(**query)
    no_exception(at)
    view = _view(at)
    assert (view.run, view.split, view.site, view.frame, view.policy, view.level) == (
        "synthetic", "all", (), (), "set", "image")


def test_page_params_survive_a_page_switch(app, no_exception):
    at = app("top_losses", tl_order="smallest")
    assert at.query_params["tl_order"] == "smallest"
    at.switch_page("app_pages/per_class.py").run()
    at.query_params.clear()  # what the browser does on a page switch
    at.switch_page("app_pages/top_losses.py").run()
    no_exception(at)
    assert at.query_params["tl_order"] == "smallest"
    assert at.query_params["run"] == "synthetic"


def test_presenter_mode_hides_controls(app, no_exception):
    at = app(present="1")
    no_exception(at)
    assert _view(at).presenter
    css = " ".join(h.value for h in at.html)
    assert "stSidebar" in css and "display: none" in css
    at.button(key="sb_leave_present").click().run()
    assert not _view(at).presenter and "present" not in at.query_params


@pytest.mark.parametrize("page, key, default", [
    ("confusion", "cm_order", "support"), ("confusion", "cm_norm", "none"),
    ("compare", "cmp_top", "15"), ("sequences", "seq_how", "mean"),
    ("sequences", "seq_kind", "all"), ("calibration", "cal_target", "0.95"),
    ("top_losses", "tl_order", "largest"), ("top_losses", "tl_actual", "(any)"),
    ("overview", "ov_slice", "site"), ("per_class", "pc_class", ""),
])
def test_bad_page_param_values_fall_back_to_defaults(app, no_exception, page, key, default):
    vs = "synthetic_b" if page == "compare" else None  # Compare needs a second run
    at = app(page, vs=vs, **{key: "no-such-value"})
    no_exception(at)
    assert at.session_state["w:" + key] == default
    assert key not in at.query_params, "the URL follows the widget back to its default"


def _empty_view_page() -> None:
    import numpy as np
    import streamlit as st

    from analysis.evalset import evalset_from_arrays
    from dashboard import components

    full = evalset_from_arrays(np.full((3, 2), 0.5, np.float32), np.array([0, 1, 0]))
    components.stop_if_empty(full)
    st.write("after the full view")
    components.stop_if_empty(full, full.subset(np.zeros(3, bool)))
    st.write("after the empty view")


def test_an_empty_view_stops_the_page_with_one_warning():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_empty_view_page).run()
    assert not at.exception
    assert [w.value for w in at.warning] == [
        "No images match the sidebar's split and slices; widen them to see this page."]
    assert [m.value for m in at.markdown] == ["after the full view"]
