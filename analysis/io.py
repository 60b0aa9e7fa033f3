"""The one reader and writer of run folders (``manifest.json`` + ``predictions.parquet``)."""
from __future__ import annotations

import datetime as _dt
import functools
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from analysis.schema import (
    PredictionsError,
    ProbsCheck,
    check_manifest,
    checked_arrays,
    probs_matrix,
)

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
PREDICTIONS = "predictions.parquet"


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


def _read_manifest(run_dir: Path) -> dict:
    path = run_dir / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PredictionsError(f"{path}: file not found (not a run folder?)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PredictionsError(f"{path}: not valid JSON ({exc})") from None


def _stamp(run_dir: Path) -> tuple[int, int]:
    return tuple(int((run_dir / f).stat().st_mtime_ns) if (run_dir / f).exists() else 0
                 for f in (MANIFEST, PREDICTIONS))


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
        Any breach of the contract (see :func:`analysis.schema.validate_predictions`).
    """
    run_dir = Path(run_dir).resolve()
    return _load_cached(run_dir, _stamp(run_dir))


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
def _load_cached(run_dir: Path, stamp: tuple[int, int]) -> Run:
    manifest = _read_manifest(run_dir)
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


def _fixed_list(matrix: np.ndarray, dtype: np.dtype) -> pa.FixedSizeListArray:
    # Non-nullable items: Parquet then stores no definition levels, which makes reading
    # 7 M x 61 values several times faster.
    matrix = np.ascontiguousarray(matrix, dtype=dtype)
    item = pa.field("item", pa.from_numpy_dtype(np.dtype(dtype)), nullable=False)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)),
                                             type=pa.list_(item, matrix.shape[1]))


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_run(run_dir: str | Path, *, manifest: dict, image_ids: Sequence[str] | np.ndarray,
              probs: np.ndarray, split: Sequence[str] | np.ndarray | str,
              embedding: np.ndarray | None = None) -> Path:
    """Validate and write a run folder atomically; the one predictions writer.

    Parameters
    ----------
    run_dir : str or Path
        Created if absent.
    manifest : dict
        Must hold the keys of :data:`analysis.schema.MANIFEST_KEYS` except those filled here:
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
               "probs": _fixed_list(probs, dtype),
               "split": pa.array(split_arr, pa.string())}
    if embedding is not None:
        embedding = np.asarray(embedding)
        if embedding.ndim != 2 or len(embedding) != n:
            raise PredictionsError(f"{run_dir / PREDICTIONS}: column 'embedding': shape "
                                   f"{embedding.shape} does not match {n} rows")
        columns["embedding"] = _fixed_list(embedding, np.float16)
    table = pa.table(columns, schema=pa.schema(
        [pa.field(k, v.type, nullable=False) for k, v in columns.items()]))
    checked_arrays(table, manifest, path=run_dir / PREDICTIONS)
    run_dir.mkdir(parents=True, exist_ok=True)
    # No dictionary pages for floats and unique ids (they only slow reading down).
    _atomic_write(run_dir / PREDICTIONS,
                  lambda p: pq.write_table(table, p, use_dictionary=["split"]))
    _atomic_write(run_dir / MANIFEST,
                  lambda p: p.write_text(json.dumps(manifest, indent=2, default=str) + "\n"))
    log.info("wrote run %s: %d predictions", run_dir, n)
    return run_dir
