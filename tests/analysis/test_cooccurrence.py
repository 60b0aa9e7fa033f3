"""Known-answer tests for analysis.cooccurrence."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.cooccurrence import PAIR_COLUMNS, cooccurrence, pair_stats, rank_pairs
from analysis.evalset import evalset_from_arrays, targets
from tests.synth import softmax


def _random_ev(n=500, c=6, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.zeros((n, c), bool)
    labels[np.arange(n), rng.integers(0, c, n)] = True
    extra = rng.random(n) < 0.3
    labels[np.flatnonzero(extra), rng.integers(0, c, int(extra.sum()))] = True
    probs = softmax(rng.normal(0, 1.5, (n, c)) + 2 * labels)
    ids = np.array([f"i{i}" for i in range(n)], dtype=object)
    seq = np.array([f"s{i // 3}" for i in rng.permutation(n)], dtype=object)
    meta = pd.DataFrame({"image_id": ids, "seq_id": seq})
    return evalset_from_arrays(probs, labels, meta=meta, image_ids=ids)


@pytest.mark.parametrize("seed", [0, 1])
def test_cooccurrence_by_image_and_capture_brute_force(seed):
    ev = _random_ev(seed=seed)
    expect = np.array([[np.sum(ev.labels[:, a] & ev.labels[:, b]) for b in range(6)]
                       for a in range(6)])
    np.testing.assert_array_equal(cooccurrence(ev, by="image"), expect)
    caps = {}
    for s, row in zip(ev.meta["seq_id"], ev.labels):
        caps[s] = caps.get(s, np.zeros(6, bool)) | row
    cap = np.array(list(caps.values()))
    expect_cap = cap.T.astype(int) @ cap.astype(int)
    np.testing.assert_array_equal(cooccurrence(ev, by="capture"), expect_cap)
    with pytest.raises(ValueError, match="by must be"):
        cooccurrence(ev, by="site")


def _herds(seed=0, n=2000):
    """Classes c0..c5; c3 and c1 share frames (annotated both in 30 % of c3 images), and the
    model then says c1 on most of those; c3 alone is mostly right."""
    rng = np.random.default_rng(seed)
    c = 6
    y = rng.integers(0, c, n)
    labels = np.eye(c, dtype=bool)[y]
    both = (y == 3) & (rng.random(n) < 0.3)
    labels[both, 1] = True
    boost = np.eye(c)[y] * 4
    says_other = both & (rng.random(n) < 0.8)
    boost[says_other] = np.eye(c)[1] * 4
    probs = softmax(rng.normal(0, 1, (n, c)) + boost)
    ids = np.array([f"i{i}" for i in range(n)], dtype=object)
    return evalset_from_arrays(probs, labels, primary=y, image_ids=ids)


@pytest.mark.parametrize("policy", ["set", "primary"])
def test_pair_stats_brute_force(policy):
    ev = _herds()
    got = pair_stats(ev, "c3", "c1", policy=policy)
    a, b = 3, 1
    y_true, y_pred = targets(ev, policy=policy)
    has_a, has_b = ev.labels[:, a], ev.labels[:, b]
    err = y_true != y_pred
    assert got["images_together"] == np.sum(has_a & has_b)
    assert got["a_images"] == has_a.sum()
    assert got["a_error_with_b"] == pytest.approx(err[has_a & has_b].mean())
    assert got["a_error_without_b"] == pytest.approx(err[has_a & ~has_b].mean())
    a_to_b = (ev.primary == a) & (y_pred == b)
    assert got["a_to_b"] == a_to_b.sum()
    assert got["a_to_b_with_b"] == np.sum(a_to_b & has_b)
    assert got["a_to_b_explained"] == pytest.approx(np.sum(a_to_b & has_b) / a_to_b.sum())
    assert set(got) == set(PAIR_COLUMNS)


def test_pair_stats_policies_tell_the_story():
    ev = _herds()
    s = pair_stats(ev, "c3", "c1", policy="set")
    p = pair_stats(ev, "c3", "c1", policy="primary")
    # Under the set policy naming c1 on a c3+c1 image is right; under primary it is an error.
    assert s["a_error_with_b"] < 0.15 < 0.6 < p["a_error_with_b"]
    assert p["a_to_b_explained"] > 0.8
    with pytest.raises(ValueError, match="same class"):
        pair_stats(ev, "c1", "c1")
    with pytest.raises(KeyError, match="unknown class 'zebra'"):
        pair_stats(ev, "zebra", "c1")


def test_rank_pairs_puts_the_planted_pair_first_and_agrees_with_pair_stats():
    ev = _herds(seed=1)
    table = rank_pairs(ev, policy="primary", k=None)
    assert list(table.columns) == PAIR_COLUMNS
    assert (table.iloc[0]["a"], table.iloc[0]["b"]) == ("c3", "c1")
    assert (table["images_together"] >= 1).all()
    for _, row in table.head(3).iterrows():
        single = pair_stats(ev, row["a"], row["b"], policy="primary")
        for key in PAIR_COLUMNS[2:]:
            assert row[key] == pytest.approx(single[key], nan_ok=True), key
    assert len(rank_pairs(ev, k=1)) == 1
    assert len(rank_pairs(ev, k=None, min_together=0)) == 6 * 5
