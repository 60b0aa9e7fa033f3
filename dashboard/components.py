"""Reusable dashboard pieces: error page, metric cards, image grid, capture strip, large view.

Images never reach the page at full size: every picture goes through ``thumb()``, which asks
``data.images.thumbnail`` (the one image opener) for a small JPEG cached on disk under
``data.paths.thumbnail_dir()``. A missing or corrupt file becomes a labelled placeholder.

Galleries take a plain DataFrame, so every page can feed them:

- ``image_id``, ``file_name`` (required), ``caption`` (text under the picture, optional),
  ``seq_id`` (optional: adds a "capture" button that opens the whole capture as a strip).
- Instead of ``caption``, the fastai facts ``predicted, actual, loss, p_predicted, p_actual``
  (``analysis.gallery.FACT_COLUMNS``): the caption is then written for the cards of the shown
  page only (a 1 M-image view can hand over 100,000 rows; formatting all their captions alone
  would take a second).

This module only renders: the gallery rows are computed by ``analysis.gallery``
(``fastai_items``, ``ranked_items``, ``frame_predictions``), and look-ups over a whole eval set
(frames of a capture) are the ``EvalSet``'s own memoised indexes.
"""
from __future__ import annotations

import base64
import functools
import html
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import streamlit as st

from analysis.format import FASTAI_LEGEND, fastai_caption, fmt_interval
from analysis.gallery import FACT_COLUMNS, frame_predictions
from dashboard import loaders, state

if TYPE_CHECKING:  # pragma: no cover
    from analysis.evalset import EvalSet

log = logging.getLogger(__name__)

THUMB_SIZE = 256
STRIP_SIZE = 512
LARGE_SIZE = 1024
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="thumbs")


# --- text from files, URLs and users ---------------------------------------------------------

# Characters that can start Markdown, directive, math, HTML or autolink syntax.
# ``_`` between two letters or digits cannot start emphasis, so names like S1_B04 stay legible.
_INERT = str.maketrans({c: f"&#{ord(c)};" for c in "\\`*{}[]<>#!|~:$&\"'@"})
WORD_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?i)(?<=:)/|(?<=www)\.|@")
_EDGE_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")


def esc(value: object) -> str:
    """``value`` as inert text inside Markdown, a widget label or HTML (``st.markdown``,
    ``st.caption``, tabs, metrics, ``unsafe_allow_html`` blocks alike).

    Every text that comes from a file, a URL or a user (class, file, run, site and curator
    names, ids, reasons, error messages) goes through here before it is rendered: every
    character that can start Markdown, HTML or autolink syntax becomes a numeric character
    reference, which both show as the character itself and never read as syntax (no link,
    image, HTML tag, emphasis, directive or autolink); line breaks and other control
    characters become spaces.

    >>> esc("[x](https://evil.example) <img src=x> **b**").replace(WORD_JOINER, "+")
    '&#91;x&#93;(https&#58;+//evil.example) &#60;img src=x&#62; &#42;&#42;b&#42;&#42;'
    >>> esc("www.a.org ann@b.org").replace(WORD_JOINER, "+")
    'www+.a.org ann+&#64;b.org'
    >>> esc("S1_B04_R1 _em_ lion")
    'S1_B04_R1 &#95;em&#95; lion'
    """
    text = "".join(c if c.isprintable() else " " for c in str(value))
    # GFM autolinks are found in the text *after* references are decoded: an invisible word
    # joiner splits "https://", "www." and "name@host" so they never become links.
    text = _AUTOLINK.sub(lambda m: m.group(0)[:-1] + WORD_JOINER + m.group(0)[-1], text)
    return _EDGE_UNDERSCORE.sub("&#95;", text.translate(_INERT))


def code(value: object) -> str:
    """``value`` as a Markdown code span (shown literally, monospace), fenced with more
    backticks than any run inside it so it cannot close the span early; one line.

    >>> code("S1/B04_R1"), code("a`b")
    ('`S1/B04_R1`', '`` a`b ``')
    """
    text = "".join(c if c.isprintable() else " " for c in str(value))
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest or text.startswith(" ") or text.endswith(" ") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def inert_table(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` for ``st.table`` (whose cells, index and headers are Markdown): every text
    cell and label through :func:`esc`; numbers stay numbers."""
    def cell(v: object) -> object:
        return esc(", ".join(map(str, v)) if isinstance(v, (tuple, list)) else v) \
            if isinstance(v, (str, tuple, list)) else v

    out = table.map(cell)
    out.index = out.index.map(cell)
    out.columns = out.columns.map(cell)
    return out


# --- errors and cards -----------------------------------------------------------------------

def error_page(problem: BaseException | str, *, fix: str | None = None,
               title: str = "TrapLens cannot show this view") -> None:
    """A friendly error: what is wrong (``st.error``) and how to fix it; never a traceback."""
    st.title(title)
    st.error(esc(problem), icon=":material/error:")
    how = fix or getattr(problem, "fix", None) or (
        "Check the files given to `python -m dashboard --dataset JSON... --images ROOT "
        "--runs DIR` (or TRAPLENS_DATASET / TRAPLENS_IMAGES / TRAPLENS_RUNS), then reload.")
    st.info(how, icon=":material/build:")
    log.warning("dashboard error page: %s", problem)


def label_space_caption(ev: "EvalSet") -> None:
    """One caption, on every page, when the run's classes differ from the dataset's: how many
    classes each side lacks and how many images this model cannot score (and what was done
    with them); the class names in an expander (as table cells, never Markdown)."""
    from analysis.evalset import label_space_summary

    info = label_space_summary(ev)
    if info["kind"] == "identical" and not info["n_not_scorable"]:
        return
    unknown, extra = info["unknown_to_model"], info["extra_in_model"]
    what = "scored as errors" if info["scored_as_errors"] else "left out of the metrics"
    mapping = " (through the run's mapping.csv)" if info["mapping"] else ""
    st.caption(f"Run classes vs dataset classes: {info['kind']}{mapping}: "
               f"{len(unknown)} dataset class(es) the model cannot predict, {len(extra)} model "
               f"label(s) outside the dataset; **{info['n_not_scorable']:,} image(s) not "
               f"scorable by this model** ({what}).")
    with st.expander("Classes the run and the dataset do not share"):
        left, right = st.columns(2)
        left.dataframe(pd.DataFrame(unknown, columns=["class", "n_images"]), hide_index=True,
                       key="ls_unknown", column_config={
                           "class": st.column_config.TextColumn("unknown to the model")})
        right.dataframe(pd.DataFrame(extra, columns=["class", "n_predicted"]),
                        hide_index=True, key="ls_extra", column_config={
                            "class": st.column_config.TextColumn("model label, not a dataset "
                                                                 "class")})


def taxon_level(key: str = "taxon") -> str:
    """The "Taxonomic level" choice (label, species, genus, family, order, class) that the
    Per-class and Confusion pages share; lives in the URL as ``taxon``."""
    from data.taxonomy import LEVELS

    return state.url_widget(st.selectbox, "Taxonomic level", list(LEVELS), key=key,
                            default="label",
                            help="sum probabilities and labels within each taxon at this "
                                 "level (the three lion categories become one species; the "
                                 "gazelles meet at family Bovidae)")


def stop_if_empty(*evalsets: "EvalSet") -> None:
    """End the page with one friendly warning when the sidebar's split and slices leave no
    images (in any of ``evalsets``)."""
    if any(len(ev) == 0 for ev in evalsets):
        st.warning("No images match the sidebar's split and slices; widen them to see "
                   "this page.")
        st.stop()


def wait_prepared(poll: Callable[[], tuple[float, str] | None], *,
                  interval: float = 0.2) -> None:
    """Show the run's background preparation (``loaders.preparation``) as a progress bar until
    it is done; returns at once when it already is. Another click reruns the page as usual."""
    state_ = poll()
    if state_ is None:
        return
    with st.status("Preparing this run: losses, captures and calibration (once per run)…",
                   expanded=True) as box:
        bar = st.progress(0.0)
        while state_ is not None:
            fraction, step = state_
            bar.progress(min(max(float(fraction), 0.0), 1.0), text=step)
            time.sleep(interval)
            state_ = poll()
        box.update(label="Run prepared", state="complete", expanded=False)


#: Sets from this size up leave a page's slow parts to the background preparation (below it
#: they take milliseconds: the page computes them itself).
DEFER_ROWS = 200_000


def preparing_note(state_: tuple[float, str]) -> None:
    """Say that this part of a page is being prepared in the background (``state_``: the
    ``(fraction, step)`` of ``loaders.preparation``); pair it with :func:`rerun_when_prepared`."""
    fraction, step = state_
    st.progress(min(max(float(fraction), 0.0), 1.0),
                text=f"Being prepared in the background ({step}); this part fills in by itself.")


def rerun_when_prepared(poll: Callable[[], tuple[float, str] | None], *,
                        every: float = 1.0) -> None:
    """Re-run the page once the run's background preparation is done (a fragment polls
    ``poll`` every ``every`` seconds without re-running the rest of the page meanwhile)."""
    @st.fragment(run_every=every)
    def _poll() -> None:
        if poll() is None:
            st.rerun()

    _poll()


def metric_card(label: str, value: float | int | str, interval: Sequence[float] | None = None,
                *, digits: int = 3, help: str | None = None) -> None:
    """A bordered metric with its bootstrap interval underneath (cards in a row line up)."""
    text = value if isinstance(value, str) else (
        f"{value:,}" if isinstance(value, (int, np.integer)) else f"{float(value):.{digits}f}")
    ci = fmt_interval(interval, digits=digits)
    record("text", f"{label}: {text}" + (f" ({ci})" if ci else ""))
    st.metric(label, text, delta=ci or None, delta_color="off", delta_arrow="off", help=help,
              border=True, height="stretch")


def link_card(title: str, body: str, page: str, *, label: str = "Open",
              icon: str | None = None, query_params: dict[str, str] | None = None) -> None:
    """A bordered finding with a ``st.page_link`` to the page that explains it.

    ``page`` is relative to ``app.py`` (``"app_pages/sequences.py"``); ``query_params`` are
    that page's own params (the shared view follows by itself).
    """
    record("heading", title)
    record("text", body)
    with st.container(border=True):
        st.markdown(f"**{title}**")  # callers escape the names inside title and body
        st.markdown(body)
        page_link(page, label=label, icon=icon, query_params=query_params)


def page_link(page: str, *, label: str, icon: str | None = None,
              query_params: dict[str, str] | None = None) -> None:
    """``st.page_link`` that degrades to plain text while ``page`` is not in the navigation."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(page, label=label, icon=icon, query_params=query_params)
    except StreamlitAPIException:
        log.debug("page %s not registered", page)
        st.caption(label)


# --- thumbnails -----------------------------------------------------------------------------

def thumb(images_root: str | None, file_name: str, *, size: int = THUMB_SIZE) -> tuple[str | None, str]:
    """``(path to a cached JPEG thumbnail, "")`` or ``(None, why it cannot be shown)``."""
    if not images_root:
        return None, "no image folder set (--images)"
    from data.images import ImageError, UnsafePath, thumbnail
    from data.paths import thumbnail_dir

    try:
        path = thumbnail(images_root, file_name, size=size, cache_dir=thumbnail_dir())
    except ImageError as exc:
        return None, f"image {exc.reason}"
    except UnsafePath:
        return None, "unsafe file name"
    except (ValueError, OSError) as exc:  # anything else the opener lets through
        log.warning("thumbnail %s: %s", file_name, exc)
        return None, "image unreadable"
    return str(path), ""


def thumbs(images_root: str | None, file_names: Sequence[str], *,
           size: int = THUMB_SIZE) -> list[tuple[str | None, str]]:
    """``thumb()`` for a page of images, decoded in parallel (first view of a page only)."""
    return list(_POOL.map(lambda f: thumb(images_root, f, size=size), file_names))


def placeholder(reason: str, file_name: str = "") -> None:
    """A labelled grey box where an image cannot be shown."""
    st.html(
        "<div style='aspect-ratio:4/3;width:100%;display:flex;align-items:center;"
        "justify-content:center;flex-direction:column;background:#eceff1;color:#455a64;"
        "border:1px dashed #90a4ae;border-radius:6px;font-size:0.85rem;text-align:center'>"
        f"<b>{esc(reason)}</b><span style='font-size:0.7rem;word-break:break-all'>"
        f"{esc(file_name)}</span></div>"
    )


def show_image(images_root: str | None, file_name: str, *, size: int = THUMB_SIZE,
               cached: tuple[str | None, str] | None = None) -> None:
    """One thumbnail (or placeholder), as wide as its column."""
    path, why = cached if cached is not None else thumb(images_root, file_name, size=size)
    if path is None:
        placeholder(why, file_name)
    else:
        st.image(path, width="stretch")


# --- captions -------------------------------------------------------------------------------



def _caption(row: pd.Series) -> str:
    """A card's caption: its ``caption`` column, else the fastai facts, else nothing."""
    if "caption" in row.index:
        return str(row["caption"] or "")
    if all(f in row.index for f in FACT_COLUMNS):
        return fastai_caption(*(row[f] for f in FACT_COLUMNS))
    return ""


# --- dialogs --------------------------------------------------------------------------------

@st.dialog("Image", width="large")
def large_view(images_root: str | None, file_name: str, caption: str = "",
               species: Sequence[str] = ()) -> None:
    """The image at up to 1024 px (still through the thumbnail cache, never the original),
    with the species card of each class in ``species`` (its labels, then the prediction)."""
    show_image(images_root, file_name, size=LARGE_SIZE)
    st.caption(f"{esc(caption)}  \n{code(file_name)}" if caption else code(file_name))
    if species:
        view = state.current()
        ev = loaders.evalset(view)
        cm = loaders.confusion(view)
        for i, category in enumerate(dict.fromkeys(species)):
            species_card(category, confusion=cm, classes=ev.classes, key=f"lv_card_{i}")


@st.dialog("Capture", width="large")
def capture_dialog(ev: "EvalSet", seq_id: str, images_root: str | None) -> None:
    """All frames of one capture, each with its own prediction."""
    capture_strip(ev, seq_id, images_root=images_root)


def capture_strip(ev: "EvalSet", seq_id: str, *, images_root: str | None,
                  highlight: str | None = None) -> None:
    """The frames of ``seq_id`` left to right, each captioned with its prediction and labels.

    ``ev`` should be the unfiltered eval set so every frame shows, whatever the page filters.
    """
    idx = ev.capture_rows(seq_id)
    st.markdown(f"**Capture {code(seq_id)}** · {len(idx)} frame(s)")
    if not len(idx):
        st.info("No frames of this capture have predictions in this run.")
        return
    rows = frame_predictions(ev, idx).sort_values("frame_num", kind="stable")
    cols = st.columns(max(len(rows), 3))
    pics = thumbs(images_root, rows["file_name"].tolist(), size=STRIP_SIZE)
    for col, (_, r), pic in zip(cols, rows.iterrows(), pics):
        with col:
            show_image(images_root, r["file_name"], cached=pic)
            mark = " ◀" if highlight and r["image_id"] == highlight else ""
            ok = ("<b style='color:#2e7d32'>right</b>"
                  if r["predicted"] in str(r["actual"]).split("+")
                  else "<b style='color:#c62828'>wrong</b>")
            st.markdown(
                f"<div class='tl-strip-caption' style='font-size:0.8rem'>frame {r['frame_num']}"
                f"{mark}<br>{ok} pred <b>{esc(str(r['predicted']))}</b> "
                f"({r['p_predicted']:.2f})<br>actual {esc(str(r['actual']))}<br>"
                f"<code>{esc(str(r['image_id']))}</code></div>",
                unsafe_allow_html=True)


def _species_of(row: pd.Series) -> list[str]:
    """The classes a gallery card is about: its labels (``a+b``), then the prediction."""
    names = str(row["actual"]).split("+") if "actual" in row.index else []
    if "predicted" in row.index:
        names.append(str(row["predicted"]))
    return [n for n in names if n and n != "nan"]


# --- species cards --------------------------------------------------------------------------

def species_card(category: str, *, confusion: np.ndarray | None = None,
                 classes: Sequence[str] | None = None, key: str | None = None) -> None:
    """The species card of ``category`` (``analysis.cards``), with the run's confusions when
    ``confusion`` and ``classes`` are given; every field shown as text, never Markdown."""
    from analysis.cards import card_text
    from analysis.cards import species_card as build_card

    tax = loaders.taxonomy()
    card = build_card(category, taxonomy=tax, confusion=confusion, classes=classes)
    lines = card_text(card, taxonomy=tax).split("\n")
    with st.container(border=True, key=key):
        st.html(f"<div class='tl-species-card' data-category='{html.escape(category)}'>"
                f"<b style='font-size:1.25em'>{html.escape(card.vernacular_name)}</b> "
                f"<i>{html.escape(card.scientific_name)}</i></div>")
        st.text("\n".join(lines[1:]))
    record("text", "\n".join(lines))


# --- take-away figures and views ------------------------------------------------------------

_BLOCKS = "_tl_view_blocks"


def begin_view() -> None:
    """Start recording this script run's view (``app.py``, before the page)."""
    st.session_state[_BLOCKS] = []


def record(kind: str, value: object) -> None:
    """Add a block (``analysis.report.html.render_view``'s kinds) to "download this view"."""
    st.session_state.setdefault(_BLOCKS, []).append((kind, value))


def table(data: pd.DataFrame, **kwargs):
    """``st.dataframe(data, **kwargs)``, recorded for "download this view"; returns what
    ``st.dataframe`` returns (the selection event with ``on_select``)."""
    record("table", data)
    return st.dataframe(data, **kwargs)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "figure"


def figure(fig, name: str, *, key: str | None = None, **kwargs):
    """``st.plotly_chart(fig, key=key, **kwargs)`` plus PNG and SVG downloads of the figure at
    slide size (1920 x 1080, title and the run named), drawn only when clicked.

    Returns what ``st.plotly_chart`` returns (the selection event with ``on_select``).
    """
    from analysis.plots import SLIDE_HEIGHT, SLIDE_WIDTH, browser_path, inert_figure, slide_figure

    fig = inert_figure(fig)  # names from files show as text, never as live links
    event = st.plotly_chart(fig, key=key, **kwargs)
    view = state.current()
    record("figure", fig)
    slide = slide_figure(fig, run=view.run).to_json()
    stem = f"{_slug(name)}_{_slug(view.run)}"
    wkey = key or f"fig_{_slug(name)}"
    if browser_path() is None:
        st.caption("Figure downloads need Chromium or Chrome on the server (`make browser`).")
        return event
    a, b, _ = st.columns([1, 1, 4])
    for col, fmt, mime in ((a, "png", "image/png"), (b, "svg", "image/svg+xml")):
        col.download_button(
            fmt.upper(), data=functools.partial(loaders.figure_file, slide, fmt),
            file_name=f"{stem}.{fmt}", mime=mime, key=f"{wkey}_{fmt}", on_click="ignore",
            icon=":material/download:", type="tertiary",
            help=f"this figure as {fmt.upper()}, {SLIDE_WIDTH} x {SLIDE_HEIGHT}, for a slide")
    return event


def _render_view(title: str, blocks: list, *, subtitle: str) -> str:
    # imported on the click: the report's templates and figure code take seconds to import,
    # which a first page load would otherwise pay
    from analysis.report.html import render_view

    return render_view(title, blocks, subtitle=subtitle)


def view_download(title: str) -> None:
    """A "Download this view" button: the recorded blocks of this run as one self-contained
    HTML page (``analysis.report.html.render_view``), built when clicked."""
    blocks = list(st.session_state.get(_BLOCKS, []))
    view = state.current()
    subtitle = (f"run {view.run} · split {view.split} · {view.policy} policy · "
                f"{view.level} level")
    st.download_button(
        "Download this view", data=functools.partial(_render_view, title, blocks,
                                                     subtitle=subtitle),
        file_name=f"traplens_{_slug(title)}_{_slug(view.run)}.html", mime="text/html",
        key="tl_view_download", on_click="ignore", icon=":material/download:",
        help="this page as one HTML file that works offline (figures, tables, cards)")


# --- the gallery ----------------------------------------------------------------------------

def paginate(n: int, *, key: str, per_page: int) -> tuple[int, int]:
    """Page picker kept in the URL as ``<key>_page``; returns the ``[start, stop)`` rows."""
    n_pages = max(1, math.ceil(n / per_page))
    page = min(max(state.get_int(f"{key}_page", 1), 1), n_pages)
    if n_pages > 1:
        c1, c2, c3 = st.columns([1, 2, 1])
        if c1.button("◀ Previous", key=f"{key}_prev", disabled=page <= 1):
            page -= 1
        if c3.button("Next ▶", key=f"{key}_next", disabled=page >= n_pages):
            page += 1
        c2.markdown(f"<div style='text-align:center'>page {page} of {n_pages}</div>",
                    unsafe_allow_html=True)
    state.set_param(f"{key}_page", None if page == 1 else page)
    start = (page - 1) * per_page
    return start, min(start + per_page, n)


#: Gallery rows a page builds at most (``analysis.gallery.fastai_items(limit=...)``): 50 pages
#: of 24, the largest losses first; a cell of a million images shows those.
GALLERY_MAX = 1200


def image_grid(items: pd.DataFrame, *, key: str, images_root: str | None,
               capture_ev: "EvalSet | None" = None, per_page: int = 24, columns: int = 6,
               legend: str | None = None, empty: str = "No images to show.",
               total: int | None = None) -> None:
    """A paginated thumbnail gallery with captions, a large view and a capture strip per card.

    Parameters
    ----------
    items : DataFrame with ``image_id``, ``file_name``, optional ``caption`` and ``seq_id``.
    key : page-prefixed widget/URL key (``cm_gal``); the page number is ``<key>_page``.
    capture_ev : the eval set whose frames the capture strip shows (omit: no capture button).
    total : how many images ``items`` was cut from (largest losses first), when it was.
    """
    n = len(items)
    if n == 0:
        st.info(empty)
        return
    count = (f"{n:,} image(s)" if total is None or total <= n
             else f"the {n:,} with the largest loss of {total:,} images")
    st.caption(count + (f" · {legend}" if legend else ""))
    start, stop = paginate(n, key=key, per_page=per_page)
    page = items.iloc[start:stop]
    pics = thumbs(images_root, page["file_name"].astype(str).tolist())
    cols = st.columns(columns)
    for i, ((_, row), pic) in enumerate(zip(page.iterrows(), pics)):
        with cols[i % columns]:
            _card(row, pic, key=f"{key}_{start + i}", images_root=images_root,
                  capture_ev=capture_ev)


def _data_uri(path: str | None) -> str | None:
    """A cached thumbnail as a ``data:`` URI (None when there is none), for the view download."""
    if path is None:
        return None
    try:
        return "data:image/jpeg;base64," + base64.b64encode(Path(path).read_bytes()).decode()
    except OSError:
        return None


def _card(row: pd.Series, pic: tuple[str | None, str], *, key: str, images_root: str | None,
          capture_ev: "EvalSet | None") -> None:
    image_id = str(row["image_id"])
    caption = _caption(row)
    record("image", (_data_uri(pic[0]), f"{caption} · {image_id}"))
    with st.container(border=True):
        show_image(images_root, str(row["file_name"]), cached=pic)
        st.markdown(
            f"<div class='tl-caption' data-image-id='{esc(image_id)}' "
            f"style='font-size:0.78rem;line-height:1.25' title='{esc(image_id)}'>"
            # the file name on one line, cut at its start (rtl) so the image number stays
            # readable; the full id is the tooltip
            f"{esc(caption)}<br><code style='font-size:0.62rem;white-space:nowrap;"
            f"display:inline-block;max-width:100%;overflow:hidden;text-overflow:ellipsis;"
            f"direction:rtl'>"
            f"{esc(image_id.rsplit('/', 1)[-1])}</code></div>",
            unsafe_allow_html=True)
        b1, b2 = st.columns(2)
        if b1.button("Large", key=f"{key}_big", icon=":material/zoom_in:",
                     help="open this image large"):
            large_view(images_root, str(row["file_name"]), caption, _species_of(row))
        if capture_ev is not None and "seq_id" in row and b2.button(
                "Capture", key=f"{key}_seq", icon=":material/view_carousel:",
                help="all frames of this capture with their predictions"):
            capture_dialog(capture_ev, str(row["seq_id"]), images_root)
