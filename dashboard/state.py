"""The dashboard's view state: the ``ViewState`` of a script run and its URL query params.

The whole view lives in ``st.query_params`` so any view can be shared or bookmarked and reloads
identically. The flow on every script run:

1. ``dashboard.sidebar.sidebar()`` (called by ``app.py`` before the page) builds the shared
   ``ViewState`` from the sidebar widgets and hands it to :func:`publish`, which writes it back
   to the URL (defaults are left out to keep links short; Streamlit clears the query params
   when the user switches pages, writing them back on every run restores them).
2. Pages call :func:`current` for the shared ``ViewState`` and ``get_param``/``set_param`` (or
   ``url_widget``) for their own, page-prefixed keys (``cm_cell``, ``tl_page``...). Page params
   are mirrored in session state so they survive a page switch too.

Shared URL keys: ``run``, ``vs`` (comparison run), ``split``, ``site`` and ``season`` and
``frame`` (repeated keys), ``dn`` (day/night), ``policy`` (set/primary), ``level``
(image/sequence), ``present`` (presenter mode), ``fix`` (apply curated corrections), ``unk``
(score images the model cannot predict as errors). Per-class and Confusion share the page
param ``taxon`` (taxonomic level).

This module imports no other dashboard module: settings are in ``dashboard.config``, the
widgets that fill a ``ViewState`` in ``dashboard.sidebar``.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import streamlit as st

SPLITS = ("all", "train", "val", "test")
DAY_NIGHT = ("all", "day", "night")
POLICIES = ("set", "primary")
LEVELS = ("image", "sequence")

_VIEW_KEY = "_traplens_view"
_MIRROR = "qp:"  # session-state prefix mirroring page params across page switches
_SHARED_KEYS = ("run", "vs", "split", "site", "season", "dn", "frame", "policy", "level",
                "present", "fix", "unk")


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
    score_unknown: bool = False

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
        if self.score_unknown:
            q["unk"] = "1"
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


# --- the shared view ------------------------------------------------------------------------

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


def publish(view: ViewState) -> None:
    """Make ``view`` this script run's shared view: written to the URL, returned by
    :func:`current` (the sidebar calls it once per run, before the page)."""
    _write_url(view)
    st.session_state[_VIEW_KEY] = view


def current() -> ViewState:
    """The ``ViewState`` of this run (``app.py`` renders the sidebar before the page)."""
    view = st.session_state.get(_VIEW_KEY)
    if view is None:
        raise RuntimeError("no view yet: dashboard.sidebar.sidebar() renders the shared "
                           "sidebar and publishes the view before any page runs")
    return view
