"""data.runs: every bad-input case is refused with file, column and an example."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from data.runs import MANIFEST_KEYS, PredictionsError, validate_predictions

CLASSES = ["empty", "zebra", "wildebeest"]
PATH = "runs/r1/predictions.parquet"


def _manifest(**over):
    base = {k: {} for k in MANIFEST_KEYS}
    base.update(run_id="r1", created_at="2026-01-01T00:00:00+00:00", classes=list(CLASSES),
                n_predictions=3)
    base.update(over)
    return base


def _table(probs=None, ids=("a", "b", "c"), split=("test",) * 3, dtype=pa.float32(),
           width=None):
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.0, 0.5, 0.5]]) if probs is None \
        else np.asarray(probs)
    width = probs.shape[1] if width is None else width
    flat = pa.array(probs.reshape(-1), dtype)
    return pa.table({"image_id": pa.array(list(ids), pa.string()),
                     "probs": pa.FixedSizeListArray.from_arrays(flat, width),
                     "split": pa.array(list(split), pa.string())})


def test_valid_table_returns_dataset_ids_without_prediction():
    missing = validate_predictions(_table(), _manifest(), path=PATH,
                                   dataset_ids=["a", "b", "c", "d", "e"],
                                   dataset_classes=["zebra", "wildebeest", "empty"])
    assert missing == ["d", "e"]
    assert validate_predictions(_table(dtype=pa.float16()), _manifest(), path=PATH) == []


@pytest.mark.parametrize("key", MANIFEST_KEYS)
def test_missing_manifest_key(key):
    manifest = _manifest()
    del manifest[key]
    with pytest.raises(PredictionsError, match=rf"{PATH}: manifest lacks key\(s\) \['{key}'\]"):
        validate_predictions(_table(), manifest, path=PATH)


def test_nan_is_refused_naming_row_and_id():
    probs = np.array([[0.8, 0.1, 0.1], [np.nan, 0.7, 0.3], [0.0, 0.5, 0.5]])
    with pytest.raises(PredictionsError,
                       match=r"predictions.parquet: column 'probs': row 1 \(image_id 'b'\) "
                             r"contains NaN"):
        validate_predictions(_table(probs), _manifest(), path=PATH)


def test_row_not_summing_to_one():
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.3, 0.5, 0.5]])
    with pytest.raises(PredictionsError, match=r"row 2 \(image_id 'c'\) sums to 1.3, not 1"):
        validate_predictions(_table(probs), _manifest(), path=PATH)


def test_sum_tolerance_is_1e_3():
    ok = np.array([[0.8, 0.1, 0.1009], [0.2, 0.7, 0.1], [0.0, 0.5, 0.5]])
    validate_predictions(_table(ok), _manifest(), path=PATH)
    bad = np.array([[0.8, 0.1, 0.1015], [0.2, 0.7, 0.1], [0.0, 0.5, 0.5]])
    with pytest.raises(PredictionsError, match="sums to"):
        validate_predictions(_table(bad), _manifest(), path=PATH)


def test_negative_probability():
    probs = np.array([[0.8, 0.1, 0.1], [1.2, -0.3, 0.1], [0.0, 0.5, 0.5]])
    with pytest.raises(PredictionsError, match=r"row 1 \(image_id 'b'\) has a negative"):
        validate_predictions(_table(probs), _manifest(), path=PATH)


def test_wrong_vector_length():
    probs = np.array([[0.5, 0.5], [0.3, 0.7], [1.0, 0.0]])
    with pytest.raises(PredictionsError, match=r"column 'probs': vectors have length 2 but "
                                               r"the manifest lists 3 classes"):
        validate_predictions(_table(probs), _manifest(), path=PATH)


def test_variable_length_lists_name_the_bad_row():
    col = pa.array([[0.5, 0.25, 0.25], [0.5, 0.5], [1.0, 0.0, 0.0]], pa.list_(pa.float32()))
    table = _table().set_column(1, "probs", col)
    with pytest.raises(PredictionsError, match="row 1 has 2 values, expected 3"):
        validate_predictions(table, _manifest(), path=PATH)


def test_wrong_value_type():
    table = _table().set_column(1, "probs", pa.array([[1, 0, 0]] * 3, pa.list_(pa.int64(), 3)))
    with pytest.raises(PredictionsError, match="value type int64 is not float32 or float16"):
        validate_predictions(table, _manifest(), path=PATH)


def test_duplicate_ids():
    with pytest.raises(PredictionsError, match=r"column 'image_id': duplicate id 'a' \(row 2\)"):
        validate_predictions(_table(ids=("a", "b", "a")), _manifest(), path=PATH)


def test_unknown_ids():
    with pytest.raises(PredictionsError, match=r"column 'image_id': 1 id\(s\) not in the "
                                               r"dataset, e.g. row 2: 'c'"):
        validate_predictions(_table(), _manifest(), path=PATH, dataset_ids=["a", "b", "x"])


def test_class_list_mismatch():
    with pytest.raises(PredictionsError, match=r"not in dataset \['wildebeest'\], missing from "
                                               r"manifest \['lion'\]"):
        validate_predictions(_table(), _manifest(), path=PATH,
                             dataset_classes=["empty", "zebra", "lion"])


@pytest.mark.parametrize("classes,match", [(["a", "a", "b"], "repeats 'a'"),
                                           ([], "non-empty list"), ("abc", "non-empty list")])
def test_bad_manifest_classes(classes, match):
    with pytest.raises(PredictionsError, match=match):
        validate_predictions(_table(), _manifest(classes=classes), path=PATH)


def test_missing_column_and_null_split_and_row_count():
    with pytest.raises(PredictionsError, match=r"missing column\(s\) \['split'\]"):
        validate_predictions(_table().drop_columns(["split"]), _manifest(), path=PATH)
    table = _table().set_column(2, "split", pa.array(["test", None, "val"], pa.string()))
    with pytest.raises(PredictionsError, match=r"column 'split': row 1 \(image_id 'b'\) is null"):
        validate_predictions(table, _manifest(), path=PATH)
    with pytest.raises(PredictionsError, match="'n_predictions' is 5 but the table has 3 rows"):
        validate_predictions(_table(), _manifest(n_predictions=5), path=PATH)


def test_errors_are_value_errors():
    assert issubclass(PredictionsError, ValueError)


def test_null_value_inside_a_vector_and_multiple_chunks():
    good = _table()
    flat = pa.array([0.5, 0.5, None, 0.2, 0.7, 0.1, 0.0, 0.5, 0.5], pa.float32())
    bad = good.set_column(1, "probs", pa.FixedSizeListArray.from_arrays(flat, 3))
    two = pa.concat_tables([good, bad])  # two chunks: the row number counts across them
    manifest = _manifest(n_predictions=6)
    with pytest.raises(PredictionsError, match=r"column 'probs': row 3 has a null value"):
        validate_predictions(two.set_column(0, "image_id", pa.array(list("abcdef"))), manifest,
                             path=PATH)
