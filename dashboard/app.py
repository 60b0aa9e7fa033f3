"""TrapLens dashboard entry point: ``streamlit run dashboard/app.py`` (or ``python -m dashboard``).

Renders the shared sidebar (``dashboard.sidebar.sidebar``), checks that the dataset and the chosen
run load, then runs the selected page from ``dashboard/app_pages``. Anything wrong with the
files becomes a friendly page (what is wrong, how to fix it) instead of a traceback.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # `streamlit run dashboard/app.py` from anywhere
    sys.path.insert(0, str(HERE.parent))

import streamlit as st  # noqa: E402

from dashboard import components, loaders, sidebar  # noqa: E402

# (file stem in app_pages/, title, icon) in navigation order.
PAGES = [
    ("overview", "Overview", ":material/dashboard:"),
    ("per_class", "Per-class", ":material/table_chart:"),
    ("confusion", "Confusion matrix", ":material/grid_on:"),
    ("top_losses", "Top losses", ":material/trending_down:"),
    ("cooccurrence", "Co-occurrence", ":material/join_inner:"),
    ("sequences", "Sequences", ":material/view_carousel:"),
    ("calibration", "Calibration & automation", ":material/tune:"),
    ("generalisation", "Generalisation", ":material/travel_explore:"),
    ("ecology", "Ecology impact", ":material/forest:"),
    ("compare", "Compare runs", ":material/compare_arrows:"),
    ("empty_filter", "Empty filter", ":material/filter_alt:"),
    ("embedding_map", "Embedding map", ":material/scatter_plot:"),
    ("try_model", "Try the model", ":material/photo_camera:"),
    ("relabel", "Relabel queue", ":material/edit_note:"),
    ("story", "Story", ":material/slideshow:"),
]


#: The default page: Overview, or in presenter mode the Story.
DEFAULT, PRESENTER_DEFAULT = "overview", "story"


def _presenter() -> bool:
    # The sidebar's toggle (or ?present=1 on a first visit): read before st.navigation runs.
    return bool(st.session_state.get("sb_present", st.query_params.get("present") == "1"))


def pages(hidden: frozenset[str] = frozenset(), *, presenter: bool = False) -> list:
    """The ``st.Page`` objects, in navigation order, then a hidden alias of the default page
    (the Overview, or the Story in presenter mode).

    Pages whose stem is in ``hidden`` stay reachable by URL but leave the menu (Try the model
    for a run without a checkpoint, e.g. an imported one).

    Streamlit serves the default page at ``/`` but still reserves its ``url_path``, so
    ``/overview`` (the obvious guess next to ``/per_class``) would show "Page not found". The
    default page takes the empty path and the alias answers ``/overview``; ``st.switch_page``
    and ``st.page_link`` match the first page with that file, i.e. ``/``.
    """
    first = PRESENTER_DEFAULT if presenter else DEFAULT
    listed = [st.Page(HERE / "app_pages" / f"{stem}.py", title=title, icon=icon,
                      url_path="" if stem == first else stem, default=stem == first,
                      visibility="hidden" if stem in hidden else "visible")
              for stem, title, icon in PAGES]
    stem, title, icon = next(p for p in PAGES if p[0] == first)
    alias = st.Page(HERE / "app_pages" / f"{stem}.py", title=title, icon=icon, url_path=stem,
                    visibility="hidden")
    return [*listed, alias]


def has_checkpoint(run_path: Path) -> bool:
    """Whether the run's manifest names a checkpoint file that exists (Try the model needs it)."""
    manifest = loaders.read_manifest(str(run_path), loaders.stamp(run_path / "manifest.json"))
    ckpt = (manifest.get("model") or {}).get("checkpoint")
    return bool(ckpt) and (run_path / ckpt).is_file()


def main() -> None:
    st.set_page_config(page_title="TrapLens", page_icon=":material/pets:", layout="wide")
    st.sidebar.markdown("### TrapLens")
    nav = None
    try:
        view = sidebar.sidebar()
        # The menu is built once the run is known: Try the model leaves it for runs without
        # a checkpoint (imported or synthetic runs); its URL still answers, with a message.
        nav = st.navigation(pages(frozenset() if has_checkpoint(view.run_path)
                                  else frozenset({"try_model"}), presenter=_presenter()))
        loaders.load_dataset(view.dataset_paths)
        loaders.load_run(view.run_path)
    except loaders.LOAD_ERRORS as exc:
        if nav is None:
            st.navigation(pages(presenter=_presenter()))
        components.error_page(exc)
        st.stop()
    components.begin_view()
    try:
        # The run's classes need not be the dataset's: every page says how they meet.
        components.label_space_caption(loaders.full_evalset(view))
        nav.run()
    except loaders.data_errors() as exc:  # e.g. an unreadable comparison run
        components.error_page(exc)
    finally:  # also after a page's st.stop(): every page offers its view as an HTML file
        st.divider()
        components.view_download(nav.title)


if __name__ == "__main__":  # streamlit runs the entry script as __main__ (AppTest too)
    main()
