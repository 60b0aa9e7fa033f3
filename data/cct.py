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
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data import paths as _paths
from data import tables as _tables

log = logging.getLogger(__name__)

REQUIRED_KEYS = ("images", "annotations", "categories")
LOADER_VERSION = 1  # bump when the tables change shape: old cache entries are then ignored
CHUNK_BYTES = 32 << 20
_FRAMES = ("images", "labels", "sequences", "categories", "problems")


class DatasetError(ValueError):
    """A dataset file that cannot be used; the message names the file and the reason."""


# --- streaming JSON reader ---------------------------------------------------------------
# Element boundaries come from a vectorised scan (numpy): unescaped quotes give the string
# mask, brackets outside strings give the depth. Each batch of complete elements goes to
# orjson, which rejects bare NaN: those outside strings are rewritten to null first.

_DELTA = np.zeros(256, dtype=np.int64)
_DELTA[list(b"{[")] = 1
_DELTA[list(b"}]")] = -1
_WS = b" \t\r\n"
_OPEN, _CLOSE, _LBRACKET, _RBRACKET, _COMMA, _COLON = b"{}[],:"


@dataclass
class _Scan:
    pos: np.ndarray         # positions of structural characters outside strings
    char: np.ndarray        # those characters
    before: np.ndarray      # nesting depth before each
    nan_inside: np.ndarray  # positions of "NaN" inside strings (left as they are)
    has_nan: bool


def _escaped(buf: bytes, quote: int) -> bool:
    n, i = 0, quote - 1
    while i >= 0 and buf[i] == 0x5C:
        n, i = n + 1, i - 1
    return n % 2 == 1


def _in_string(buf: bytes, arr: np.ndarray) -> np.ndarray:
    """1 for bytes inside a JSON string (and on its opening quote); ``buf`` starts outside."""
    quote = arr == 0x22
    maybe = np.flatnonzero(quote[1:] & (arr[:-1] == 0x5C)) + 1
    for p in maybe.tolist():  # rare: a quote after a backslash is escaped when the run is odd
        if _escaped(buf, p):
            quote[p] = False
    return np.bitwise_xor.accumulate(quote.view(np.uint8))


def _nan_in_strings(arr: np.ndarray, in_string: np.ndarray) -> np.ndarray:
    nan = np.flatnonzero(arr[:-2] == 0x4E)
    nan = nan[(arr[nan + 1] == 0x61) & (arr[nan + 2] == 0x4E)]
    return nan[in_string[nan] == 1]


def _scan(buf: bytes, depth0: int) -> _Scan:
    """Structural characters of ``buf``, which starts outside any string at depth ``depth0``."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    in_string = _in_string(buf, arr)
    folded = arr | 0x20  # maps [ ] onto { }
    struct = (folded == 0x7B) | (folded == 0x7D) | (arr == 0x2C) | (arr == 0x3A)
    pos = np.flatnonzero(struct)
    pos = pos[in_string[pos] == 0]
    char = arr[pos]
    delta = _DELTA[char]
    before = depth0 + np.cumsum(delta) - delta
    if b"NaN" not in buf:
        return _Scan(pos, char, before, np.empty(0, np.int64), False)
    return _Scan(pos, char, before, _nan_in_strings(arr, in_string), True)


def _denan(region: bytes, start: int, scan: _Scan) -> bytes:
    """``region`` (byte r = buf[start + r]) with bare NaN tokens as null, strings untouched."""
    if not scan.has_nan or b"NaN" not in region:
        return region
    inside = scan.nan_inside
    inside = inside[(inside >= start) & (inside < start + len(region))]
    return _replace_nan(region, inside - start)


def _replace_nan(region: bytes, inside: np.ndarray) -> bytes:
    """``region`` with every ``NaN`` as ``null`` except at the positions ``inside``."""
    if inside.size == 0:
        return region.replace(b"NaN", b"null")
    keep = set(inside.tolist())
    out, last, i = [], 0, region.find(b"NaN")
    while i >= 0:
        if i not in keep:
            out += [region[last:i], b"null"]
            last = i + 3
        i = region.find(b"NaN", i + 3)
    out.append(region[last:])
    return b"".join(out)


def _fast_items(buf: bytes) -> tuple[list, int] | None:
    """Fast path inside a streamed array (``buf`` starts at an element): parse up to the last
    ``},`` and return (items, bytes consumed), or None to fall back to the full scan.

    Sound without a structural scan: ``[`` + a prefix of the array + ``]`` only parses when the
    prefix ends at an element boundary (a cut inside a string or a nested value cannot parse).
    """
    end = len(buf)
    for _ in range(64):  # the last comma after a closing brace, outside the partial element
        comma = buf.rfind(b",", 0, end)
        if comma <= 0:
            return None
        j = comma - 1
        while j > 0 and buf[j] in _WS:
            j -= 1
        if buf[j] == _CLOSE:
            break
        end = comma
    else:
        return None
    region = b"".join((b"[", memoryview(buf)[:comma], b"]"))  # one copy
    if b"NaN" in region:
        arr = np.frombuffer(region, dtype=np.uint8)
        region = _replace_nan(region, _nan_in_strings(arr, _in_string(region, arr)))
    try:
        return orjson.loads(region), comma + 1
    except orjson.JSONDecodeError:
        return None


def _first(mask: np.ndarray, start: int) -> int:
    hit = np.flatnonzero(mask[start:])
    return start + int(hit[0]) if hit.size else len(mask)


def _skip_ws(buf: bytes, i: int) -> int:
    while i < len(buf) and buf[i] in _WS:
        i += 1
    return i


def iter_members(path: Path, *, stream: tuple[str, ...], chunk_bytes: int = CHUNK_BYTES,
                 raw: bool = False) -> Iterator[tuple[str, str, Any]]:
    """Yield ``(key, "value", obj)`` per top-level member of the JSON object in ``path``, but
    ``(key, "start", None)`` then ``(key, "items", list)`` batches for the arrays named in
    ``stream``.

    With ``raw``, each ``obj`` is a pair ``(obj, bytes)``: the value, or the batch of
    elements (comma-separated, without the brackets), exactly as the file spells it
    (``(None, None)`` for ``start``). Memory stays near ``chunk_bytes`` either way.
    """
    def emit(obj: Any, region: bytes | None) -> Any:
        return (obj, region) if raw else obj

    def fail(offset: int, reason: str) -> DatasetError:
        return DatasetError(f"{path}: {reason} (at byte {offset})")

    def parse(region: bytes, start: int, scan: _Scan, what: str) -> Any:
        try:
            return orjson.loads(_denan(region, start, scan))
        except orjson.JSONDecodeError as exc:
            raise fail(base + max(start, 0), f"invalid JSON in {what}: {exc}") from None

    depth_of = {"start": 0, "key": 1, "value": 1, "array": 2, "after": 1}
    phase, base, buf, eof, key, mark = "start", 0, b"", False, "", 0
    with open(path, "rb") as fh:
        while True:
            if not eof:
                data = fh.read(chunk_bytes)
                eof = not data
                buf = buf + data if buf else data
            if phase == "array" and len(buf) >= min(chunk_bytes, 1 << 16):
                fast = _fast_items(buf)
                if fast is not None:
                    items, used = fast
                    if items:
                        yield key, "items", emit(items, buf[:used - 1])
                    buf, base = buf[used:], base + used
            if eof and base == 0 and not buf.strip(_WS):
                raise DatasetError(f"{path}: empty file, not JSON")
            scan = _scan(buf, depth_of[phase])
            pos, char, before = scan.pos, scan.char, scan.before
            n, i = len(pos), 0
            at1 = before == 1
            while phase != "end":
                if phase == "start":
                    if n == 0:
                        break
                    if char[0] != _OPEN or buf[:pos[0]].strip(_WS):
                        raise fail(base, "not a COCO Camera Traps file: the top level is not "
                                         "a JSON object")
                    phase, mark, i = "key", int(pos[0]) + 1, 1
                elif phase == "key":
                    j = _first(at1, i)
                    if j == n:
                        break
                    if char[j] == _CLOSE and not buf[mark:pos[j]].strip(_WS):
                        phase, mark = "end", int(pos[j]) + 1
                        break
                    if char[j] != _COLON:
                        raise fail(base + int(pos[j]), "invalid JSON: expected a key and ':'")
                    try:
                        key = orjson.loads(buf[mark:pos[j]])
                    except orjson.JSONDecodeError:
                        key = None
                    if not isinstance(key, str):
                        raise fail(base + mark, "invalid JSON: object key is not a string")
                    vstart = _skip_ws(buf, int(pos[j]) + 1)
                    if vstart == len(buf):
                        break
                    if key in stream and buf[vstart] == _LBRACKET:
                        phase, mark, i = "array", int(pos[j + 1]) + 1, j + 2
                        yield key, "start", emit(None, None)
                    else:
                        phase, mark, i = "value", vstart, j + 1
                elif phase == "value":
                    j = _first(at1 & ((char == _COMMA) | (char == _CLOSE)), i)
                    if j == n:
                        break
                    yield key, "value", emit(parse(buf[mark:pos[j]], mark, scan, f"'{key}'"),
                                             buf[mark:pos[j]])
                    phase = "key" if char[j] == _COMMA else "end"
                    mark, i = int(pos[j]) + 1, j + 1
                elif phase == "array":
                    close = _first((char == _RBRACKET) & (before == 2), i)
                    commas = np.flatnonzero((char[i:close] == _COMMA) & (before[i:close] == 2))
                    stop = (int(pos[close]) if close < n
                            else int(pos[i + commas[-1]]) if commas.size else None)
                    if stop is not None:
                        if stop > mark:
                            items = parse(b"[" + buf[mark:stop] + b"]", mark - 1, scan,
                                          f"'{key}'")
                            if items:
                                yield key, "items", emit(items, buf[mark:stop])
                        mark = stop + 1
                    if close == n:
                        break
                    phase, i = "after", close + 1
                elif phase == "after":
                    j = _first(at1, i)
                    if j == n:
                        break
                    if char[j] not in (_COMMA, _CLOSE) or buf[mark:pos[j]].strip(_WS):
                        raise fail(base + int(pos[j]), "invalid JSON: expected ',' or '}'")
                    phase = "key" if char[j] == _COMMA else "end"
                    mark, i = int(pos[j]) + 1, j + 1
            if phase == "end":
                rest = buf[mark:] + (b"" if eof else fh.read())
                if rest.strip(_WS):
                    raise fail(base + mark, "invalid JSON: data after the top-level object")
                return
            buf, base, mark = buf[mark:], base + mark, 0
            if eof and phase == "start":
                raise fail(base, "not a COCO Camera Traps file: the top level is not a JSON "
                                 "object")
            if eof:
                raise fail(base + len(buf), "invalid JSON: unexpected end of file (truncated?)")


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


def _read_source(path: Path, source: int, *, chunk_bytes: int = CHUNK_BYTES) -> _Raw:
    raw = _Raw({}, [], [], [], 0, 0)
    seen: set[str] = set()
    where = str(path)
    try:
        for key, kind, obj in iter_members(path, stream=("images", "annotations"),
                                           chunk_bytes=chunk_bytes):
            seen.add(key)
            if kind == "start":
                continue
            if key in ("images", "annotations") and kind == "value":
                raise DatasetError(f"{path}: '{key}' is {type(obj).__name__}, not a list")
            if key == "images":
                batch, problems = _tables.image_batch(obj, where=where, offset=raw.n_images,
                                                      source=source)
                raw.images.append(batch)
                raw.problems += problems
                raw.n_images += len(obj)
            elif key == "annotations":
                raw.annotations.append(_tables.annotation_batch(
                    obj, where=where, offset=raw.n_annotations, source=source))
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

    def label_groups(self) -> tuple[np.ndarray, np.ndarray]:
        """Class names of the label rows grouped by image: image ``i`` (row ``i`` of
        ``images``) carries ``names[starts[i]:starts[i + 1]]``, in annotation order.

        Returns
        -------
        names : ndarray of str (object), shape (n_labels,)
        starts : ndarray of int, shape (n_images + 1,)
        """
        lab = self.labels
        row = pd.Index(self.images["image_id"]).get_indexer(lab["image_id"])
        order = np.flatnonzero(row >= 0)
        order = order[np.argsort(row[order], kind="stable")]
        starts = np.r_[0, np.cumsum(np.bincount(row[order], minlength=len(self.images)))]
        names = np.asarray(lab["class"].cat.categories, dtype=object)
        return names[lab["class"].cat.codes.to_numpy()[order]], starts

    def label_sets(self) -> pd.Series:
        """image_id -> tuple of class names in annotation order (empty tuple: no labels)."""
        names, starts = self.label_groups()
        return pd.Series([tuple(names[a:b]) for a, b in zip(starts[:-1], starts[1:])],
                         index=pd.Index(self.images["image_id"]), dtype=object, name="labels")

    def _positions(self, image_ids: Sequence[str], classes: Sequence[str]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, np.ndarray]:
        """Per label row of the requested images: its row among the unique requested ids, its
        column in ``classes``, its rank; the number of unique ids; each request's unique row.
        Ids unknown to the dataset and label classes missing from ``classes`` raise."""
        req = _tables.as_arrow(image_ids)
        if req.null_count:
            raise DatasetError("image ids contain missing values")
        uniq = pc.unique(req)
        known = _tables.isin(uniq, self.images["image_id"])
        if not known.all():
            raise DatasetError(f"{int((~known).sum())} image id(s) not in the dataset, e.g. "
                               f"{uniq[int(np.flatnonzero(~known)[0])].as_py()!r}")
        cls = pd.Index(list(classes), dtype="str")
        if not cls.is_unique:
            raise DatasetError(f"classes contain duplicates: {list(cls[cls.duplicated()])}")
        lab = self.labels
        rows = _tables.index_in(lab["image_id"], uniq)
        sel = rows >= 0
        names = lab["class"].cat.categories
        codes = lab["class"].cat.codes.to_numpy()[sel]
        cols = cls.get_indexer(names)[codes]
        if (cols < 0).any():
            missing = sorted(set(names[codes[cols < 0]]))
            raise DatasetError(f"label class(es) {missing} not in the given classes")
        back = _tables.index_in(req, uniq)
        return rows[sel], cols, lab["rank"].to_numpy()[sel], len(uniq), back

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
        rows, cols, rank, n, back = self._positions(image_ids, classes)
        labels = np.zeros((n, len(classes)), dtype=bool)
        labels[rows, cols] = True
        primary = np.full(n, -1, dtype=np.int64)
        first = rank == 0
        primary[rows[first]] = cols[first]
        return labels[back], primary[back]


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _source_info(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime": st.st_mtime,
            "mtime_ns": st.st_mtime_ns, "sha256": _sha256(path)}


def _cache_entry(sources: list[dict]) -> Path:
    where = hashlib.sha256("\n".join(s["path"] for s in sources).encode()).hexdigest()[:16]
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


def _read_cache(entry: Path) -> Dataset | None:
    meta_path = entry / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        sources, n_annotations = meta["sources"], meta["n_annotations"]
        frames = {n: _conform(n, pq.read_table(entry / f"{n}.parquet").to_pandas())
                  for n in _FRAMES}
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
        log.warning("ignoring unreadable dataset cache %s: %s", entry, exc)
        return None
    return Dataset(**frames, classes=list(frames["categories"]["name"]),
                   sources=sources, n_annotations=n_annotations)


def _write_cache(entry: Path, ds: Dataset) -> None:
    parent = entry.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=".tmp-"))
    try:
        for name in _FRAMES:
            table = pa.Table.from_pandas(getattr(ds, name), preserve_index=False)
            pq.write_table(table, tmp / f"{name}.parquet")
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
        Read/write the Parquet cache under ``data.paths.cache_dir()/datasets``.
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
        if not f.is_file():
            raise DatasetError(f"{f}: no such file")
    sources = [_source_info(f) for f in files]
    entry = _cache_entry(sources)
    if cache:
        ds = _read_cache(entry)
        if ds is not None:
            log.info("dataset tables from cache %s", entry)
            return ds
    raws = [_read_source(f, k, chunk_bytes=chunk_bytes) for k, f in enumerate(files)]
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

    from data.images import ImageError, UnsafePath, open_in_root

    rows = []
    img = ds.images
    for iid, name in tqdm(zip(img["image_id"], img["file_name"]), total=len(img),
                          desc="checking images", unit="img", disable=len(img) < 1000,
                          leave=False):
        try:
            open_in_root(root, name, size=32)
        except UnsafePath:
            continue  # already reported as unsafe_path
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
    ``images_root``: missing, unreadable, truncated or corrupt files. Files that cannot be
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
