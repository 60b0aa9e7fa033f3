"""The run folder format: ``manifest.json`` + ``predictions.parquet`` (see docs/formats.md).

This module owns the contract: its constants, the one validator of a predictions table
(:func:`validate_predictions`, the single boundary check, in the spirit of scikit-learn's
``_check_targets``: every later function trusts what it lets through), the one manifest reader
(:func:`read_manifest`), the one "files changed" stamp (:func:`run_stamp`), the one reader
(:func:`load_run`) and the one atomic writer (:func:`write_run`). Training writes run folders
and analysis reads them, both through here.
"""
from __future__ import annotations

import datetime as _dt
import functools
import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data.files import atomic_write, atomic_write_path, check_output

log = logging.getLogger(__name__)

#: File names inside a run folder.
MANIFEST = "manifest.json"
PREDICTIONS = "predictions.parquet"
#: Keys every ``manifest.json`` must have (``unreadable`` defaults to ``[]``).
MANIFEST_KEYS = ("run_id", "created_at", "classes", "dataset", "model", "training", "software",
                 "n_predictions")
#: Columns of ``predictions.parquet``; ``embedding`` is optional.
REQUIRED_COLUMNS = ("image_id", "probs", "split")
#: Largest accepted ``|sum(probs) - 1|`` per row.
SUM_TOL = 1e-3
_FLOATS = (pa.float32(), pa.float16())


class PredictionsError(ValueError):
    """A run folder breaks the predictions contract; the message names file, column, example."""


def check_run_out(out: str | Path, *, inputs: Sequence[str | Path | None] = ()) -> Path:
    """Refuse (:class:`~data.files.OutputError`), before any work, a run folder to write that
    is one of ``inputs`` (dataset, images root, ...), lies inside an input folder, is a file, or
    holds a ``manifest.json`` / ``predictions.parquet`` of another kind. Rewriting a previous
    run folder is allowed."""
    out = check_output(out, inputs=inputs, folder=True, what="run folder")
    check_output(out / MANIFEST, inputs=inputs, kinds={"json"}, what="run manifest")
    check_output(out / PREDICTIONS, inputs=inputs, kinds={"parquet"}, what="predictions table")
    return out


def _fail(path: str | Path, column: str, reason: str) -> PredictionsError:
    return PredictionsError(f"{path}: column {column!r}: {reason}")


def check_manifest(manifest: dict, *, path: str | Path) -> list[str]:
    """Check a manifest's keys and class list; return the class names (probability order).

    Parameters
    ----------
    manifest : dict
        Parsed ``manifest.json``.
    path : str or Path
        File name used in error messages.

    Returns
    -------
    list of str
        ``manifest["classes"]``.

    Raises
    ------
    PredictionsError
        A key is missing, or ``classes`` is not a non-empty list of unique strings.
    """
    if not isinstance(manifest, dict):
        raise PredictionsError(f"{path}: manifest is {type(manifest).__name__}, expected an object")
    missing = [k for k in MANIFEST_KEYS if k not in manifest]
    if missing:
        raise PredictionsError(f"{path}: manifest lacks key(s) {missing} (required: "
                               f"{list(MANIFEST_KEYS)})")
    classes = manifest["classes"]
    if (not isinstance(classes, list) or not classes
            or not all(isinstance(c, str) and c for c in classes)):
        raise PredictionsError(f"{path}: manifest 'classes' must be a non-empty list of names, "
                               f"got {str(classes)[:80]!r}")
    dup = pd.Index(classes)[pd.Index(classes).duplicated()]
    if len(dup):
        raise PredictionsError(f"{path}: manifest 'classes' repeats {dup[0]!r}")
    return list(classes)


def _fixed_chunk(column: pa.Array, *, path: str | Path, n_classes: int | None,
                 row0: int) -> pa.Array:
    """One chunk as a checked fixed_size_list<float> array (variable lists are cast)."""
    typ = column.type
    if not pa.types.is_fixed_size_list(typ):
        if not (pa.types.is_list(typ) or pa.types.is_large_list(typ)):
            raise _fail(path, "probs", f"type {typ} is not a list of floats")
        lengths = pc_list_lengths(column)
        want = n_classes if n_classes is not None else (lengths[0] if len(lengths) else 0)
        bad = np.flatnonzero(lengths != want)
        if len(bad):
            raise _fail(path, "probs", f"row {row0 + bad[0]} has {lengths[bad[0]]} values, "
                                       f"expected {want}")
        column = column.cast(pa.list_(typ.value_type, int(want)))
        typ = column.type
    if typ.value_type not in _FLOATS:
        raise _fail(path, "probs", f"value type {typ.value_type} is not float32 or float16")
    if n_classes is not None and typ.list_size != n_classes:
        raise _fail(path, "probs", f"vectors have length {typ.list_size} but the manifest lists "
                                   f"{n_classes} classes (row 0 has {typ.list_size} values)")
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise _fail(path, "probs", f"row {row0 + row} is null")
    return column


class _NullValue(Exception):
    """A null inside a probability vector (args[0]: row within the chunk)."""


#: Rows per block when probabilities are converted and checked: a (4096, 61) float32 block
#: (1 MB) is still in cache when its sums are taken, so the matrix is traversed once.
_ROWS = 4096
#: float32 value of every float16 bit pattern: a table look-up is exact and ~2.5x faster than
#: NumPy's (scalar) half-float cast.
_HALF = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)


def _chunk_values(column: pa.Array) -> np.ndarray:
    """The chunk's values as a (rows, C) float16 or float32 NumPy view (no copy)."""
    size = column.type.list_size
    values = column.values
    if column.offset or len(values) != len(column) * size:
        values = values.slice(column.offset * size, len(column) * size)
    if values.null_count:
        raise _NullValue(int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
                         // size)
    return values.to_numpy().reshape(len(column), size)


def _to_float32(values: np.ndarray, out: np.ndarray) -> None:
    """Write a float16 or float32 block into the float32 block ``out`` of the same shape."""
    if values.dtype == np.float16:
        np.take(_HALF, values.view(np.uint16), out=out)
    else:
        np.copyto(out, values)


class ProbsCheck:
    """The probability rules of :func:`check_probs`, fed block by block.

    Blocks are fed in row order (e.g. right after conversion, while they are in cache);
    :meth:`raise_first` then raises what :func:`check_probs` would raise on the whole matrix.
    """

    def __init__(self) -> None:
        self.bad_sum: tuple[int, float] | None = None   # (row, its sum)
        self.negative: int | None = None

    def update(self, block: np.ndarray, row0: int) -> None:
        """Check rows ``row0 .. row0 + len(block) - 1`` (``block``: float32, (rows, C))."""
        # Row sums catch NaN/inf too (they propagate); pairwise float32 sums err by ~1e-7,
        # far below SUM_TOL.
        sums = block.sum(axis=1)
        if self.bad_sum is None:
            bad = ~(np.abs(sums - 1.0) <= SUM_TOL)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                self.bad_sum = (row0 + row, sums[row])
        if self.negative is None and block.size and block.min() < 0:
            self.negative = row0 + int(np.flatnonzero(block.min(axis=1) < 0)[0])

    def raise_first(self, probs: np.ndarray, image_ids: np.ndarray, *,
                    path: str | Path) -> None:
        """Raise for the first row breaking a rule (sums before signs), if any."""
        if self.bad_sum is not None:
            row, total = self.bad_sum
            if not np.isfinite(probs[row]).all():
                raise _fail(path, "probs", f"row {row} (image_id {image_ids[row]!r}) contains "
                                           f"NaN or infinite values")
            raise _fail(path, "probs", f"row {row} (image_id {image_ids[row]!r}) sums to "
                                       f"{total:.6g}, not 1 (tolerance {SUM_TOL})")
        if self.negative is not None:
            row = self.negative
            raise _fail(path, "probs", f"row {row} (image_id {image_ids[row]!r}) has a negative "
                                       f"probability {probs[row].min():.6g}")


def probs_matrix(column: pa.ChunkedArray | pa.Array, *, path: str | Path,
                 n_classes: int | None = None, row0: int = 0, out: np.ndarray | None = None,
                 check: ProbsCheck | None = None) -> np.ndarray:
    """The ``probs`` column as an ``(n, C)`` float32 array.

    One float32 chunk is returned without a copy; otherwise each chunk is converted block by
    block straight into one float32 array (float16 by an exact table look-up).

    Parameters
    ----------
    column : pyarrow ChunkedArray or Array
        A ``fixed_size_list<float32|float16>[C]`` column (variable-size lists of equal length
        are accepted too).
    path : str or Path
        File name used in error messages.
    n_classes : int, optional
        Expected vector length ``C``.
    row0 : int
        Row number of the column's first row in the file (for error messages).
    out : ndarray of float32, shape (n, C), optional
        Where to write the result (e.g. a slice of a larger array); a new array by default.
    check : ProbsCheck, optional
        Fed every converted block (rows numbered from ``row0``), while it is in cache.

    Returns
    -------
    ndarray, shape (n, C), float32
        ``out`` when given.
    """
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    chunks = [c for c in chunks if len(c)]
    starts = row0 + np.r_[0, np.cumsum([len(c) for c in chunks])].astype(np.int64)
    chunks = [_fixed_chunk(c, path=path, n_classes=n_classes, row0=int(r0))
              for c, r0 in zip(chunks, starts)]
    if not chunks:
        return out if out is not None else np.zeros((0, n_classes or 0), np.float32)
    values = []
    for chunk, r0 in zip(chunks, starts):
        try:
            values.append(_chunk_values(chunk))
        except _NullValue as exc:
            raise _fail(path, "probs", f"row {int(r0) + exc.args[0]} has a null value") from None
    if out is None and len(values) == 1 and values[0].dtype == np.float32:
        if check is not None:
            for lo in range(0, len(values[0]), _ROWS):
                check.update(values[0][lo:lo + _ROWS], row0 + lo)
        return values[0]
    if out is None:
        out = np.empty((int(starts[-1] - row0), chunks[0].type.list_size), np.float32)
    for vals, start in zip(values, starts):
        at = int(start - row0)
        for lo in range(0, len(vals), _ROWS):
            src = vals[lo:lo + _ROWS]
            block = out[at + lo:at + lo + len(src)]
            _to_float32(src, block)
            if check is not None:
                check.update(block, int(start) + lo)
    return out


def pc_list_lengths(column: pa.Array) -> np.ndarray:
    """Lengths of a variable-size list column (0 for nulls)."""
    return pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False)


def check_probs(probs: np.ndarray, image_ids: np.ndarray, *, path: str | Path) -> None:
    """Refuse NaN/inf, negative values and rows not summing to 1 (``SUM_TOL``).

    One pass over the matrix, block by block (see :class:`ProbsCheck`).

    Parameters
    ----------
    probs : ndarray, shape (n, C)
    image_ids : ndarray, shape (n,)
        Used to name an offending row.
    path : str or Path
        File name used in error messages.
    """
    check = ProbsCheck()
    for lo in range(0, len(probs), _ROWS):
        check.update(probs[lo:lo + _ROWS], lo)
    check.raise_first(probs, image_ids, path=path)


def check_ids(image_ids: np.ndarray | pd.Index, *, path: str | Path,
              dataset_ids: Sequence[str] | pd.Index | None = None,
              assume_unique: bool = False) -> list[str]:
    """Refuse duplicate or (with ``dataset_ids``) unknown ids; return dataset ids not predicted.

    Parameters
    ----------
    image_ids : array-like of str, shape (n,)
        The predictions' ``image_id`` column.
    path : str or Path
        File name used in error messages.
    dataset_ids : array-like of str, optional
        Every ``images[].id`` of the dataset.
    assume_unique : bool
        The caller already checked for nulls and duplicates (e.g. with Arrow, much faster).

    Returns
    -------
    list of str
        Dataset ids absent from the predictions (dataset order); empty without ``dataset_ids``.
    """
    if assume_unique and dataset_ids is None:
        return []
    ids = pd.Index(image_ids)
    if assume_unique:
        pass
    elif ids.hasnans:
        row = int(np.flatnonzero(ids.isna())[0])
        raise _fail(path, "image_id", f"row {row} is null")
    elif not ids.is_unique:
        dup = ids[ids.duplicated()][0]
        row = int(ids.get_indexer_for([dup])[1])
        raise _fail(path, "image_id", f"duplicate id {dup!r} (row {row})")
    if dataset_ids is None:
        return []
    known = pd.Index(dataset_ids)
    pos = known.get_indexer(ids)
    unknown = np.flatnonzero(pos < 0)
    if len(unknown):
        raise _fail(path, "image_id", f"{len(unknown)} id(s) not in the dataset, e.g. row "
                                      f"{unknown[0]}: {ids[unknown[0]]!r}")
    seen = np.zeros(len(known), bool)
    seen[pos] = True
    return known[~seen].tolist()


def check_classes(classes: Sequence[str], dataset_classes: Sequence[str], *,
                  path: str | Path) -> None:
    """Refuse a manifest class list that is not the same set as the dataset's categories."""
    extra = sorted(set(classes) - set(dataset_classes))
    lacking = sorted(set(dataset_classes) - set(classes))
    if extra or lacking:
        raise PredictionsError(
            f"{path}: manifest 'classes' does not match the dataset's categories: "
            f"not in dataset {extra[:5]}{'...' if len(extra) > 5 else ''}, "
            f"missing from manifest {lacking[:5]}{'...' if len(lacking) > 5 else ''}")


def validate_predictions(table: pa.Table, manifest: dict, *, path: str | Path,
                         dataset_ids: Sequence[str] | pd.Index | None = None,
                         dataset_classes: Sequence[str] | None = None) -> list[str]:
    """Check a predictions table and its manifest against the run-folder contract.

    Parameters
    ----------
    table : pyarrow.Table
        Columns ``image_id`` (string), ``probs`` (fixed_size_list<float32|float16>[C]),
        ``split`` (string), optional ``embedding`` (fixed_size_list<float16>[D]).
    manifest : dict
        Parsed ``manifest.json``; ``classes`` gives the probability order.
    path : str or Path
        File named in error messages (the run folder or its ``predictions.parquet``).
    dataset_ids : array-like of str, optional
        The dataset's image ids; with it, unknown ids are refused and absent ones returned.
    dataset_classes : sequence of str, optional
        The dataset's category names; the manifest must list the same set.

    Returns
    -------
    list of str
        Dataset ids that have no prediction (reported, not fatal).

    Raises
    ------
    PredictionsError
        Missing manifest key or column, wrong vector length, NaN, negative values, a row not
        summing to 1 within 1e-3, null/duplicate/unknown ids, or a class-list mismatch.

    Examples
    --------
    >>> import pyarrow as pa
    >>> t = pa.table({"image_id": ["a"], "split": ["test"],
    ...               "probs": pa.array([[0.25, 0.75]], pa.list_(pa.float32(), 2))})
    >>> m = dict.fromkeys(MANIFEST_KEYS, {}) | {"classes": ["cat", "dog"], "n_predictions": 1}
    >>> validate_predictions(t, m, path="run", dataset_ids=["a", "b"])
    ['b']
    """
    return checked_arrays(table, manifest, path=path, dataset_ids=dataset_ids,
                          dataset_classes=dataset_classes)[2]


_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9),
        np.uint64(0x94D049BB133111EB))
_HASH_BLOCK = 1 << 18  # ids padded and hashed a block at a time


def _hash_rows(words: np.ndarray) -> np.ndarray:
    """A 64-bit hash per row of a (n, k) uint64 matrix (splitmix64-style mixing)."""
    out = np.empty(len(words), np.uint64)
    for lo in range(0, len(words), 1 << 16):  # blocks stay in cache across the k words
        w = words[lo:lo + (1 << 16)]
        h = w[:, 0] * _MIX[0]
        for j in range(1, w.shape[1]):
            h ^= h >> np.uint64(31)
            h *= _MIX[1]
            h ^= w[:, j]
        h ^= h >> np.uint64(30)
        h *= _MIX[2]
        h ^= h >> np.uint64(31)
        out[lo:lo + len(h)] = h
    return out


def _first_repeat_encoded(arr: pa.Array) -> int | None:
    """:func:`first_repeat` with Arrow's hash table (any strings; slower)."""
    # Arrow numbers distinct values by first appearance: a repeat never exceeds the largest
    # code seen before it.
    codes = arr.dictionary_encode().indices.to_numpy()
    before = np.maximum.accumulate(np.r_[-1, codes[:-1]])
    repeats = np.flatnonzero(codes <= before)
    return int(repeats[0]) if len(repeats) else None


def first_repeat(column: pa.Array | pa.ChunkedArray) -> int | None:
    """Row of the first value equal to an earlier one in a string column without nulls.

    Exact. ASCII ids (the usual case) are padded to one width, hashed to 64 bits in NumPy and
    the hashes sorted: equal ids have equal hashes, so only rows whose hash repeats are
    compared as strings. ~6x faster than an Arrow or pandas hash table at 7 M ids.

    Returns
    -------
    int or None
        None when all values differ.
    """
    col = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
    n = len(col)
    if n < 2:
        return None
    if not pc.all(pc.string_is_ascii(col)).as_py():
        return _first_repeat_encoded(col.combine_chunks())
    width = 8 * max(1, -(-int(pc.max(pc.binary_length(col)).as_py()) // 8))
    hashes = np.empty(n, np.uint64)
    for lo in range(0, n, _HASH_BLOCK):  # padded copies of a block at a time, not of all ids
        padded = pc.ascii_rpad(col.slice(lo, _HASH_BLOCK), width=width,
                               padding="\0").combine_chunks()
        m = len(padded)
        offsets = np.frombuffer(padded.buffers()[1], np.int64 if pa.types.is_large_string(
            padded.type) else np.int32)[padded.offset:padded.offset + m + 1]
        if offsets[-1] - offsets[0] != m * width:  # cannot happen for ASCII; stay exact anyway
            return _first_repeat_encoded(col.combine_chunks())
        data = np.frombuffer(padded.buffers()[2], np.uint8, m * width, int(offsets[0]))
        hashes[lo:lo + m] = _hash_rows(data.view(np.uint64).reshape(m, width // 8))
    ordered = np.sort(hashes)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if not len(repeated):
        return None
    rows = np.flatnonzero(np.isin(hashes, repeated))
    seen: set[str] = set()
    for row, value in zip(rows.tolist(), col.take(rows).to_pylist()):
        if value in seen:
            return row
        seen.add(value)
    return None


def checked_arrays(table: pa.Table, manifest: dict, *, path: str | Path,
                   dataset_ids: Sequence[str] | pd.Index | None = None,
                   dataset_classes: Sequence[str] | None = None,
                   probs: np.ndarray | Callable[[ProbsCheck], np.ndarray] | None = None,
                   ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """:func:`validate_predictions` that also returns ``(image_ids, probs (n, C) float32,
    missing)`` so readers convert the columns once. ``probs``, when given, is the converted
    ``probs`` column or a function producing it after the id checks (then ``table`` need not
    hold the column); the function is passed a :class:`ProbsCheck` that it must feed every
    row (in row order, e.g. as it converts them)."""
    classes = check_manifest(manifest, path=path)
    if dataset_classes is not None:
        check_classes(classes, dataset_classes, path=path)
    lacking = [c for c in REQUIRED_COLUMNS if c not in table.column_names
               and not (c == "probs" and probs is not None)]
    if lacking:
        raise PredictionsError(f"{path}: missing column(s) {lacking}; has {table.column_names}")
    for col in ("image_id", "split"):
        typ = table.schema.field(col).type
        if not (pa.types.is_string(typ) or pa.types.is_large_string(typ)
                or pa.types.is_dictionary(typ)):
            raise _fail(path, col, f"type {typ} is not string")
    n_pred = manifest.get("n_predictions")
    if isinstance(n_pred, int) and n_pred != table.num_rows:
        raise PredictionsError(f"{path}: manifest 'n_predictions' is {n_pred} but the table has "
                               f"{table.num_rows} rows")
    id_col = table.column("image_id")
    if pa.types.is_dictionary(id_col.type):
        id_col = id_col.cast(pa.string())
    # Ids are checked in Arrow/NumPy (a pandas Index of 7 M Python strings takes seconds),
    # before the probabilities are materialised so the two peaks of memory do not add up;
    # the error itself is raised last, as the slower checks always did.
    repeat = None if id_col.null_count else first_repeat(id_col)
    ids = id_col.to_numpy()
    del id_col
    check = ProbsCheck()
    if probs is None:
        probs = probs_matrix(table.column("probs"), path=path, n_classes=len(classes),
                             check=check)
    elif callable(probs):
        probs = probs(check)
    else:
        check_probs(probs, ids, path=path)
    if probs.shape != (table.num_rows, len(classes)):
        raise _fail(path, "probs", f"shape {probs.shape} does not match {table.num_rows} rows "
                                   f"x {len(classes)} classes")
    check.raise_first(probs, ids, path=path)
    if table.column("split").null_count:
        row = int(np.flatnonzero(table.column("split").is_null().to_numpy(zero_copy_only=False))[0])
        raise _fail(path, "split", f"row {row} (image_id {ids[row]!r}) is null")
    if "embedding" in table.column_names:
        typ = table.schema.field("embedding").type
        if not pa.types.is_fixed_size_list(typ) or typ.value_type not in _FLOATS:
            raise _fail(path, "embedding", f"type {typ} is not fixed_size_list<float16>")
    if repeat is not None:
        raise _fail(path, "image_id", f"duplicate id {ids[repeat]!r} (row {repeat})")
    return ids, probs, check_ids(ids, path=path, dataset_ids=dataset_ids,
                                 assume_unique=not table.column("image_id").null_count)


# -- reading and writing run folders --------------------------------------------------------
@dataclass(eq=False)
class Run:
    """A loaded run folder; arrays are aligned row by row and read-only.

    Attributes
    ----------
    path : Path
        The run folder.
    manifest : dict
        Parsed ``manifest.json``.
    classes : list of str
        Class names in probability order (``manifest["classes"]``).
    image_ids : ndarray of str, shape (n,)
    probs : ndarray of float32, shape (n, C)
    split : ndarray of str, shape (n,)
    embedding : ndarray of float16, shape (n, D), or None
    """

    path: Path
    manifest: dict
    classes: list[str]
    image_ids: np.ndarray
    probs: np.ndarray
    split: np.ndarray
    embedding: np.ndarray | None = field(default=None, repr=False)

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id", self.path.name))


def read_manifest(run_dir: str | Path) -> dict:
    """The run's parsed ``manifest.json`` (not validated: see :func:`check_manifest`).

    Raises
    ------
    PredictionsError
        The file is absent or not valid JSON (the message names the file).
    """
    path = Path(run_dir) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PredictionsError(f"{path}: file not found (not a run folder?)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PredictionsError(f"{path}: not valid JSON ({exc})") from None


#: ``(resolved file path, mtime_ns, size)`` of one file; ``(path, 0, 0)`` when it is absent.
FileStamp = tuple[str, int, int]
Stamp = tuple[FileStamp, FileStamp]


def run_stamp(run_dir: str | Path) -> Stamp:
    """The "files changed" stamp of a run folder: :data:`FileStamp` of ``manifest.json`` and of
    ``predictions.parquet``. It changes whenever either file is rewritten, so every cache of a
    run folder (:func:`load_run`'s, the dashboard's) keys on it."""
    run_dir = Path(run_dir).expanduser().resolve()
    out = []
    for name in (MANIFEST, PREDICTIONS):
        path = run_dir / name
        try:
            st = path.stat()
        except OSError:
            out.append((str(path), 0, 0))
        else:
            out.append((str(path), int(st.st_mtime_ns), int(st.st_size)))
    return tuple(out)


def load_run(run_dir: str | Path) -> Run:
    """Read and validate a run folder (cached by the files' modification times).

    Parameters
    ----------
    run_dir : str or Path
        Folder with ``manifest.json`` and ``predictions.parquet``.

    Returns
    -------
    Run
        ``probs`` is float32 ``(n, C)``; float32 files are read without a copy.

    Raises
    ------
    PredictionsError
        Any breach of the contract (see :func:`validate_predictions`).
    """
    run_dir = Path(run_dir).resolve()
    return _load_cached(run_dir, run_stamp(run_dir))


def _read_probs(pf: pq.ParquetFile, check: ProbsCheck, *, path: Path,
                n_classes: int) -> np.ndarray:
    """The ``probs`` column, converted (and checked) row group by row group straight into one
    float32 array, so the file's own (float16) column never sits in memory beside the result.

    The next row group is decoded by Arrow in a second thread (without the GIL) while NumPy
    converts the current one.
    """
    out = np.empty((pf.metadata.num_rows, n_classes), np.float32)
    row = 0
    with ThreadPoolExecutor(max_workers=1) as pool:
        def read(i: int):
            return pool.submit(pf.read_row_group, i, columns=["probs"], use_threads=False)

        pending = read(0) if pf.metadata.num_row_groups else None
        for i in range(pf.metadata.num_row_groups):
            col = pending.result().column(0)
            pending = read(i + 1) if i + 1 < pf.metadata.num_row_groups else None
            probs_matrix(col, path=path, n_classes=n_classes, row0=row,
                         out=out[row:row + len(col)], check=check)
            row += len(col)
            del col
    return out


def _split_array(column: pa.ChunkedArray) -> np.ndarray:
    """The ``split`` column as an object array; a dictionary column shares its few strings."""
    if not pa.types.is_dictionary(column.type):
        return column.to_numpy()
    out = np.empty(len(column), dtype=object)
    row = 0
    for chunk in column.chunks:
        names = chunk.dictionary.to_numpy(zero_copy_only=False)
        out[row:row + len(chunk)] = names[chunk.indices.to_numpy(zero_copy_only=False)]
        row += len(chunk)
    return out


@functools.lru_cache(maxsize=2)
def _load_cached(run_dir: Path, stamp: Stamp) -> Run:
    manifest = read_manifest(run_dir)
    path = run_dir / PREDICTIONS
    classes = check_manifest(manifest, path=run_dir / MANIFEST)
    try:
        pf = pq.ParquetFile(path, read_dictionary=["split"], memory_map=True)
        by_group = "probs" in pf.schema_arrow.names and pf.metadata.num_row_groups > 1
        table = pf.read(columns=[c for c in pf.schema_arrow.names
                                 if not (by_group and c == "probs")])
    except FileNotFoundError:
        raise PredictionsError(f"{path}: file not found") from None
    except (pa.ArrowException, OSError) as exc:
        raise PredictionsError(f"{path}: unreadable Parquet ({exc})") from None
    reader = ((lambda check: _read_probs(pf, check, path=path, n_classes=len(classes)))
              if by_group else None)
    try:
        ids, probs, _ = checked_arrays(table, manifest, path=path, probs=reader)
    except (pa.ArrowException, OSError) as exc:
        raise PredictionsError(f"{path}: unreadable Parquet ({exc})") from None
    embedding = None
    if "embedding" in table.column_names:
        emb = table.column("embedding").combine_chunks()
        embedding = emb.values.to_numpy().reshape(len(emb), emb.type.list_size)
    split = _split_array(table.column("split"))
    for arr in (ids, probs, split, embedding):
        if arr is not None:
            arr.flags.writeable = False  # cached: callers must not mutate it
    log.info("loaded run %s: %d predictions x %d classes", run_dir.name, *probs.shape)
    return Run(path=run_dir, manifest=manifest, classes=classes,
               image_ids=ids, probs=probs, split=split, embedding=embedding)


#: Optional files beside the run: the training split of every image the model saw (written by
#: ``training.predict``) and the fitted temperature (written by ``analysis.decision``).
SPLIT_TABLE = "split.parquet"
CALIBRATION = "calibration.json"


def read_split_table(run_dir: str | Path) -> pd.Series | None:
    """``image_id -> split`` from the run's ``split.parquet``, or None when it has none.

    Raises
    ------
    PredictionsError
        The file exists but lacks an ``image_id`` or ``split`` column.
    """
    path = Path(run_dir) / SPLIT_TABLE
    if not path.is_file():
        return None
    table = pd.read_parquet(path)
    for column in ("image_id", "split"):
        if column not in table.columns:
            raise _fail(path, column, f"missing; columns are {list(table.columns)}")
    return pd.Series(table["split"].astype(str).to_numpy(),
                     index=pd.Index(table["image_id"].astype(str), name="image_id"),
                     name="split")


def read_calibration(run_dir: str | Path) -> dict | None:
    """The run's ``calibration.json`` (a dict), or None when absent or unreadable."""
    path = Path(run_dir) / CALIBRATION
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_calibration(run_dir: str | Path, record: dict) -> Path:
    """Write ``calibration.json`` beside the run, atomically."""
    return atomic_write(Path(run_dir) / CALIBRATION, json.dumps(record, indent=1,
                                                                allow_nan=False))


def list_runs(runs_dir: str | Path) -> list[Path]:
    """Run folders (with both ``manifest.json`` and ``predictions.parquet``) under ``runs_dir``.

    Returns
    -------
    list of Path
        Sorted by folder name; empty when ``runs_dir`` does not exist.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return sorted(p for p in runs_dir.iterdir()
                  if (p / MANIFEST).is_file() and (p / PREDICTIONS).is_file())


def fixed_list(matrix: np.ndarray, dtype: np.dtype) -> pa.FixedSizeListArray:
    """An ``(n, C)`` matrix as the writer's ``fixed_size_list<dtype>[C]`` column layout."""
    # Non-nullable items: Parquet then stores no definition levels, which makes reading
    # 7 M x 61 values several times faster.
    matrix = np.ascontiguousarray(matrix, dtype=dtype)
    item = pa.field("item", pa.from_numpy_dtype(np.dtype(dtype)), nullable=False)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)),
                                             type=pa.list_(item, matrix.shape[1]))


def write_run(run_dir: str | Path, *, manifest: dict, image_ids: Sequence[str] | np.ndarray,
              probs: np.ndarray, split: Sequence[str] | np.ndarray | str,
              embedding: np.ndarray | None = None) -> Path:
    """Validate and write a run folder atomically; the one predictions writer.

    Parameters
    ----------
    run_dir : str or Path
        Created if absent.
    manifest : dict
        Must hold the keys of :data:`MANIFEST_KEYS` except those filled here:
        ``run_id`` (default: folder name), ``created_at`` (default: now, UTC),
        ``n_predictions`` (always set to ``len(image_ids)``), ``unreadable`` (default ``[]``).
    image_ids : sequence of str, shape (n,)
    probs : ndarray, shape (n, C)
        float16 is kept as float16 on disk; anything else is written as float32.
    split : sequence of str, shape (n,), or one str for every row
    embedding : ndarray, shape (n, D), optional
        Written as float16.

    Returns
    -------
    Path
        The run folder.

    Raises
    ------
    PredictionsError
        The predictions break the contract; nothing is written.
    """
    run_dir = Path(run_dir)
    probs = np.asarray(probs)
    if probs.ndim != 2:
        raise PredictionsError(f"{run_dir / PREDICTIONS}: column 'probs': expected a 2-D array, "
                               f"got shape {probs.shape}")
    n = probs.shape[0]
    ids = np.asarray(image_ids, dtype=object)
    split_arr = (np.full(n, split, dtype=object) if isinstance(split, str)
                 else np.asarray(split, dtype=object))
    for name, arr in (("image_id", ids), ("split", split_arr)):
        if len(arr) != n:
            raise PredictionsError(f"{run_dir / PREDICTIONS}: column {name!r}: {len(arr)} values "
                                   f"for {n} rows of probs")
    manifest = {"run_id": run_dir.name,
                "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                "unreadable": [], **manifest, "n_predictions": int(n)}
    dtype = np.float16 if probs.dtype == np.float16 else np.float32
    columns = {"image_id": pa.array(ids, pa.string()),
               "probs": fixed_list(probs, dtype),
               "split": pa.array(split_arr, pa.string())}
    if embedding is not None:
        embedding = np.asarray(embedding)
        if embedding.ndim != 2 or len(embedding) != n:
            raise PredictionsError(f"{run_dir / PREDICTIONS}: column 'embedding': shape "
                                   f"{embedding.shape} does not match {n} rows")
        columns["embedding"] = fixed_list(embedding, np.float16)
    table = pa.table(columns, schema=pa.schema(
        [pa.field(k, v.type, nullable=False) for k, v in columns.items()]))
    checked_arrays(table, manifest, path=run_dir / PREDICTIONS)
    run_dir.mkdir(parents=True, exist_ok=True)
    # No dictionary pages for floats and unique ids (they only slow reading down).
    atomic_write_path(run_dir / PREDICTIONS,
                      lambda p: pq.write_table(table, p, use_dictionary=["split"]))
    atomic_write(run_dir / MANIFEST, json.dumps(manifest, indent=2, default=str) + "\n")
    log.info("wrote run %s: %d predictions", run_dir, n)
    return run_dir
