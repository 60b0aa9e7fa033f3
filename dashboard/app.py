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
    ("try_model", "Try the model", ":material/photo_camera:"),
    ("relabel", "Relabel queue", ":material/edit_note:"),
]


def pages() -> list:
    """The ``st.Page`` objects, in navigation order, then a hidden alias of the default page.

    Streamlit serves the default page at ``/`` but still reserves its ``url_path``, so
    ``/overview`` (the obvious guess next to ``/per_class``) would show "Page not found". The
    default page takes the empty path and the alias answers ``/overview``; ``st.switch_page``
    and ``st.page_link`` match the first page with that file, i.e. ``/``.
    """
    listed = [st.Page(HERE / "app_pages" / f"{stem}.py", title=title, icon=icon,
                      url_path="" if i == 0 else stem, default=i == 0)
              for i, (stem, title, icon) in enumerate(PAGES)]
    stem, title, icon = PAGES[0]
    alias = st.Page(HERE / "app_pages" / f"{stem}.py", title=title, icon=icon, url_path=stem,
                    visibility="hidden")
    return [*listed, alias]


def main() -> None:
    st.set_page_config(page_title="TrapLens", page_icon=":material/pets:", layout="wide")
    nav = st.navigation(pages())
    st.sidebar.markdown("### TrapLens")
    try:
        view = sidebar.sidebar()
        dataset = loaders.load_dataset(view.dataset_paths)
        run = loaders.load_run(view.run_path)
    except loaders.LOAD_ERRORS as exc:
        components.error_page(exc)
        st.stop()
    missing = set(run.classes) ^ set(dataset.classes)
    if missing:
        components.error_page(
            f"Run {view.run} and the dataset disagree on the class list "
            f"(e.g. {sorted(missing)[:3]}).",
            fix="Point --dataset at the JSON files the run was predicted on "
                "(its manifest.json lists them under dataset.paths).")
        st.stop()
    try:
        nav.run()
    except loaders.data_errors() as exc:  # e.g. an unreadable comparison run
        components.error_page(exc)


if __name__ == "__main__":  # streamlit runs the entry script as __main__ (AppTest too)
    main()
