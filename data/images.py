"""The one image opener of TrapLens (training, prediction, thumbnails, dashboard uploads).

Contract of :func:`open_image`:

- the result is a fully decoded ``RGB`` image, EXIF orientation applied (the size is that of
  the upright picture);
- CMYK, greyscale (8 and 16 bit), palette and alpha images become RGB (alpha composited on
  white);
- with ``size``, a JPEG is decoded in draft mode at the smallest 1/2, 1/4 or 1/8 scale whose
  short side is still >= ``size``, then resized (Lanczos) so the short side is exactly
  ``size``; images already smaller are never upscaled. Other formats are decoded fully and
  resized the same way;
- truncated, corrupt or unreadable files and decompression bombs (more than ``MAX_PIXELS``
  pixels) raise :class:`ImageError`, whatever ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` says.

Paths from a dataset go through :func:`resolve` (or :func:`open_in_root`), which refuses file
names that would leave the image root: absolute paths, ``..`` components, symlinks pointing
outside.
"""
from __future__ import annotations

import hashlib
import logging
import re
import threading
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from data.files import atomic_write

log = logging.getLogger(__name__)

MAX_PIXELS = 150_000_000  # ~7x a 20 MP camera frame; more is treated as a decompression bomb
#: Pixel budget of a picture a person uploads (the dashboard's "Try the model"): a 24 MP camera
#: frame; larger pictures are refused from their header, before any decoding.
UPLOAD_MAX_PIXELS = 24_000_000
#: Decodes of uploads running at once (each may hold up to ~UPLOAD_MAX_PIXELS x 8 bytes);
#: further ones wait for a free slot (:func:`open_bounded`).
MAX_CONCURRENT_DECODES = 2
_DECODE_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_DECODES)
THUMBNAIL_QUALITY = 85
_DRIVE = re.compile(r"^[A-Za-z]:")
_LOCK = threading.Lock()


class ImageError(ValueError):
    """An image that cannot be used: ``reason`` is one of missing, unreadable, truncated,
    corrupt, decompression bomb."""

    def __init__(self, path: str | Path, reason: str, detail: str = ""):
        self.path, self.reason, self.detail = Path(path), reason, detail
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))


class UnsafePath(ValueError):
    """A file name that would escape the image root."""


def check_file_name(file_name: str) -> str | None:
    """Why ``file_name`` may not be joined to an image root, or None when it is safe."""
    if not isinstance(file_name, str) or not file_name.strip():
        return "empty file name"
    if "\x00" in file_name:
        return "NUL byte in file name"
    if file_name.startswith(("/", "\\")) or _DRIVE.match(file_name):
        return "absolute path"
    if ".." in PurePosixPath(file_name.replace("\\", "/")).parts:
        return "'..' component"
    return None


def resolve(root: str | Path, file_name: str) -> Path:
    """``root / file_name``, refusing names that leave ``root`` (also through symlinks).

    Raises
    ------
    UnsafePath
        Absolute path, ``..`` component, or a symlink whose target lies outside ``root``.
    """
    reason = check_file_name(file_name)
    if reason is not None:
        raise UnsafePath(f"{file_name!r}: {reason}; file names must stay inside the image root "
                         f"{root}")
    base = Path(root).resolve()
    path = (base / file_name).resolve()
    if not path.is_relative_to(base):
        raise UnsafePath(f"{file_name!r}: resolves to {path}, outside the image root {base} "
                         "(symlink)")
    return path


def _load_strict(im: Image.Image) -> None:
    """``im.load()`` that never pads a truncated file, whatever PIL's global flag says."""
    if not ImageFile.LOAD_TRUNCATED_IMAGES:  # the usual case: no lock, decodes run in parallel
        im.load()
        return
    with _LOCK:  # someone enabled PIL's padding of truncated JPEGs: force it off meanwhile
        old = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            im.load()
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = old


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float32)
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
        return Image.fromarray(a.astype(np.uint8), "L").convert("RGB")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    return im.convert("RGB")


def _classify(path: Path, exc: BaseException) -> ImageError:
    if isinstance(exc, FileNotFoundError):
        return ImageError(path, "missing", "no such file")
    if isinstance(exc, (PermissionError, IsADirectoryError)):
        return ImageError(path, "unreadable", type(exc).__name__)
    if isinstance(exc, Image.DecompressionBombError):
        return ImageError(path, "decompression bomb", str(exc))
    if isinstance(exc, UnidentifiedImageError):
        return ImageError(path, "unreadable", "not an image file")
    text = str(exc)
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return ImageError(path, "truncated", text)
    return ImageError(path, "corrupt", f"{type(exc).__name__}: {text}")


def open_image(path: str | Path, *, size: int | None = None,
               max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode ``path`` to an upright RGB image (see the module docstring for the contract).

    ``max_pixels``: refuse larger pictures from their header, before decoding (reason
    ``decompression bomb`` above :data:`MAX_PIXELS`, else ``too large``).

    Raises
    ------
    ImageError
        Missing, unreadable, truncated, corrupt, or a decompression bomb.
    """
    path = Path(path)
    if size is not None and size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ImageError(path, "decompression bomb",
                                 f"{w}x{h} = {w * h} pixels > MAX_PIXELS {MAX_PIXELS}")
            if w * h > max_pixels:
                raise ImageError(path, "too large",
                                 f"{w}x{h} = {w * h:,} pixels; the limit is {max_pixels:,}")
            if size is not None and im.format == "JPEG":
                im.draft(im.mode if im.mode in ("RGB", "L") else None, (size, size))
            _load_strict(im)
            im = _reduce(im, size)
            im = ImageOps.exif_transpose(im) or im
            out = _to_rgb(im)
            if out is im:
                out = im.copy()
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError,
            MemoryError) as exc:
        raise _classify(path, exc) from exc
    if size is not None:
        short = min(out.size)
        if short > size:
            scale = size / short
            out = out.resize((max(1, round(out.width * scale)), max(1, round(out.height * scale))),
                             Image.Resampling.LANCZOS)
    return out


def _reduce(im: Image.Image, size: int | None) -> Image.Image:
    """Box-reduce a decoded non-JPEG picture by an integer factor keeping its short side
    >= ``size`` (JPEGs were already drafted), so conversion and resizing touch fewer pixels."""
    factor = min(im.size) // size if size else 1
    if factor < 2 or im.format == "JPEG":
        return im
    try:
        return im.reduce(factor)
    except (ValueError, NotImplementedError):  # a mode PIL cannot reduce: resize does it all
        return im


def open_bounded(path: str | Path, *, size: int, max_pixels: int = UPLOAD_MAX_PIXELS,
                 wait_s: float = 60.0) -> Image.Image:
    """:func:`open_image` for pictures a person hands over: refused above ``max_pixels``
    before decoding, decoded only to a short side of ``size`` (JPEG draft, PIL reduce), and at
    most :data:`MAX_CONCURRENT_DECODES` at once in this process (others wait up to ``wait_s``
    seconds, then ``ImageError`` with reason ``busy``)."""
    if not _DECODE_SLOTS.acquire(timeout=wait_s):
        raise ImageError(path, "busy", f"{MAX_CONCURRENT_DECODES} pictures are being decoded; "
                                       "try again in a moment")
    try:
        return open_image(path, size=size, max_pixels=max_pixels)
    finally:
        _DECODE_SLOTS.release()


def preview(image: Image.Image, *, max_side: int) -> Image.Image:
    """A copy of ``image`` whose long side is at most ``max_side`` (aspect kept, at least one
    pixel a side): what a page shows of any picture, 100000x2 panoramas included (browsers
    refuse to encode images wider than ~65,500 px).

    >>> preview(Image.new("RGB", (100_000, 2)), max_side=1024).size
    (1024, 1)
    """
    out = image.copy()
    if max(out.size) > max_side:
        out.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return out


def open_in_root(root: str | Path, file_name: str, *, size: int | None = None) -> Image.Image:
    """``open_image(resolve(root, file_name), size=size)``."""
    return open_image(resolve(root, file_name), size=size)


def thumbnail(root: str | Path, file_name: str, *, size: int, cache_dir: str | Path) -> Path:
    """A JPEG of the image fitting in ``size`` x ``size``, cached under ``cache_dir``.

    The cache key is the resolved path, its mtime and file size, and ``size``: an edited image
    gets a new thumbnail. Written atomically (temporary file, then rename).

    Raises
    ------
    UnsafePath, ImageError
    """
    path = resolve(root, file_name)
    try:
        st = path.stat()
    except OSError as exc:
        raise _classify(path, exc) from exc
    key = hashlib.sha256(f"{path}|{st.st_mtime_ns}|{st.st_size}|{size}".encode()).hexdigest()
    cache = Path(cache_dir)
    out = cache / key[:2] / f"{key}.jpg"
    if out.is_file():
        return out
    im = open_image(path, size=size)
    im.thumbnail((size, size), Image.Resampling.LANCZOS)
    # A cache file: atomic (no reader sees half a JPEG), not fsynced (rebuilt if ever lost).
    return atomic_write(out, write=lambda fh: im.save(fh, "JPEG", quality=THUMBNAIL_QUALITY),
                        durable=False)
