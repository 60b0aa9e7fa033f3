"""One atomic file writer for every package: readers see the old file or the new one, never a part.

A temporary file beside the target, written, flushed and fsynced, then ``os.replace``d over the
target, then the folder fsynced so the rename itself is durable. The new file gets the mode an
ordinary ``open()`` would give it (0666 less the user's umask), not ``mkstemp``'s 0600.
"""
from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable
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


# -- outputs that must not clobber inputs -------------------------------------------------------
class OutputError(ValueError):
    """An output path the command must not write (message names the path and the reason)."""


_MAGIC = ((b"SQLite format 3\x00", "sqlite"), (b"PK\x03\x04", "zip"), (b"PAR1", "parquet"),
          (b"\x89PNG", "png"), (b"\xff\xd8\xff", "jpeg"))


_CCT_LIST = re.compile(rb'"(?:images|annotations)"\s*:\s*\[')


def sniff(path: str | Path) -> str:
    """What kind of file ``path`` holds, from its first bytes: ``sqlite``, ``zip``, ``parquet``,
    ``png``, ``jpeg``, ``cct-json`` (a COCO Camera Traps dataset), ``json``, ``html``, ``text``
    or ``binary``.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.json"
    >>> _ = p.write_text('{"images": [], "annotations": [], "categories": []}')
    >>> sniff(p)
    'cct-json'
    """
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if b"\x00" in head:
        return "binary"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"{", b"["):
        # A dataset holds an ``images`` or ``annotations`` list; a report only counts them.
        return "cct-json" if text[:1] == b"{" and _CCT_LIST.search(head) else "json"
    if text[:15].lower().startswith((b"<!doctype html", b"<html")):
        return "html"
    return "text"


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(out: str | Path, *, inputs: Iterable[str | Path | None] = (),
                 kinds: Iterable[str] = (), what: str = "output", folder: bool = False) -> Path:
    """Refuse, before any work, to write ``out`` where it would destroy something.

    Refused: ``out`` is one of ``inputs`` (the same file, or a file inside an input folder such
    as a run folder or an images root), or, for a file output, an existing folder or an existing
    file whose :func:`sniff` kind is not in ``kinds`` (overwriting a previous output of the same
    kind is allowed). ``folder=True``: ``out`` is a folder the command writes into (a run folder,
    a Camtrap DP package); an existing file there is refused, and so is a folder holding one of
    ``inputs`` only if ``out`` is that input itself (check each file written inside with another
    call). Raises :class:`OutputError` naming the path and the reason; returns ``out``.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); db = d / "curation.sqlite"
    >>> _ = db.write_bytes(b"SQLite format 3\\x00")
    >>> check_output(d / "out.csv", inputs=[db], kinds=["text"]).name
    'out.csv'
    >>> check_output(db, inputs=[], kinds=["text"], what="CSV export")
    Traceback (most recent call last):
    ...
    data.files.OutputError: ...curation.sqlite: exists and holds sqlite data, not a previous CSV export (text); refusing to overwrite it
    """
    out = Path(out)
    resolved = out.resolve()
    for given in inputs:
        if given is None or str(given) == "":
            continue
        src = Path(given)
        if _same(out, src) or resolved == src.resolve():
            raise OutputError(f"{out}: refusing to write the {what} over an input of this "
                              f"command ({src}); choose another path")
        if src.is_dir() and src.resolve() in resolved.parents:
            raise OutputError(f"{out}: refusing to write the {what} inside the input folder "
                              f"{src}; choose a path outside it")
    if folder:
        if out.exists() and not out.is_dir():
            raise OutputError(f"{out}: exists and is a file ({sniff(out)} data), but the {what} "
                              "is a folder; choose a folder path")
        return out
    if out.is_dir():
        raise OutputError(f"{out}: is a folder; give a file path for the {what}")
    allowed = set(kinds)
    if out.exists() and allowed and out.stat().st_size:  # an empty file holds nothing to lose
        found = sniff(out)
        if found not in allowed:
            raise OutputError(f"{out}: exists and holds {found} data, not a previous {what} "
                              f"({'/'.join(sorted(allowed))}); refusing to overwrite it")
    return out


def neutralise_csv_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet will not run as a formula (OWASP CSV injection rule).

    Text starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading ``'``;
    anything else (numbers included) is returned as it is.

    >>> neutralise_csv_cell("=HYPERLINK(\\"http://x\\")"), neutralise_csv_cell("-3"), neutralise_csv_cell(-3)
    ('\\'=HYPERLINK("http://x")', "'-3", -3)
    """
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
