"""The dashboard's view state: settings from the environment, the shared sidebar, URL query params.

The whole view lives in ``st.query_params`` so any view can be shared or bookmarked and reloads
identically. The flow on every script run:

1. ``sidebar()`` (called by ``app.py`` before the page) initialises each sidebar widget from the
   URL the first time a session sees it, renders the widgets, then writes the current values
   back to the URL (defaults are left out to keep links short). Streamlit clears the query
   params when the user switches pages; writing them back on every run restores them.
2. Pages call ``current()`` for the shared ``ViewState`` and ``get_param``/``set_param`` for
   their own, page-prefixed keys (``cm_cell``, ``tl_page``...). Page params are mirrored in
   session state so they survive a page switch too.

Shared URL keys: ``run``, ``vs`` (comparison run), ``split``, ``site`` and ``season`` and
``frame`` (repeated keys), ``dn`` (day/night), ``policy`` (set/primary), ``level``
(image/sequence), ``present`` (presenter mode), ``fix`` (apply curated corrections).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import streamlit as st

ENV_DATASET = "TRAPLENS_DATASET"
ENV_IMAGES = "TRAPLENS_IMAGES"
ENV_RUNS = "TRAPLENS_RUNS"

SPLITS = ("all", "train", "val", "test")
DAY_NIGHT = ("all", "day", "night")
POLICIES = ("set", "primary")
LEVELS = ("image", "sequence")

_VIEW_KEY = "_traplens_view"
_MIRROR = "qp:"  # session-state prefix mirroring page params across page switches
_SHARED_KEYS = ("run", "vs", "split", "site", "season", "dn", "frame", "policy", "level",
                "present", "fix")


class ConfigError(ValueError):
    """The dashboard cannot start on these settings; ``fix`` says what to do about it."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


@dataclass(frozen=True)
class Config:
    """Where the data lives, from ``TRAPLENS_DATASET`` / ``TRAPLENS_IMAGES`` / ``TRAPLENS_RUNS``."""

    dataset_paths: tuple[str, ...]
    images_root: str | None
    runs_dir: str


def config() -> Config:
    """Read the three environment variables (runs default to ``data.paths.runs_dir()``)."""
    from data.paths import runs_dir

    raw = os.environ.get(ENV_DATASET, "")
    paths = tuple(p for p in raw.split(os.pathsep) if p.strip())
    images = os.environ.get(ENV_IMAGES) or None
    runs = os.environ.get(ENV_RUNS) or str(runs_dir())
    return Config(dataset_paths=paths, images_root=images, runs_dir=runs)


@dataclass(frozen=True)
class ViewState:
    """Everything that defines what a page shows; hashable, so it can key caches.

    ``run``/``compare`` are run folder names inside ``runs_dir``; empty tuples in the slice
    fields mean "no filter".
    """

    runs_dir: str
    run: str
    dataset_paths: tuple[str, ...]
    images_root: str | None
    compare: str | None = None
    split: str = "all"
    site: tuple[str, ...] = ()
    season: tuple[str, ...] = ()
    day_night: str = "all"
    frame: tuple[int, ...] = ()
    policy: str = "set"
    level: str = "image"
    presenter: bool = False
    corrected: bool = False

    @property
    def run_path(self) -> Path:
        return Path(self.runs_dir) / self.run

    @property
    def compare_path(self) -> Path | None:
        return Path(self.runs_dir) / self.compare if self.compare else None

    def slice_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``analysis.slices.slice_mask`` (None = no filter)."""
        return {
            "location": list(self.site) or None,
            "season": list(self.season) or None,
            "day_night": None if self.day_night == "all" else self.day_night,
            "frame_num": list(self.frame) or None,
            "split": None if self.split == "all" else self.split,
        }

    def query(self) -> dict[str, str | list[str]]:
        """The shared query params of this view (defaults left out), for links and the URL."""
        q: dict[str, str | list[str]] = {"run": self.run}
        if self.compare:
            q["vs"] = self.compare
        if self.split != "all":
            q["split"] = self.split
        if self.site:
            q["site"] = list(self.site)
        if self.season:
            q["season"] = list(self.season)
        if self.day_night != "all":
            q["dn"] = self.day_night
        if self.frame:
            q["frame"] = [str(f) for f in self.frame]
        if self.policy != "set":
            q["policy"] = self.policy
        if self.level != "image":
            q["level"] = self.level
        if self.presenter:
            q["present"] = "1"
        if self.corrected:
            q["fix"] = "1"
        return q

    def with_(self, **changes: Any) -> "ViewState":
        """A copy with some fields changed (e.g. ``view.with_(split="all")``)."""
        return replace(self, **changes)


# --- page params ----------------------------------------------------------------------------

def get_param(key: str, default: str | None = None) -> str | None:
    """A page's own query param (page-prefixed key, e.g. ``cm_cell``), or ``default``.

    Falls back to the session mirror after a page switch cleared the URL, and writes the value
    back so the URL keeps describing the view.
    """
    if key in st.query_params:
        value = st.query_params[key]
        st.session_state[_MIRROR + key] = value
        return value
    value = st.session_state.get(_MIRROR + key)
    if value is None:
        return default
    st.query_params[key] = value
    return value


def set_param(key: str, value: Any) -> None:
    """Set (or with ``None``/``""`` delete) a page's query param and its session mirror."""
    if value is None or value == "":
        st.query_params.pop(key, None)
        st.session_state.pop(_MIRROR + key, None)
        return
    text = str(value)
    if st.query_params.get(key) != text:
        st.query_params[key] = text
    st.session_state[_MIRROR + key] = text


def get_int(key: str, default: int) -> int:
    """``get_param`` parsed as an int; a malformed value in a hand-edited URL gives ``default``."""
    try:
        return int(get_param(key, str(default)))
    except (TypeError, ValueError):
        return default


def widget_param(key: str, default: str, options: Collection[str] | None = None) -> str:
    """Session-state key for a page widget, initialised from ``key``'s query param.

    Most widgets want :func:`url_widget`, which calls this and :func:`sync_widget`. Use the
    two directly when other code also sets the widget: ``wkey = widget_param(...)``, set
    ``st.session_state[wkey]`` as needed, draw the widget with ``key=wkey``, then
    ``sync_widget(key, default)`` so the URL follows it. With ``options``, a value that is not
    one of them (a hand-edited URL, a class that left the current view) is reset to
    ``default``.
    """
    wkey = "w:" + key
    if wkey not in st.session_state:
        st.session_state[wkey] = get_param(key, default)
    if options is not None and st.session_state[wkey] not in options:
        st.session_state[wkey] = default
    return wkey


def url_widget(widget: Callable[..., Any], label: str, options: Sequence[str], *, key: str,
               default: str, **kwargs: Any) -> Any:
    """``widget(label, options, **kwargs)`` (a selectbox, segmented control or select
    slider) whose value lives in the URL as ``key``: read from it on a first visit, reset to
    ``default`` when it is not an option, written back after every change (left out when it
    is the default). Widgets that other code also sets (a table click, say) use
    :func:`widget_param` and :func:`sync_widget` around them instead."""
    value = widget(label, options, key=widget_param(key, default, options), **kwargs)
    sync_widget(key, default)
    return value


def sync_widget(key: str, default: str | None = None) -> Any:
    """Copy a ``widget_param`` widget's value into the URL (default values are left out)."""
    value = st.session_state.get("w:" + key)
    set_param(key, None if value == default else value)
    return value


# --- the shared sidebar ---------------------------------------------------------------------

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


def sidebar() -> ViewState:
    """Render the shared sidebar, sync it with the URL and return the current ``ViewState``.

    Raises ``ConfigError`` (or the loaders' ``ValueError``/``OSError``) when there is no
    usable run folder or dataset; ``app.py`` turns that into the friendly error page.
    """
    from dashboard import loaders

    loaders.warm_imports()
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
    options = loaders.slice_options(dataset_paths)

    _init("sb_split", _choice(qp.get("split"), SPLITS, "all"))
    split = sb.segmented_control("Split", SPLITS, key="sb_split", required=True)
    with sb.expander("Slices", expanded=bool(_url_list("site") or _url_list("season")
                                               or _url_list("frame") or qp.get("dn"))):
        _init("sb_site", [s for s in _url_list("site") if s in options["site"]])
        site = st.multiselect("Site", options["site"], key="sb_site", placeholder="all sites")
        _init("sb_season", [s for s in _url_list("season") if s in options["season"]])
        season = st.multiselect("Season", options["season"], key="sb_season",
                                placeholder="all seasons")
        _init("sb_dn", _choice(qp.get("dn"), DAY_NIGHT, "all"))
        day_night = st.segmented_control("Day / night", DAY_NIGHT, key="sb_dn", required=True)
        frames = [str(f) for f in options["frame"]]
        _init("sb_frame", [f for f in _url_list("frame") if f in frames])
        frame = st.multiselect("Frame position", frames, key="sb_frame",
                               placeholder="all frames")
    _init("sb_policy", _choice(qp.get("policy"), POLICIES, "set"))
    policy = sb.segmented_control(
        "Scoring", POLICIES, key="sb_policy", required=True,
        help="set: a prediction is right when it is any of the image's species; "
             "primary: only the first-annotated species counts")
    _init("sb_level", _choice(qp.get("level"), LEVELS, "image"))
    level = sb.segmented_control("Level", LEVELS, key="sb_level", required=True,
                                 help="score single images or whole captures (sequences)")
    _init("sb_fix", qp.get("fix") == "1")
    corrected = sb.toggle("Apply curated corrections", key="sb_fix",
                          help="score against labels corrected on the Relabel page")
    _init("sb_present", qp.get("present") == "1")
    presenter = sb.toggle("Presenter mode", key="sb_present",
                          help="larger type, controls hidden")

    view = ViewState(
        runs_dir=cfg.runs_dir, run=run, dataset_paths=tuple(dataset_paths),
        images_root=images_root, compare=None if compare == "(none)" else compare,
        split=split or "all", site=tuple(site), season=tuple(season),
        day_night=day_night or "all", frame=tuple(int(f) for f in frame),
        policy=policy or "set", level=level or "image", presenter=bool(presenter),
        corrected=bool(corrected),
    )
    _write_url(view)
    if view.compare:  # load the comparison run while the user is still on this page
        loaders.prefetch(view, view.compare)
    _hide_controls_css(view.presenter)
    if view.presenter:
        st.button("Leave presenter mode", on_click=_leave_presenter, type="tertiary",
                  key="sb_leave_present")
    st.session_state[_VIEW_KEY] = view
    return view


def _write_url(view: ViewState) -> None:
    """Make the shared keys of the URL equal ``view.query()`` (touch only what changed)."""
    wanted = view.query()
    qp = st.query_params
    for key in _SHARED_KEYS:
        if key not in wanted:
            if key in qp:
                del qp[key]
            continue
        value = wanted[key]
        current = qp.get_all(key)
        target = value if isinstance(value, list) else [value]
        if current != target:
            qp[key] = value


def current() -> ViewState:
    """The ``ViewState`` of this run (``app.py`` renders the sidebar before the page)."""
    view = st.session_state.get(_VIEW_KEY)
    if view is None:
        view = sidebar()
    return view
