"""analysis.confusion: normalisation, most-confused pairs, orderings, top-N + other, cells."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from analysis.confusion import OTHER, cell_mask, class_order, most_confused, normalize, top_n_other
from analysis.metrics import confusion

CM = np.array([[50, 5, 0, 1],
               [8, 30, 0, 0],
               [0, 0, 0, 0],     # absent class
               [2, 0, 3, 10]])
NAMES = ["zebra", "wildebeest", "aardvark", "impala"]


@pytest.mark.parametrize("by,axis", [("true", 1), ("pred", 0)])
def test_normalize_equals_sklearn(by, axis):
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 5, 500), rng.integers(0, 5, 500)
    ref = confusion_matrix(y_true, y_pred, labels=range(5), normalize=by)
    np.testing.assert_allclose(normalize(confusion(y_true, y_pred, 5), by=by), ref, atol=1e-12)
    got = normalize(CM, by=by)
    assert np.all(got.sum(axis=axis)[CM.sum(axis=axis) > 0] == pytest.approx(1.0))
    assert not np.isnan(got).any()  # the absent class is zeros, not NaN
    np.testing.assert_array_equal(normalize(CM), CM)
    with pytest.raises(ValueError, match="by must be"):
        normalize(CM, by="all")


def test_most_confused():
    df = most_confused(CM, NAMES, k=3)
    assert df[["actual", "predicted", "count"]].values.tolist() == [
        ["wildebeest", "zebra", 8], ["zebra", "wildebeest", 5], ["impala", "aardvark", 3]]
    assert df["rate"].iloc[0] == pytest.approx(8 / 38)
    assert len(most_confused(CM, NAMES, k=100)) == 5  # zero cells and the diagonal left out


def test_class_orders():
    assert class_order(CM, NAMES, by="name") == [2, 3, 1, 0]
    assert class_order(CM, NAMES, by="support") == [0, 1, 3, 2]
    with pytest.raises(ValueError, match="by must be"):
        class_order(CM, NAMES, by="size")


def test_cluster_order_puts_confused_classes_together():
    # Two blocks {0, 3} and {1, 4}, {2} alone; interleaved in class order.
    cm = np.diag([100, 100, 100, 100, 100])
    cm[0, 3] = cm[3, 0] = 40
    cm[1, 4] = cm[4, 1] = 40
    order = class_order(cm, list("abcde"), by="cluster")
    assert sorted(order) == [0, 1, 2, 3, 4]
    pos = {c: i for i, c in enumerate(order)}
    assert abs(pos[0] - pos[3]) == 1 and abs(pos[1] - pos[4]) == 1


def test_top_n_other_pools_the_rest():
    cm2, names2 = top_n_other(CM, NAMES, n=2)
    assert names2 == ["zebra", "wildebeest", OTHER]
    assert cm2.sum() == CM.sum()
    assert cm2.tolist() == [[50, 5, 1], [8, 30, 0], [2, 0, 13]]
    same, names = top_n_other(CM, NAMES, n=10)
    np.testing.assert_array_equal(same, CM) and names == NAMES


def test_cell_mask():
    y_true, y_pred = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 0, 1])
    assert cell_mask(y_true, y_pred, 0, 1).tolist() == [False, True, False, False, False]
    assert cell_mask(y_true, y_pred, None, 1).tolist() == [False, True, True, False, True]
    assert cell_mask(y_true, y_pred, 1, None).sum() == 2
