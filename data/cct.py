"""COCO Camera Traps (Snapshot Serengeti v2 flavour) loading, caching and validation.

``load_dataset`` reads one or several published per-season files as they are (bare ``NaN``,
sentinels, string count bins) into the tidy tables of :class:`Dataset`. Files of several GB are
streamed (see ``iter_members``): memory stays near the size of the finished tables. The tables
are cached as Parquet under ``data.paths.cache_dir()/datasets``, keyed by every source file's
size, mtime and sha256, so a second load of unchanged files only hashes them and reads Parquet.
"""
from __future__ import annotations

import hashlib
import json
import logging
import operator
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data import paths as _paths
from data import tables as _tables
from data.files import atomic_write

log = logging.getLogger(__name__)

REQUIRED_KEYS = ("images", "annotations", "categories")
LOADER_VERSION = 2  # bump when the tables change shape: old cache entries are then ignored
CHUNK_BYTES = 32 << 20
_FRAMES = ("images", "labels", "sequences", "categories", "problems")


class DatasetError(ValueError):
    """A dataset file that cannot be used; the message names the file and the reason."""


# --- streaming reader: msgspec over batches of whole elements -----------------------------
# msgspec parses and validates every byte. What it cannot do is done here, vectorised over
# bytes: bare NaN tokens (not JSON) become null outside strings, and the two big arrays are
# cut into batches of whole elements, so memory stays near one batch. A raw newline is never
# inside a JSON string, so a byte's string state follows from the quotes since the last
# newline: that "line rule" settles the indented published files cheaply; the exact scan
# (every quote, escapes, brackets) covers whatever it cannot settle.

_Text = str | int | None         # ids and names: strings, ints tolerated (converted later)
_Number = int | float | str | None  # numeric fields: "unknown", floats checked later
_Flag = bool | int | str | None


class ImageRecord(msgspec.Struct, gc=False):
    """The fields of ``images[]`` the loader reads; msgspec skips the others. Values of
    another JSON type (a list, an object) fail the decode: the batch is then read as plain
    dicts and the tables word the problem."""

    id: _Text = None
    file_name: _Text = None
    seq_id: _Text = None
    frame_num: _Number = None
    seq_num_frames: _Number = None
    location: _Text = None
    datetime: _Text = None
    width: _Number = None
    height: _Number = None
    corrupt: _Flag = None
    season: _Text = None


class AnnotationRecord(msgspec.Struct, gc=False):
    """The fields of ``annotations[]`` the loader reads; msgspec skips the others."""

    id: _Text = None
    image_id: _Text = None
    category_id: _Number = None
    season: _Text = None
    count: _Text = None
    sequence_level_annotation: _Flag = None


class CategoryRecord(TypedDict, total=False):
    """One ``categories[]`` entry."""

    id: Any
    name: Any


class Info(msgspec.Struct):
    """``info`` as published (validated while reading; the tables do not use it)."""

    version: Any = None
    description: Any = None
    date_created: Any = None
    contributor: Any = None


# what load_dataset decodes each member to (a streamed array: each element)
RECORD_TYPES: dict[str, Any] = {"images": ImageRecord, "annotations": AnnotationRecord,
                                "categories": list[CategoryRecord], "info": Info}
_GENERIC = msgspec.json.Decoder()
_WS = b" \t\r\n"
_DELTA = np.zeros(256, dtype=np.int64)
_DELTA[list(b"{[")] = 1
_DELTA[list(b"}]")] = -1
_FAST_MIN = 1 << 16  # a streamed array's buffer worth a fast cut
_ARRAY_END = re.compile(rb"\}\s*\]\s*[,}]")  # a last element, then the array's end
_WINDOW = 64         # bytes the line rule looks back at most


def _escaped(buf: bytes, quote: int) -> bool:
    n, i = 0, quote - 1
    while i >= 0 and buf[i] == 0x5C:
        n, i = n + 1, i - 1
    return n % 2 == 1


def _in_string(buf: bytes, arr: np.ndarray) -> np.ndarray:
    """Exact: 1 for bytes inside a JSON string (and on its opening quote); ``buf`` starts
    outside any string."""
    quote = arr == 0x22
    maybe = np.flatnonzero(quote[1:] & (arr[:-1] == 0x5C)) + 1
    for p in maybe.tolist():  # rare: a quote after a backslash is escaped when the run is odd
        if _escaped(buf, p):
            quote[p] = False
    return np.bitwise_xor.accumulate(quote.view(np.uint8))


def _outside_strings(buf: bytes, arr: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Which positions ``pos`` of ``buf`` (which starts outside strings) are outside strings.

    The line rule, walking back from all positions at once: an even number of quotes since
    the last newline (or the start) means outside. Positions whose line holds a backslash
    or reaches back more than ``_WINDOW`` bytes are settled by the exact scan.
    """
    odd = np.zeros(pos.size, dtype=bool)
    unsure = np.zeros(pos.size, dtype=bool)
    act, cur = np.arange(pos.size), pos
    for _ in range(_WINDOW):
        cur = cur - 1
        byte = np.where(cur >= 0, arr[np.maximum(cur, 0)], 0x0A)
        odd[act[byte == 0x22]] ^= True
        esc = byte == 0x5C
        unsure[act[esc]] = True
        keep = (byte != 0x0A) & ~esc
        act, cur = act[keep], cur[keep]
        if not act.size:
            break
    unsure[act] = True
    if unsure.any():
        odd[unsure] = _in_string(buf, arr)[pos[unsure]] == 1
    return ~odd


def _denan(text: bytes) -> bytes:
    """``text`` (which starts outside strings) with each bare ``NaN`` token as ``null``;
    ``NaN`` inside strings stays text."""
    if b"NaN" not in text:
        return text
    arr = np.frombuffer(text, dtype=np.uint8)
    pos = np.flatnonzero(arr[:-2] == 0x4E)
    pos = pos[(arr[pos + 1] == 0x61) & (arr[pos + 2] == 0x4E)]
    bare = _outside_strings(text, arr, pos)
    if bare.all():  # the published files: one pass in C
        return text.replace(b"NaN", b"null")
    pos = pos[bare]
    out = arr.copy()
    out[pos], out[pos + 1], out[pos + 2] = 0x6E, 0x75, 0x6C  # "nul", then one more "l"
    return np.insert(out, pos + 3, 0x6C).tobytes()


def _denan_fast(text: bytes) -> bytes:
    """Every ``NaN`` as ``null``, in one pass in C, inside strings too. For typed records
    only (``iter_members(fast_nan=True)``): the caller checks that no text it keeps contains
    "null" and otherwise decodes the batch again with the exact :func:`_denan`."""
    return text.replace(b"NaN", b"null") if b"NaN" in text else text


def _structure(buf: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact: positions of ``{}[],`` outside strings in ``buf`` (which starts outside
    strings), those characters, and the nesting depth before each (0 at the start)."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    folded = arr | 0x20  # maps [ ] onto { }
    pos = np.flatnonzero((folded == 0x7B) | (folded == 0x7D) | (arr == 0x2C))
    if pos.size and b'"' in buf:
        pos = pos[_in_string(buf, arr)[pos] == 0]
    char = arr[pos]
    delta = _DELTA[char]
    return pos, char, np.cumsum(delta) - delta


def _fast_items(buf: bytes) -> int | None:
    """Fast cut inside a streamed array (``buf`` starts at an element): the length of the
    elements up to the last ``},`` whose brace the line rule puts outside strings, or None.
    The caller's decode of ``[`` + ``buf[:cut]`` + ``]`` proves the cut: that parses only
    when the cut ends an element of this array (inside a string or a nested value, or past
    the array's end, it cannot)."""
    end = len(buf)
    for _ in range(64):  # the last comma after a closing brace
        comma = buf.rfind(b",", 0, end)
        if comma <= 0:
            return None
        j = comma - 1
        while j > 0 and buf[j] in _WS:
            j -= 1
        if buf[j] == 0x7D:
            break
        end = comma
    else:
        return None
    arr = np.frombuffer(buf, dtype=np.uint8)
    return comma if _outside_strings(buf, arr, np.array([j]))[0] else None


class _Reader:
    """A file read forward ``chunk`` at a time: ``buf[at:]`` is what is left of it to
    parse, from file offset ``base + at``."""

    def __init__(self, path: Path, fh: Any, chunk: int) -> None:
        self.path, self.fh, self.chunk = path, fh, chunk
        self.buf, self.at, self.base, self.eof = b"", 0, 0, False

    def fail(self, at: int, reason: str) -> DatasetError:
        return DatasetError(f"{self.path}: {reason} (at byte {self.base + self.at + at})")

    def more(self) -> None:
        """Read on (at least as much as is held, so a long value costs linear time)."""
        if self.eof:
            raise self.fail(len(self.buf) - self.at,
                            "invalid JSON: unexpected end of file (truncated?)")
        data = self.fh.read(max(self.chunk, len(self.buf) - self.at))
        self.eof = not data
        rest = memoryview(self.buf)[self.at:]
        self.buf = b"".join((rest, data)) if len(rest) else data  # one copy at most
        self.base, self.at = self.base + self.at, 0

    def live(self) -> bytes:
        """What is left to parse, as one bytes object starting at offset 0."""
        if self.at:
            self.buf, self.base, self.at = self.buf[self.at:], self.base + self.at, 0
        return self.buf

    def drop(self, n: int) -> None:
        self.at += n

    def peek(self) -> int | None:
        """The next byte that is not whitespace (skipping the whitespace); None at EOF."""
        while True:
            buf, i = self.buf, self.at
            while i < len(buf) and buf[i] in _WS:
                i += 1
            self.at = i
            if i < len(buf):
                return buf[i]
            if self.eof:
                return None
            self.more()

    def expect(self, chars: bytes, what: str) -> int:
        c = self.peek()
        if c is None:
            self.more()  # raises: unexpected end of file
        if c not in chars:
            raise self.fail(0, f"invalid JSON: expected {what}")
        self.drop(1)
        return c

    def key(self) -> str:
        """The object key at the next byte, and the ':' after it."""
        if self.peek() != 0x22:
            raise self.fail(0, "invalid JSON: object key is not a string")
        end = self.at
        while True:
            end = self.buf.find(b'"', end + 1)
            if end < 0:
                end = len(self.buf) - 1 - self.at
                self.more()
                end += self.at
            elif not _escaped(self.buf, end):
                break
        try:
            key = msgspec.json.decode(self.buf[self.at:end + 1])
        except msgspec.DecodeError:
            raise self.fail(0, "invalid JSON: object key is not a string") from None
        self.at = end + 1
        self.expect(b":", "':' after a key")
        return key

    def until(self, closers: bytes, *, last_comma: bool) -> int:
        """Length of the values at the start of the buffer up to the first of ``closers``
        at their depth; with ``last_comma``, up to the last comma at that depth in the
        buffer when no closer is in it. Reads on while neither is found."""
        buf = self.live()
        window = len(buf) if last_comma else 1 << 16  # a member: look near first
        while True:
            pos, char, before = _structure(buf[:window])
            top = before == 0
            close = np.flatnonzero(top & np.isin(char, np.frombuffer(closers, np.uint8)))
            if close.size:
                return int(pos[close[0]])
            commas = np.flatnonzero(top & (char == 0x2C))
            if last_comma and commas.size:
                return int(pos[commas[-1]])
            if window < len(buf):
                window *= 4
            else:
                self.more()
                buf = self.buf
                window = len(buf)

    def decode(self, region: bytes, decoder: msgspec.json.Decoder, what: str,
               fast: bool = False) -> Any:
        """``region`` decoded; values that do not fit the decoder's type come as plain
        objects, for the caller to word the problem. ``fast``: see ``_elements``."""
        try:
            if fast and b"NaN" in region:
                try:
                    return decoder.decode(_denan_fast(region))
                except msgspec.DecodeError:  # worded from the exact rewrite below
                    pass
            return decoder.decode(_denan(region))
        except msgspec.ValidationError:
            if decoder is _GENERIC:
                raise
            return self.decode(region, _GENERIC, what)  # exact: plain objects keep all text
        except msgspec.DecodeError as exc:
            raise self.fail(0, f"invalid JSON in {what}: {exc}") from None


def iter_members(path: Path, *, stream: tuple[str, ...], chunk_bytes: int = CHUNK_BYTES,
                 raw: bool = False, types: Mapping[str, Any] | None = None,
                 fast_nan: bool = False) -> Iterator[tuple[str, str, Any]]:
    """Yield ``(key, "value", obj)`` per top-level member of the JSON object in ``path``, but
    ``(key, "start", None)`` then ``(key, "items", list)`` batches for the arrays named in
    ``stream``. Bare ``NaN`` tokens are read as None; "NaN" inside strings stays text.

    ``types`` maps a member to the type msgspec decodes it to (for a streamed array: each
    element's type, whose missing fields are skipped, not built). Other members, and a batch
    whose values do not fit the type, come as plain Python objects. With ``raw``, each ``obj``
    is a pair ``(obj, bytes)``: the value, or the batch of elements (comma-separated, without
    the brackets), exactly as the file spells it (``(None, None)`` for ``start``). Memory
    stays near ``chunk_bytes`` (or the largest member that is not streamed).

    With ``fast_nan``, batches of typed records (``types``) are read with every ``NaN`` as
    ``null``, inside strings too (:func:`_denan_fast`, one pass in C instead of the exact
    rewrite); the caller must check that no text it keeps contains "null" and decode such a
    batch again exactly (``decode_exact`` on its raw bytes). Plain objects stay exact.

    Raises
    ------
    DatasetError
        Not JSON, not an object at the top level, or cut short; the message names the file
        and the byte offset.
    """
    decoders = {k: msgspec.json.Decoder(list[t] if k in stream else t)
                for k, t in (types or {}).items()}
    with open(path, "rb") as fh:
        r = _Reader(path, fh, chunk_bytes)
        first = r.peek()
        if first is None:
            raise DatasetError(f"{path}: empty file, not JSON")
        if first != 0x7B:
            raise r.fail(0, "not a COCO Camera Traps file: the top level is not a JSON object")
        r.drop(1)
        sep = 0x7D if r.peek() == 0x7D else 0x2C
        if sep == 0x7D:
            r.drop(1)
        while sep != 0x7D:
            key = r.key()
            decoder = decoders.get(key, _GENERIC)
            if key in stream and r.peek() == 0x5B:
                r.drop(1)
                yield key, "start", (None, None) if raw else None
                fast = fast_nan and decoder is not _GENERIC
                yield from _elements(r, key, decoder, raw, fast)
            else:
                r.peek()
                n = r.until(b",}]", last_comma=False)
                region = r.live()[:n]
                obj = r.decode(region, _GENERIC if key in stream else decoder, f"'{key}'")
                yield key, "value", (obj, region) if raw else obj
                r.drop(n)
            sep = r.expect(b",}", "',' or '}' after a member")
        if r.peek() is not None:
            raise r.fail(0, "invalid JSON: data after the top-level object")


def _elements(r: _Reader, key: str, decoder: msgspec.json.Decoder, raw: bool,
              fast: bool = False) -> Iterator[tuple[str, str, Any]]:
    """The batches of a streamed array whose '[' was read, up to and with its ']'. With
    ``fast``, NaN is rewritten the fast way (see ``iter_members``)."""
    if r.peek() == 0x5D:
        r.drop(1)
        return
    what = f"'{key}'"
    while True:
        if len(r.buf) - r.at < r.chunk and not r.eof:
            r.more()
        buf = r.live()
        items = None
        if len(buf) >= min(r.chunk, _FAST_MIN):
            cuts = [_fast_items(buf)]
            # the array may end in the buffer: try that first ("]" is rare inside elements)
            close = buf.find(b"]")
            end = None if close < 0 else _ARRAY_END.search(buf, max(close - _WINDOW, 0))
            if end is not None and (cuts[0] is None or end.start() < cuts[0]):
                cuts.insert(0, end.start() + 1)
            for n in cuts:
                if n is None:
                    continue
                try:
                    text = b"".join((b"[", memoryview(buf)[:n], b"]"))
                    items = decoder.decode(_denan_fast(text) if fast else _denan(text))
                    break
                except msgspec.DecodeError:  # not a cut after all, or a problem: look closely
                    items = None
        if items is None:
            n = r.until(b"]}", last_comma=True)
            buf = r.buf
            if not buf[:n].strip(_WS):
                raise r.fail(n, "invalid JSON: expected a value")
            items = r.decode(b"".join((b"[", memoryview(buf)[:n], b"]")), decoder, what, fast)
        yield key, "items", (items, buf[:n]) if raw else items
        r.drop(n)
        if r.expect(b",]", "',' or ']' in an array") == 0x5D:
            return


def decode_exact(items_raw: bytes, record_type: Any) -> list:
    """A batch's raw bytes (elements without the brackets, as ``iter_members(raw=True)``
    gives them) decoded with the exact NaN rewrite: typed records, or plain dicts when a
    value does not fit the type."""
    text = _denan(b"".join((b"[", items_raw, b"]")))
    try:
        return msgspec.json.decode(text, type=list[record_type])
    except msgspec.ValidationError:
        return _GENERIC.decode(text)


# --- reading files -----------------------------------------------------------------------

def read_cct_json(path: str | Path) -> dict:
    """One published COCO-CT file as a dict (bare ``NaN`` read as float NaN).

    Raises
    ------
    DatasetError
        The file cannot be read, is not JSON, or lacks ``images``/``annotations``/``categories``.
    """
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: not a COCO Camera Traps file: the top level is not an "
                           "object")
    _check_keys(path, obj.keys())
    for key in REQUIRED_KEYS:
        if not isinstance(obj[key], list):
            raise DatasetError(f"{path}: '{key}' is {type(obj[key]).__name__}, not a list")
    return obj


def _check_keys(path: Path, keys: Any) -> None:
    missing = [k for k in REQUIRED_KEYS if k not in keys]
    if missing:
        raise DatasetError(f"{path}: missing top-level key(s) {', '.join(map(repr, missing))}; "
                           "not a COCO Camera Traps file")


@dataclass
class _Raw:
    categories: dict[int, str]
    images: list[pa.RecordBatch]
    annotations: list[pa.RecordBatch]
    problems: list[tuple[str, str, str]]
    n_images: int
    n_annotations: int


def _categories(obj: Any, path: Path) -> dict[int, str]:
    if not isinstance(obj, list):
        raise DatasetError(f"{path}: 'categories' is not a list")
    out: dict[int, str] = {}
    names: dict[str, int] = {}
    for k, c in enumerate(obj):
        if not isinstance(c, dict) or "id" not in c or "name" not in c:
            raise DatasetError(f"{path}: categories[{k}] lacks 'id' or 'name': {c!r:.80}")
        try:
            cid = int(c["id"])
        except (TypeError, ValueError):
            raise DatasetError(f"{path}: categories[{k}] id {c['id']!r} is not an integer") \
                from None
        name = str(c["name"])
        if cid in out and out[cid] != name:
            raise DatasetError(f"{path}: category id {cid} is both {out[cid]!r} and {name!r}")
        if names.get(name, cid) != cid:
            raise DatasetError(f"{path}: category name {name!r} has two ids, {names[name]} and "
                               f"{cid}")
        out[cid], names[name] = name, cid
    return out


def _batch(build: Any, items: list, text: bytes, record_type: Any, **kw: Any) -> Any:
    """``build(items, ...)`` (a batch builder of ``data.tables``) for a batch read with the
    fast NaN rewrite; decoded again exactly when one of its texts contains "null"."""
    if b"NaN" not in text:
        return build(items, **kw)
    try:
        return build(items, null_check=True, **kw)
    except _tables.NullInText:
        return build(decode_exact(text, record_type), **kw)


def _read_source(path: Path, source: int, *, chunk_bytes: int = CHUNK_BYTES) -> _Raw:
    raw = _Raw({}, [], [], [], 0, 0)
    seen: set[str] = set()
    where = str(path)
    try:
        for key, kind, (obj, text) in iter_members(
                path, stream=("images", "annotations"), chunk_bytes=chunk_bytes,
                types=RECORD_TYPES, raw=True, fast_nan=True):
            seen.add(key)
            if kind == "start":
                continue
            if key in ("images", "annotations") and kind == "value":
                raise DatasetError(f"{path}: '{key}' is {type(obj).__name__}, not a list")
            if key == "images":
                batch, problems = _batch(_tables.image_batch, obj, text, ImageRecord,
                                         where=where, offset=raw.n_images, source=source)
                raw.images.append(batch)
                raw.problems += problems
                raw.n_images += len(obj)
            elif key == "annotations":
                raw.annotations.append(_batch(
                    _tables.annotation_batch, obj, text, AnnotationRecord, where=where,
                    offset=raw.n_annotations, source=source))
                raw.n_annotations += len(obj)
            elif key == "categories":
                raw.categories = _categories(obj, path)
    except _tables.TableError as exc:
        raise DatasetError(str(exc)) from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from None
    _check_keys(path, seen)
    if raw.n_images == 0:
        raise DatasetError(f"{path}: no images (the 'images' list is empty)")
    log.info("%s: %d images, %d annotations", path, raw.n_images, raw.n_annotations)
    return raw


def _merge_categories(raws: Sequence[_Raw], paths: Sequence[Path]) -> pd.DataFrame:
    merged: dict[int, tuple[str, Path]] = {}
    for raw, path in zip(raws, paths):
        for cid, name in raw.categories.items():
            if cid in merged and merged[cid][0] != name:
                other_name, other = merged[cid]
                raise DatasetError(f"category id {cid} is {other_name!r} in {other} but "
                                   f"{name!r} in {path}")
            merged.setdefault(cid, (name, path))
    ids = sorted(merged)
    names = [merged[c][0] for c in ids]
    dup = pd.Index(names)[pd.Index(names).duplicated()]
    if len(dup):
        both = [c for c in ids if merged[c][0] == dup[0]]
        raise DatasetError(f"category name {dup[0]!r} has two ids {both} in "
                           f"{', '.join(sorted({str(merged[c][1]) for c in both}))}")
    return pd.DataFrame({"category_id": np.asarray(ids, dtype=np.int64),
                         "name": pd.Series(names, dtype="str")})


# --- the dataset -------------------------------------------------------------------------

@dataclass
class Dataset:
    """Tidy tables of one or several COCO-CT files (see docs/formats.md for every column).

    ``problems`` (kind, id, detail) lists what loading dropped or repaired (duplicate image
    ids, annotations of unknown images or categories, unparsable datetimes); ``n_annotations``
    counts the annotation records as read.
    """

    images: pd.DataFrame
    labels: pd.DataFrame
    sequences: pd.DataFrame
    categories: pd.DataFrame
    classes: list[str]
    sources: list[dict]
    problems: pd.DataFrame = field(default_factory=lambda: _tables._problems([]))
    n_annotations: int = 0
    #: Look-ups computed once per dataset (the tables are read-only once loaded).
    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def image_rows(self, image_ids: Sequence[str]) -> np.ndarray:
        """Row in ``images`` of each of ``image_ids`` (-1 when absent).

        Ids equal to the dataset's own, in the same order (a run predicted on the whole
        dataset), are recognised by one vectorised comparison instead of a hash join: at
        7.2 M ids that is 0.6 s against about 6 s.
        """
        req = _tables.as_arrow(image_ids)
        if len(req) == len(self.images) and not req.null_count:
            same = pc.equal(req, self._own_ids())
            if same.null_count == 0 and pc.all(same).as_py():
                return np.arange(len(req), dtype=np.int64)
        return _tables.index_in(req, self._own_ids())

    def _own_ids(self) -> pa.Array:
        if "ids" not in self._memo:
            self._memo["ids"] = _tables.as_arrow(self.images["image_id"])
        return self._memo["ids"]

    def _label_image_rows(self) -> np.ndarray:
        """Row in ``images`` of each label row (-1: unknown image). Labels listed image by
        image in the images' order (as the loader writes them, every image labelled) are
        matched by comparing each run of equal ids with the images' ids: no hash join."""
        ids = _tables.as_arrow(self.labels["image_id"])
        own = self._own_ids()
        if len(ids) and len(own) and not ids.null_count:
            new = np.r_[True, pc.not_equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)]
            starts = np.flatnonzero(new)
            if len(starts) == len(own):
                same = pc.equal(ids.take(pa.array(starts)), own)
                if same.null_count == 0 and pc.all(same).as_py():
                    return np.cumsum(new) - 1
        return _tables.index_in(ids, own)

    def _label_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """``(order, starts)``: label rows grouped by image, image ``i`` owning
        ``order[starts[i]:starts[i + 1]]`` in annotation order (computed once)."""
        if "label_rows" not in self._memo:
            row = self._label_image_rows()
            order = np.flatnonzero(row >= 0)
            if len(order) > 1 and np.any(row[order][1:] < row[order][:-1]):
                order = order[np.argsort(row[order], kind="stable")]
            starts = np.r_[0, np.cumsum(np.bincount(row[order], minlength=len(self.images)))]
            self._memo["label_rows"] = (order, starts)
        return self._memo["label_rows"]

    def label_groups(self) -> tuple[np.ndarray, np.ndarray]:
        """Class names of the label rows grouped by image: image ``i`` (row ``i`` of
        ``images``) carries ``names[starts[i]:starts[i + 1]]``, in annotation order.

        Returns
        -------
        names : ndarray of str (object), shape (n_labels,)
        starts : ndarray of int, shape (n_images + 1,)
        """
        order, starts = self._label_rows()
        cls = self.labels["class"]
        names = np.asarray(cls.cat.categories, dtype=object)
        return names[cls.cat.codes.to_numpy()[order]], starts

    def label_sets(self) -> pd.Series:
        """image_id -> tuple of class names in annotation order (empty tuple: no labels)."""
        names, starts = self.label_groups()
        return pd.Series([tuple(names[a:b]) for a, b in zip(starts[:-1], starts[1:])],
                         index=pd.Index(self.images["image_id"]), dtype=object, name="labels")

    def label_arrays(self, image_ids: Sequence[str], classes: Sequence[str]
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Label sets and first annotations of ``image_ids``, columns in the order of ``classes``.

        Returns
        -------
        labels : ndarray of bool, shape (n, C)
            Image i carries class c.
        primary : ndarray of int64, shape (n,)
            Index in ``classes`` of each image's first annotation; -1 without labels.
        """
        req = _tables.as_arrow(image_ids)
        if req.null_count:
            raise DatasetError("image ids contain missing values")
        rows = self.image_rows(req)
        if (rows < 0).any():
            bad = req.take(pa.array(np.flatnonzero(rows < 0)))
            raise DatasetError(f"{len(pc.unique(bad))} image id(s) not in the dataset, e.g. "
                               f"{bad[0].as_py()!r}")
        return self.label_arrays_at(rows, classes)

    def label_arrays_at(self, rows: np.ndarray, classes: Sequence[str]
                        ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`label_arrays` of the images at ``rows`` of ``images`` (no id look-up)."""
        cls = pd.Index(list(classes), dtype="str")
        if not cls.is_unique:
            raise DatasetError(f"classes contain duplicates: {list(cls[cls.duplicated()])}")
        lab = self.labels
        names = lab["class"].cat.categories
        to_col = cls.get_indexer(names)
        order, starts = self._label_rows()
        rows = np.asarray(rows, dtype=np.int64)
        counts = starts[rows + 1] - starts[rows]
        if len(rows) == len(self.images) and np.array_equal(rows, np.arange(len(rows))):
            at, which = np.repeat(np.arange(len(rows)), counts), order
        else:  # each requested image's run of label rows
            at = np.repeat(np.arange(len(rows)), counts)
            first = np.repeat(starts[rows] - (np.cumsum(counts) - counts), counts)
            which = order[first + np.arange(len(at))]
        codes = lab["class"].cat.codes.to_numpy()[which]
        cols = to_col[codes]
        if (cols < 0).any():
            missing = sorted(set(names[codes[cols < 0]]))
            raise DatasetError(f"label class(es) {missing} not in the given classes")
        labels = np.zeros((len(rows), len(cls)), dtype=bool)
        labels[at, cols] = True
        primary = np.full(len(rows), -1, dtype=np.int64)
        first_label = lab["rank"].to_numpy()[which] == 0
        primary[at[first_label]] = cols[first_label]
        return labels, primary


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _source_info(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime": st.st_mtime,
            "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "sha256": _sha256(path)}


def _stat_key(files: Sequence[Path]) -> list[list[int]]:
    """Size, mtime and ctime of each file: any write changes the ctime, which no program can
    set back (``os.utime`` restores an mtime, and changes the ctime doing so)."""
    return [[st.st_size, st.st_mtime_ns, st.st_ctime_ns] for st in (f.stat() for f in files)]


def _cache_prefix(files: Sequence[Path]) -> str:
    """The cache entries of these paths (whatever their content) start with this."""
    return hashlib.sha256("\n".join(map(str, files)).encode()).hexdigest()[:16] + "-"


def _cache_entry(sources: list[dict]) -> Path:
    where = _cache_prefix([s["path"] for s in sources])[:-1]
    what = hashlib.sha256(json.dumps(
        [LOADER_VERSION] + [[s["size"], s["mtime_ns"], s["sha256"]] for s in sources]
    ).encode()).hexdigest()[:16]
    return _paths.cache_dir() / "datasets" / f"{where}-{what}"


_DTYPES = {
    "images": {"image_id": "str", "file_name": "str", "frame_num": "int16",
               "seq_num_frames": "Int16", "datetime": "datetime64[ns]", "width": "Int32",
               "height": "Int32", "corrupt": "bool"},
    "labels": {"image_id": "str", "category_id": "int64", "rank": "int16",
               "sequence_level": "bool"},
    "sequences": {"n_frames": "Int16", "n_images": "int32", "start": "datetime64[ns]"},
    "categories": {"category_id": "int64", "name": "str"},
    "problems": {"kind": "str", "id": "str", "detail": "str"},
}


def _conform(name: str, df: pd.DataFrame) -> pd.DataFrame:
    for col, dtype in _DTYPES[name].items():
        if str(df[col].dtype) != dtype:
            df[col] = df[col].astype(dtype)
    return df


def _stat_match(folder: Path, files: Sequence[Path]) -> Path | None:
    """The cache entry of these paths written for files of their current size, mtime and
    ctime (:func:`_stat_key`): files untouched since they were hashed; or None."""
    now = _stat_key(files)
    for entry in folder.glob(_cache_prefix(files) + "*"):
        try:
            meta = json.loads((entry / "meta.json").read_text())
            if (meta.get("loader_version") == LOADER_VERSION
                    and [[s["size"], s["mtime_ns"], s["ctime_ns"]]
                         for s in meta["sources"]] == now):
                return entry
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def _read_cache(entry: Path) -> Dataset | None:
    meta_path = entry / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        sources, n_annotations = meta["sources"], meta["n_annotations"]
        frames = {n: _conform(n, _read_frame(entry / f"{n}.arrow")) for n in _FRAMES}
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
        log.warning("ignoring unreadable dataset cache %s: %s", entry, exc)
        return None
    return Dataset(**frames, classes=list(frames["categories"]["name"]),
                   sources=sources, n_annotations=n_annotations)


def _read_frame(path: Path) -> pd.DataFrame:
    """One cached table: an uncompressed Arrow IPC file, memory-mapped, so its string columns
    become pandas' Arrow-backed strings without a copy or a decode (at 7.2 M images the same
    tables took about 18 s from Parquet). Dictionary columns become categoricals here
    (:func:`_cached_categorical`)."""
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_file(source).read_all()
    coded = [n for n, t in zip(table.column_names, table.schema.types)
             if pa.types.is_dictionary(t)]
    df = table.drop_columns(coded).to_pandas()
    for name in coded:
        df[name] = _cached_categorical(table[name])
    return df[table.column_names]


def _cached_categorical(column: pa.ChunkedArray) -> pd.Categorical:
    """A dictionary column of the cache as a pandas categorical, its categories taken as
    unique without a check: the cache wrote them from a categorical (a capture id column has
    millions; checking them again took about 2 s each at 7.2 M images). pandas' fast path is
    internal: without it, the public (checking) constructor is used."""
    arr = column.combine_chunks()
    cats = pd.Index(arr.dictionary.to_pandas(), dtype="str")
    codes = pc.fill_null(arr.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    fast = getattr(pd.CategoricalDtype, "_from_fastpath", None)
    dtype = (fast(cats, ordered=arr.type.ordered) if fast is not None
             else pd.CategoricalDtype(cats, ordered=arr.type.ordered))
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def _restamp_cache(entry: Path, sources: list[dict]) -> None:
    """Record the files' current stat in a cache entry their hashes matched, so the next load
    of untouched files skips hashing (a cache: a failure only logs)."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
        meta["sources"] = sources
        atomic_write(entry / "meta.json", json.dumps(meta), durable=False)
    except (OSError, ValueError) as exc:
        log.warning("could not update the dataset cache %s: %s", entry, exc)


def _write_cache(entry: Path, ds: Dataset) -> None:
    parent = entry.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=".tmp-"))
    try:
        for name in _FRAMES:
            # one chunk: a dictionary column then holds one dictionary, not one per chunk
            table = pa.Table.from_pandas(getattr(ds, name), preserve_index=False
                                         ).combine_chunks()
            with pa.OSFile(str(tmp / f"{name}.arrow"), "wb") as sink, \
                    pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
        (tmp / "meta.json").write_text(json.dumps(
            {"sources": ds.sources, "n_annotations": ds.n_annotations,
             "loader_version": LOADER_VERSION}))
        try:
            os.replace(tmp, entry)
        except OSError:  # another process wrote the same entry first
            shutil.rmtree(tmp, ignore_errors=True)
            return
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prefix = entry.name.split("-")[0] + "-"
    for old in parent.glob(prefix + "*"):  # same files, older content: stale
        if old != entry and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def load_dataset(paths: Sequence[str | Path] | str | Path, *, cache: bool = True,
                 chunk_bytes: int = CHUNK_BYTES) -> Dataset:
    """Load one or several published COCO-CT files into a :class:`Dataset`.

    Parameters
    ----------
    paths : sequence of path
        Per-season JSON files, merged in the order given (their categories must agree).
    cache : bool
        Read/write the table cache (memory-mapped Arrow files) under
        ``data.paths.cache_dir()/datasets``.
    chunk_bytes : int
        Bytes read per step while streaming a file.

    Raises
    ------
    DatasetError
        Unreadable or invalid JSON, missing top-level keys, no images, category ids whose
        names disagree between files.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files = [Path(p).expanduser().resolve() for p in paths]
    if not files:
        raise DatasetError("no dataset files given")
    for f in files:
        if f.is_dir():
            raise DatasetError(f"{f}: is a folder; give the COCO Camera Traps JSON file(s) "
                               "inside it")
        if not f.is_file():
            raise DatasetError(f"{f}: no such file")
    folder = _paths.cache_dir() / "datasets"
    cached = cache and folder.is_dir() and any(folder.glob(_cache_prefix(files) + "*"))
    if cached:  # files untouched since their entry was written (size, mtime, ctime): no hash
        candidate = _stat_match(folder, files)
        ds = _read_cache(candidate) if candidate is not None else None
        if ds is not None:
            log.info("dataset tables from cache %s (files unchanged)", candidate)
            return ds
    # sha256 releases the GIL: hash while parsing; with an entry of these paths, the hashes
    # decide first whether its tables are the files' (a file written again, same content).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256") as pool:
        hashing = [pool.submit(_source_info, f) for f in files]
        if cached:
            sources = [h.result() for h in hashing]
            entry = _cache_entry(sources)
            ds = _read_cache(entry)
            if ds is not None:  # same content: the entry now knows the files' new ctime
                log.info("dataset tables from cache %s", entry)
                _restamp_cache(entry, sources)
                ds.sources = sources
                return ds
        raws = [_read_source(f, k, chunk_bytes=chunk_bytes) for k, f in enumerate(files)]
        sources = [h.result() for h in hashing]
    entry = _cache_entry(sources)
    categories = _merge_categories(raws, files)
    images = _tables.concat([b for r in raws for b in r.images], _tables.IMAGE_SCHEMA)
    annotations = _tables.concat([b for r in raws for b in r.annotations],
                                 _tables.ANNOTATION_SCHEMA)
    problems = [p for r in raws for p in r.problems]
    for r in raws:
        r.images.clear()
        r.annotations.clear()
    img, labels, seqs, more = _tables.build_tables(images, annotations, categories,
                                                   [str(f) for f in files])
    del images, annotations
    ds = Dataset(images=img, labels=labels, sequences=seqs, categories=categories,
                 classes=list(categories["name"]), sources=sources,
                 problems=pd.concat([_tables._problems(problems), more], ignore_index=True),
                 n_annotations=sum(r.n_annotations for r in raws))
    for name in _FRAMES:
        _conform(name, getattr(ds, name))
    if cache:
        try:
            _write_cache(entry, ds)
        except OSError as exc:  # a read-only or full cache folder must not stop the load
            log.warning("could not write the dataset cache %s: %s", entry, exc)
    return ds


# --- validation --------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """One finding of :func:`validate`: its kind, the offending id, and what is wrong."""

    kind: str
    id: str
    detail: str


@dataclass
class ValidationReport:
    """What :func:`validate` found. ``usable`` is False only when the files cannot be loaded."""

    summary: dict
    problems: list[Problem]
    usable: bool

    def to_dict(self) -> dict:
        """The ``--json`` shape: summary keys, ``usable``, ``problems`` [{kind, id, detail}]."""
        return {**self.summary, "usable": self.usable,
                "problems": [{"kind": p.kind, "id": p.id, "detail": p.detail}
                             for p in self.problems]}


EMPTY_CLASS = "empty"
_UNSAFE_HINT = r"^\s*$|^[/\\]|^[A-Za-z]:|(?:^|[/\\])\.\.(?:[/\\]|$)|\x00"


def _natural(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _counts(col: pd.Series) -> dict[str, int]:
    """Images per value (missing as "unknown"), in natural order (S2 before S10)."""
    vc = col.astype("object").fillna("unknown").value_counts()
    return {str(k): int(v) for k, v in sorted(vc.items(), key=lambda kv: _natural(str(kv[0])))}


def summarize(ds: Dataset) -> dict:
    """The dataset summary printed by ``python -m data validate``."""
    img, lab = ds.images, ds.labels
    per_image = lab.groupby("image_id", sort=False).size()
    labelled = int(per_image.size)
    empty = None
    if EMPTY_CLASS in ds.classes:
        is_empty = (lab["class"] == EMPTY_CLASS).groupby(lab["image_id"], sort=False).all()
        empty = round(float(is_empty.sum()) / labelled, 6) if labelled else 0.0
    return {
        "files": [s["path"] for s in ds.sources],
        "images": int(len(img)),
        "annotations": int(ds.n_annotations),
        "labels": int(len(lab)),
        "sequences": int(len(ds.sequences)),
        "categories": int(len(ds.categories)),
        "classes_present": int(lab["class"].nunique()),
        "multi_species_images": int((per_image >= 2).sum()),
        "empty_fraction": empty,
        "images_without_annotations": int(len(img) - labelled),
        "images_without_size": int(img["width"].isna().sum()),
        "corrupt_flagged": int(img["corrupt"].sum()),
        "per_season": _counts(img["season"]),
        "per_site": _counts(img["location"]),
        "per_class": {str(k): int(v) for k, v in
                      lab["class"].value_counts(sort=False).items() if v},
    }


def _table_problems(ds: Dataset) -> list[pd.DataFrame]:
    from data.images import check_file_name

    img = ds.images
    out = [ds.problems]
    no_ann = img.loc[~_tables.isin(img["image_id"], ds.labels["image_id"]), "image_id"]
    out.append(pd.DataFrame({"kind": "no_annotation", "id": no_ann,
                             "detail": "image has no annotation (no ground truth)"}))
    frames = img["frame_num"].astype("int32")
    total = img["seq_num_frames"]
    bad = (frames < 1) | (total.notna() & (frames > total.fillna(0))).to_numpy(dtype=bool)
    rows = img.loc[bad]
    out.append(pd.DataFrame({
        "kind": "frame_out_of_range", "id": rows["image_id"],
        "detail": ["frame_num " + str(f) + " outside 1.." + ("?" if pd.isna(t) else str(t))
                   + " (seq " + str(s) + ")" for f, t, s in
                   zip(rows["frame_num"], rows["seq_num_frames"], rows["seq_id"])]}))
    hint = img["file_name"].fillna("").str.contains(_UNSAFE_HINT, regex=True)
    unsafe = [(i, f, check_file_name(f)) for i, f in
              zip(img.loc[hint, "image_id"], img.loc[hint, "file_name"].fillna(""))]
    out.append(pd.DataFrame([("unsafe_path", i, f"file_name {f!r}: {r}")
                             for i, f, r in unsafe if r], columns=_tables.PROBLEM_COLUMNS))
    return out


def _file_problems(ds: Dataset, root: Path) -> pd.DataFrame:
    from tqdm import tqdm

    from data.images import ImageError, UnsafePath, check_file_name, open_in_root

    rows = []
    img = ds.images
    for iid, name in tqdm(zip(img["image_id"], img["file_name"]), total=len(img),
                          desc="checking images", unit="img", disable=len(img) < 1000,
                          leave=False):
        try:
            open_in_root(root, name, size=32)
        except UnsafePath as exc:
            if check_file_name(name) is None:  # a fine name: a symlink that leaves the root
                rows.append(("symlink_outside_root", iid, str(exc)))
            continue  # a bad name is already reported as unsafe_path
        except ImageError as exc:
            rows.append((exc.reason.replace(" ", "_") + "_file", iid,
                         f"{name}: {exc.detail or exc.reason}"))
    return pd.DataFrame(rows, columns=_tables.PROBLEM_COLUMNS)


def validate(paths: Sequence[str | Path] | str | Path, *,
             images_root: str | Path | None = None, cache: bool = True) -> ValidationReport:
    """Load ``paths`` and list every problem with the offending id.

    Problems (warnings; the data stays usable): duplicate image ids, annotations of unknown
    images or categories, repeated labels, unparsable datetimes, images without annotations,
    frame numbers outside 1..seq_num_frames, file names escaping the image root, and with
    ``images_root``: symlinks leaving the root (``symlink_outside_root``; the opener refuses
    them), missing, unreadable, truncated or corrupt files. Files that cannot be
    loaded at all give ``usable=False`` and one ``unusable`` problem naming file and reason;
    an ``images_root`` that is not a folder raises :class:`DatasetError` before any loading.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    root = None if images_root is None else Path(images_root)
    if root is not None and not root.is_dir():  # before loading: a typo costs no parse
        raise DatasetError(f"{root}: image root is not a directory")
    try:
        ds = load_dataset(paths, cache=cache)
    except DatasetError as exc:
        return ValidationReport({"files": [str(p) for p in paths]},
                                [Problem("unusable", ", ".join(map(str, paths)), str(exc))],
                                usable=False)
    frames = _table_problems(ds)
    if root is not None:
        frames.append(_file_problems(ds, root))
    table = pd.concat([f for f in frames if len(f)] or [frames[0]], ignore_index=True)
    problems = [Problem(str(k), str(i), str(d)) for k, i, d in
                zip(table["kind"], table["id"], table["detail"])]
    summary = summarize(ds)
    summary["images_root"] = None if images_root is None else str(images_root)
    summary["problem_counts"] = {str(k): int(v) for k, v in
                                 table["kind"].value_counts(sort=False).items()}
    return ValidationReport(summary, problems, usable=True)
