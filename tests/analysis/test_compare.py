"""analysis.compare: per-class F1 deltas with paired intervals, fixed and broken images."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.compare import align_runs, compare
from analysis.evalset import evalset_from_arrays, targets
from analysis.metrics import confusion, per_class
from tests.synth import make_arrays


def _pair(seed=0, n=3000, c=5):
    probs, y, cap = make_arrays(n, c, seed=seed, accuracy=0.6)
    meta = pd.DataFrame({"image_id": np.arange(n).astype(str), "seq_id": cap.astype(str)})
    ids = meta["image_id"].to_numpy(dtype=object)
    a = evalset_from_arrays(probs, y, meta=meta, image_ids=ids)
    rng = np.random.default_rng(seed + 1)
    better = probs.copy()  # B fixes 40 % of A's mistakes on class 0 images
    fix = (y == 0) & (probs.argmax(1) != 0) & (rng.random(n) < 0.4)
    better[fix, 0] = better[fix].max(1) + 0.5
    better /= better.sum(1, keepdims=True)
    b = evalset_from_arrays(better, y, meta=meta, image_ids=ids)
    return a, b, fix


def test_deltas_fixed_and_broken():
    a, b, fix = _pair()
    out = compare(a, b, n_resamples=200)
    assert out["n"] == 3000 and out["n_only_a"] == out["n_only_b"] == 0
    assert out["n_fixed"] == fix.sum() and out["n_broken"] == 0
    assert b.image_ids[out["fixed_rows_b"]].tolist() == a.image_ids[fix].tolist()
    assert out["fixed_rows_b"].dtype == np.int64 and len(out["broken_rows_b"]) == 0
    fa = per_class(confusion(*targets(a), 5), a.classes)["f1"]
    fb = per_class(confusion(*targets(b), 5), a.classes)["f1"]
    row = out["per_class"][0]
    assert row["delta"] == pytest.approx(fb[0] - fa[0])
    lo, hi = row["delta_ci"]
    assert 0 < lo <= row["delta"] <= hi  # a real improvement: the paired interval excludes 0
    assert out["macro_f1_delta"] == pytest.approx(out["macro_f1_b"] - out["macro_f1_a"])


def test_identical_runs_have_zero_width_intervals():
    a, _, _ = _pair(seed=3)
    out = compare(a, a, n_resamples=50)
    assert out["n_fixed"] == out["n_broken"] == 0
    assert all(r["delta_ci"] == [0.0, 0.0] for r in out["per_class"])


def test_alignment_by_id_and_class_order():
    a, b, _ = _pair(seed=5, n=600)
    perm = [3, 1, 4, 0, 2]
    order = np.random.default_rng(0).permutation(600)[:500]
    b2 = evalset_from_arrays(b.probs[order][:, perm], b.primary[order],
                             classes=[b.classes[k] for k in perm],
                             meta=b.meta.iloc[order].reset_index(drop=True),
                             image_ids=b.image_ids[order])
    b2.primary = np.argsort(perm)[b.primary[order]]
    b2.labels = b.labels[order][:, perm]
    ref = compare(a.subset(np.sort(order)), b, n_resamples=0)
    got = compare(a, b2, n_resamples=0)
    assert got["n"] == 500 and got["n_only_a"] == 100
    assert got["per_class"] == ref["per_class"]
    for kind in ("fixed", "broken"):  # the galleries' rows in B are the same images
        assert b2.image_ids[got[f"{kind}_rows_b"]].tolist() == \
            b.image_ids[ref[f"{kind}_rows_b"]].tolist()
    x, y = align_runs(a, b2)
    np.testing.assert_array_equal(x.image_ids, y.image_ids)
    np.testing.assert_array_equal(x.labels, y.labels)


def test_different_classes_are_refused():
    a, _, _ = _pair(n=100)
    other = evalset_from_arrays(a.probs, a.primary, classes=list("vwxyz"))
    with pytest.raises(ValueError, match="different classes and none both can predict"):
        compare(a, other)
