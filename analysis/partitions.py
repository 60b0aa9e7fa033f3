"""Metrics as sums over partitions: what lets the analysis outgrow one machine.

A confusion matrix is a sum of per-partition confusion matrices, so any engine that maps a
function over Parquet partitions and adds the results (Dask, Spark, a shell loop) computes the
exact in-memory answer; per-class precision, recall and F1 then follow from the summed counts
with :func:`analysis.metrics.per_class`. The same holds for capture-bootstrap counts (per
resample, counts per class), calibration bins (count, confidence sum, correct sum per bin) and
capture aggregates (grouped by capture, when partitions are cut on capture boundaries). See
docs/architecture.md, "Beyond one machine".

These functions are pure (numpy, pandas, pyarrow); the engine that schedules them is the
caller's (``bench/bench_scale.py`` runs them under Dask).
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def probs_of(column: pa.ChunkedArray | pa.Array, n_classes: int) -> np.ndarray:
    """A ``probs`` fixed-size-list column as a (n, n_classes) float32 array.

    >>> col = pa.array([[0.2, 0.8], [0.9, 0.1]], type=pa.list_(pa.float32(), 2))
    >>> probs_of(col, 2).argmax(axis=1).tolist()
    [1, 0]
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    flat = column.flatten().to_numpy(zero_copy_only=False)
    return flat.astype(np.float32, copy=False).reshape(-1, n_classes)


def partition_confusion(image_ids: pd.Index | np.ndarray | Iterable[str], probs: np.ndarray, *,
                        truth: pd.Series, n_classes: int) -> np.ndarray:
    """The confusion counts of one partition of predictions.

    Parameters
    ----------
    image_ids : sequence of str, shape (n,)
        The partition's image ids.
    probs : ndarray, shape (n, n_classes)
        Their probabilities (arg-max is the prediction).
    truth : pandas.Series
        Image id -> true class index (``int``), for every image of the dataset (a broadcast
        look-up table; images it lacks are left out, as the in-memory join leaves them out).
    n_classes : int

    Returns
    -------
    ndarray of int64, shape (n_classes, n_classes)
        Rows true, columns predicted; the sum over partitions is the full confusion matrix.

    Examples
    --------
    >>> truth = pd.Series([0, 1, 1], index=["a", "b", "c"])
    >>> partition_confusion(["a", "c", "zz"], np.array([[.9, .1], [.8, .2], [.5, .5]]),
    ...                     truth=truth, n_classes=2).tolist()
    [[1, 0], [1, 0]]
    """
    rows = truth.index.get_indexer(pd.Index(image_ids))
    keep = rows >= 0
    y_true = truth.to_numpy()[rows[keep]].astype(np.int64)
    y_pred = np.asarray(probs)[keep].argmax(axis=1).astype(np.int64)
    counts = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def row_group_confusion(path: str, group: int, *, truth: pd.Series, n_classes: int) -> np.ndarray:
    """:func:`partition_confusion` of row group ``group`` of a ``predictions.parquet``."""
    table = pq.ParquetFile(path).read_row_group(group, columns=["image_id", "probs"])
    ids = table.column("image_id").to_numpy(zero_copy_only=False)
    return partition_confusion(ids, probs_of(table.column("probs"), n_classes), truth=truth,
                               n_classes=n_classes)
