"""Thumbnails for the HTML report, as ``data:`` URIs (the page fetches nothing)."""
from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from pathlib import Path

from data.images import ImageError, UnsafePath, thumbnail
from data.paths import thumbnail_dir

log = logging.getLogger(__name__)

THUMB_SIZE = 224


def data_uri(jpeg: Path) -> str:
    """``data:image/jpeg;base64,...`` of a JPEG file."""
    return "data:image/jpeg;base64," + base64.b64encode(Path(jpeg).read_bytes()).decode()


def thumbnails(rows: Sequence[dict], images_root: str | Path | None, *,
               size: int = THUMB_SIZE) -> dict[str, str | None]:
    """``image_id -> data:image/jpeg;base64,...`` (None where the image cannot be opened).

    Thumbnails come from :func:`data.images.thumbnail` (cached under the work folder); an
    image that is missing, truncated or outside the root gets no picture, and the report goes on.

    Parameters
    ----------
    rows : sequence of dict
        Report rows with ``image_id`` and ``file_name`` (duplicates are made once).
    images_root : str or Path, optional
        Where the ``file_name`` paths live; None: no picture for any row.
    size : int
        Short side of the thumbnails, in pixels.

    Returns
    -------
    dict of str to (str or None)
    """
    out: dict[str, str | None] = {}
    failed = []
    cache = thumbnail_dir()
    for r in rows:
        iid, name = r.get("image_id"), r.get("file_name")
        if iid in out:
            continue
        out[iid] = None
        if images_root is None or not name:
            continue
        try:
            out[iid] = data_uri(thumbnail(images_root, name, size=size, cache_dir=cache))
        except (ImageError, UnsafePath, OSError) as exc:
            failed.append(f"{name}: {exc}")
    if failed:
        log.warning("%d thumbnail(s) unavailable, e.g. %s", len(failed), failed[0])
    return out
