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

import logging
import math
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import streamlit as st

from analysis.format import FASTAI_LEGEND, fastai_caption, fmt_interval
from analysis.gallery import FACT_COLUMNS, frame_predictions
from dashboard import state

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


def stop_if_empty(*evalsets: "EvalSet") -> None:
    """End the page with one friendly warning when the sidebar's split and slices leave no
    images (in any of ``evalsets``)."""
    if any(len(ev) == 0 for ev in evalsets):
        st.warning("No images match the sidebar's split and slices; widen them to see "
                   "this page.")
        st.stop()


def metric_card(label: str, value: float | int | str, interval: Sequence[float] | None = None,
                *, digits: int = 3, help: str | None = None) -> None:
    """A bordered metric with its bootstrap interval underneath (cards in a row line up)."""
    text = value if isinstance(value, str) else (
        f"{value:,}" if isinstance(value, (int, np.integer)) else f"{float(value):.{digits}f}")
    ci = fmt_interval(interval, digits=digits)
    st.metric(label, text, delta=ci or None, delta_color="off", delta_arrow="off", help=help,
              border=True, height="stretch")


def link_card(title: str, body: str, page: str, *, label: str = "Open",
              icon: str | None = None, query_params: dict[str, str] | None = None) -> None:
    """A bordered finding with a ``st.page_link`` to the page that explains it.

    ``page`` is relative to ``app.py`` (``"app_pages/sequences.py"``); ``query_params`` are
    that page's own params (the shared view follows by itself).
    """
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
def large_view(images_root: str | None, file_name: str, caption: str = "") -> None:
    """The image at up to 1024 px (still through the thumbnail cache, never the original)."""
    show_image(images_root, file_name, size=LARGE_SIZE)
    st.caption(f"{esc(caption)}  \n{code(file_name)}" if caption else code(file_name))


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


def image_grid(items: pd.DataFrame, *, key: str, images_root: str | None,
               capture_ev: "EvalSet | None" = None, per_page: int = 24, columns: int = 6,
               legend: str | None = None, empty: str = "No images to show.") -> None:
    """A paginated thumbnail gallery with captions, a large view and a capture strip per card.

    Parameters
    ----------
    items : DataFrame with ``image_id``, ``file_name``, optional ``caption`` and ``seq_id``.
    key : page-prefixed widget/URL key (``cm_gal``); the page number is ``<key>_page``.
    capture_ev : the eval set whose frames the capture strip shows (omit: no capture button).
    """
    n = len(items)
    if n == 0:
        st.info(empty)
        return
    st.caption(f"{n:,} image(s)" + (f" · {legend}" if legend else ""))
    start, stop = paginate(n, key=key, per_page=per_page)
    page = items.iloc[start:stop]
    pics = thumbs(images_root, page["file_name"].astype(str).tolist())
    cols = st.columns(columns)
    for i, ((_, row), pic) in enumerate(zip(page.iterrows(), pics)):
        with cols[i % columns]:
            _card(row, pic, key=f"{key}_{start + i}", images_root=images_root,
                  capture_ev=capture_ev)


def _card(row: pd.Series, pic: tuple[str | None, str], *, key: str, images_root: str | None,
          capture_ev: "EvalSet | None") -> None:
    image_id = str(row["image_id"])
    caption = _caption(row)
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
            large_view(images_root, str(row["file_name"]), caption)
        if capture_ev is not None and "seq_id" in row and b2.button(
                "Capture", key=f"{key}_seq", icon=":material/view_carousel:",
                help="all frames of this capture with their predictions"):
            capture_dialog(capture_ev, str(row["seq_id"]), images_root)
