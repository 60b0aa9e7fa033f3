"""Confusion and per-class metrics over Parquet partitions (Dask) equal the in-memory result."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import dask
from sklearn.metrics import confusion_matrix

from analysis.metrics import per_class
from analysis.partitions import partition_confusion, probs_of, row_group_confusion




def _write(tmp_path, n=5000, c=7, seed=0):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(c), size=n).astype(np.float32)
    ids = np.array([f"img{i:05d}" for i in range(n)])
    y = rng.integers(0, c, n)
    path = tmp_path / "predictions.parquet"
    col = pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), c)
    pq.write_table(pa.table({"image_id": ids, "probs": col}), path, row_group_size=777)
    # The truth table holds more images than were predicted, in another order.
    truth = pd.Series(np.r_[y, 0], index=np.r_[ids, ["unpredicted"]])[::-1]
    return path, probs, ids, y, truth, c


def test_dask_over_row_groups_equals_in_memory(tmp_path):
    path, probs, ids, y, truth, c = _write(tmp_path)
    groups = pq.ParquetFile(path).metadata.num_row_groups
    assert groups > 5
    tasks = [dask.delayed(row_group_confusion)(str(path), g, truth=truth, n_classes=c)
             for g in range(groups)]
    cm = sum(dask.compute(*tasks, scheduler="threads"))
    expected = confusion_matrix(y, probs.argmax(axis=1), labels=np.arange(c))
    assert np.array_equal(cm, expected)
    classes = [f"c{i}" for i in range(c)]
    pd.testing.assert_frame_equal(per_class(cm, classes), per_class(expected, classes))


def test_partition_confusion_drops_unknown_ids():
    truth = pd.Series([1, 0], index=["a", "b"])
    cm = partition_confusion(["b", "nope", "a"], np.array([[1, 0], [0, 1], [0, 1.]]), truth=truth,
                             n_classes=2)
    assert cm.tolist() == [[1, 0], [0, 1]]


def test_probs_of_chunked():
    col = pa.chunked_array([pa.array([[0.1, 0.9]], type=pa.list_(pa.float16(), 2)),
                            pa.array([[0.7, 0.3]], type=pa.list_(pa.float16(), 2))])
    out = probs_of(col, 2)
    assert out.dtype == np.float32 and out.shape == (2, 2)
    assert out.argmax(axis=1).tolist() == [1, 0]
