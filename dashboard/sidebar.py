"""The shared sidebar: run, comparison run, split, slices, scoring policy, level, presenter mode.

``sidebar()`` (called by ``app.py`` before the page) initialises each widget from the URL the
first time a session sees it, renders the widgets, builds the ``ViewState`` and publishes it
(``dashboard.state.publish``: URL + session). It reads the settings (``dashboard.config``) and
the run list, dataset paths and slice choices (``dashboard.loaders``); a chosen comparison run
starts loading in the background (``loaders.prefetch``). Presenter mode's CSS lives here too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from dashboard import loaders, state
from dashboard.config import config


def _url_list(key: str) -> list[str]:
    return [v for v in st.query_params.get_all(key) if v != ""]


def _init(key: str, value: Any) -> None:
    # Only on the first run of a session (or of a widget): later runs keep the user's choice.
    if key not in st.session_state:
        st.session_state[key] = value


def _choice(value: str | None, options: list[str] | tuple[str, ...], default: str) -> str:
    return value if value in options else default


def _hide_controls_css(presenter: bool) -> None:
    if presenter:
        st.html(
            "<style>"
            "section[data-testid='stSidebar'], [data-testid='stSidebarCollapsedControl'],"
            "[data-testid='stSidebarNav'] {display: none !important;}"
            "html, body, [data-testid='stAppViewContainer'] {font-size: 1.3rem;}"
            "[data-testid='stMetricValue'], [data-testid='stMetricValue'] * "
            "{font-size: 3.6rem !important; line-height: 1.15 !important;}"
            "[data-testid='stMarkdownContainer'] p, li {font-size: 1.35rem;}"
            "[data-testid='stMetricDelta'] p {font-size: 1.05rem !important;}"
            "h1 {font-size: 3.2rem !important;} h2 {font-size: 2.4rem !important;}"
            "</style>"
        )


def _leave_presenter() -> None:
    st.session_state["sb_present"] = False


# Sidebar widgets of the slices a page may narrow (meta column -> widget key).
SLICE_WIDGETS = {"location": "sb_site", "season": "sb_season", "day_night": "sb_dn"}


def set_slice(column: str, value: str) -> None:
    """Narrow the sidebar's ``column`` slice (location, season, day_night) to ``value``.

    Call it from a widget callback, which runs before the sidebar renders on the next rerun.
    """
    st.session_state[SLICE_WIDGETS[column]] = value if column == "day_night" else [value]


def sidebar() -> state.ViewState:
    """Render the shared sidebar, sync it with the URL and return the current ``ViewState``.

    Raises ``ConfigError`` (or the loaders' ``ValueError``/``OSError``) when there is no
    usable run folder or dataset; ``app.py`` turns that into the friendly error page.
    """
    cfg = config()
    runs = loaders.list_runs(cfg.runs_dir)
    qp = st.query_params
    sb = st.sidebar

    _init("sb_run", _choice(qp.get("run"), runs, runs[0]))
    if st.session_state["sb_run"] not in runs:  # a run folder disappeared
        st.session_state["sb_run"] = runs[0]
    run = sb.selectbox("Run", runs, key="sb_run", help="a run folder in " + cfg.runs_dir)
    others = ["(none)"] + [r for r in runs if r != run]
    _init("sb_vs", _choice(qp.get("vs"), others, "(none)"))
    if st.session_state["sb_vs"] not in others:
        st.session_state["sb_vs"] = "(none)"
    compare = sb.selectbox("Compare with", others, key="sb_vs",
                           help="a second run for the Compare page")

    dataset_paths, images_root = loaders.resolve_data(cfg, Path(cfg.runs_dir) / run)
    loaders.preload_run(Path(cfg.runs_dir) / run)  # read while the dataset loads
    options = loaders.slice_options(dataset_paths)

    _init("sb_split", _choice(qp.get("split"), state.SPLITS, "all"))
    split = sb.segmented_control("Split", state.SPLITS, key="sb_split", required=True)
    with sb.expander("Slices", expanded=bool(_url_list("site") or _url_list("season")
                                               or _url_list("frame") or qp.get("dn"))):
        _init("sb_site", [s for s in _url_list("site") if s in options["site"]])
        site = st.multiselect("Site", options["site"], key="sb_site", placeholder="all sites")
        _init("sb_season", [s for s in _url_list("season") if s in options["season"]])
        season = st.multiselect("Season", options["season"], key="sb_season",
                                placeholder="all seasons")
        _init("sb_dn", _choice(qp.get("dn"), state.DAY_NIGHT, "all"))
        day_night = st.segmented_control("Day / night", state.DAY_NIGHT, key="sb_dn",
                                         required=True)
        frames = [str(f) for f in options["frame"]]
        _init("sb_frame", [f for f in _url_list("frame") if f in frames])
        frame = st.multiselect("Frame position", frames, key="sb_frame",
                               placeholder="all frames")
    _init("sb_policy", _choice(qp.get("policy"), state.POLICIES, "set"))
    policy = sb.segmented_control(
        "Scoring", state.POLICIES, key="sb_policy", required=True,
        help="set: a prediction is right when it is any of the image's species; "
             "primary: only the first-annotated species counts")
    _init("sb_level", _choice(qp.get("level"), state.LEVELS, "image"))
    level = sb.segmented_control("Level", state.LEVELS, key="sb_level", required=True,
                                 help="score single images or whole captures (sequences)")
    _init("sb_fix", qp.get("fix") == "1")
    corrected = sb.toggle("Apply curated corrections", key="sb_fix",
                          help="score against labels corrected on the Relabel page")
    _init("sb_unk", qp.get("unk") == "1")
    score_unknown = sb.toggle("Score unknown classes as errors", key="sb_unk",
                              help="images whose only labels the model cannot predict: "
                                   "left out of the metrics (off) or counted as errors (on)")
    _init("sb_present", qp.get("present") == "1")
    presenter = sb.toggle("Presenter mode", key="sb_present",
                          help="larger type, controls hidden")

    view = state.ViewState(
        runs_dir=cfg.runs_dir, run=run, dataset_paths=tuple(dataset_paths),
        images_root=images_root, compare=None if compare == "(none)" else compare,
        split=split or "all", site=tuple(site), season=tuple(season),
        day_night=day_night or "all", frame=tuple(int(f) for f in frame),
        policy=policy or "set", level=level or "image", presenter=bool(presenter),
        corrected=bool(corrected), score_unknown=bool(score_unknown),
    )
    state.publish(view)
    if view.compare:  # load the comparison run while the user is still on this page
        loaders.prefetch(view, view.compare)
    _hide_controls_css(view.presenter)
    if view.presenter:
        st.button("Leave presenter mode", on_click=_leave_presenter, type="tertiary",
                  key="sb_leave_present")
    return view
