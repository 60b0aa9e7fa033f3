"""One atomic file writer for every package: readers see the old file or the new one, never a part.

A temporary file beside the target, written, flushed and fsynced, then ``os.replace``d over the
target, then the folder fsynced so the rename itself is durable. The new file gets the mode an
ordinary ``open()`` would give it (0666 less the user's umask), not ``mkstemp``'s 0600.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_file(fh: IO) -> None:
    """Flush Python's and the OS's buffers of ``fh`` to disk."""
    fh.flush()
    os.fsync(fh.fileno())


def fsync_dir(folder: str | Path) -> None:
    """Make a rename inside ``folder`` durable (best effort: some file systems refuse)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, data: bytes | str | None = None, *,
                 write: Callable[[IO[Any]], None] | None = None, text: bool | None = None,
                 newline: str | None = None, durable: bool = True) -> Path:
    """Write ``data`` (or whatever ``write(fh)`` writes) to ``path`` atomically.

    ``text`` defaults to ``isinstance(data, str)``; text is UTF-8. ``durable=False`` skips the
    fsyncs (still atomic, but a power cut may lose the file): for caches that are rebuilt
    anyway, such as thumbnails. Returns ``path``.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write(p, "hello").read_text()
    'hello'
    """
    if (data is None) == (write is None):
        raise TypeError("atomic_write takes either data or write=, not both or neither")
    path = Path(path)
    if text is None:
        text = isinstance(data, str)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        kwargs = {"encoding": "utf-8", "newline": newline} if text else {}
        with os.fdopen(fd, "w" if text else "wb", **kwargs) as fh:
            if write is not None:
                write(fh)
            else:
                fh.write(data)
            if durable:
                fsync_file(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)
    return path


def atomic_write_path(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Atomic write for writers that need a path, not a file object (``pq.write_table``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return path
