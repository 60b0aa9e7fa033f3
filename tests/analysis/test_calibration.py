"""analysis.calibration: reliability bins and ECE with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.calibration import ece, per_class_ece, reliability
from analysis.evalset import evalset_from_arrays
from tests.synth import make_arrays


def _calibrated(n: int, seed: int):
    """Binary-ish problem whose confidence equals the probability of being right."""
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.5, 1.0, n)
    right = rng.random(n) < conf
    probs = np.stack([conf, 1 - conf], axis=1).astype(np.float32)
    return evalset_from_arrays(probs, np.where(right, 0, 1))


def test_perfectly_calibrated_groups_have_zero_ece():
    # 10 images at 0.9 of which 9 right, 10 at 0.6 of which 6 right.
    probs = np.array([[0.9, 0.1]] * 10 + [[0.6, 0.4]] * 10, np.float32)
    y = np.array([0] * 9 + [1] + [0] * 6 + [1] * 4)
    ev = evalset_from_arrays(probs, y)
    assert ece(ev, n_bins=10) == pytest.approx(0.0, abs=1e-6)
    bins = reliability(ev, n_bins=10)
    assert bins["count"].sum() == 20 and len(bins) == 10
    row = bins[bins["count"] == 10]
    assert row["accuracy"].round(6).tolist() == [0.6, 0.9]


def test_overconfident_model_has_the_expected_ece():
    probs = np.array([[0.95, 0.05]] * 100, np.float32)
    y = np.array([0] * 60 + [1] * 40)
    ev = evalset_from_arrays(probs, y)
    assert ece(ev) == pytest.approx(0.35, abs=1e-6)
    b = reliability(ev)
    assert b.loc[b["count"] > 0, "gap"].iloc[0] == pytest.approx(-0.35, abs=1e-6)


def test_sampled_calibrated_model_has_small_ece():
    calibrated = _calibrated(20000, 0)
    assert ece(calibrated) < 0.02
    # Pushing every confidence towards 1 keeps the predictions but makes them over-confident.
    sharp_conf = 1 - (1 - calibrated.probs[:, 0]) ** 5
    sharp = evalset_from_arrays(np.stack([sharp_conf, 1 - sharp_conf], axis=1),
                                calibrated.primary)
    assert ece(sharp) > 0.1


def test_per_class_ece_matches_a_loop():
    probs, y, _ = make_arrays(3000, 4, seed=2)
    ev = evalset_from_arrays(probs, y)
    got = per_class_ece(ev, n_bins=10)
    for c in range(4):
        p, pos = probs[:, c].astype(np.float64), (y == c)
        b = np.minimum((p * 10).astype(int), 9)
        ref = sum(abs(pos[b == k].sum() - p[b == k].sum()) for k in range(10)) / len(p)
        assert got["ece"][c] == pytest.approx(ref, abs=1e-9)
        assert got["support"][c] == pos.sum()
    assert per_class_ece(ev, n_bins=10, policy="primary")["ece"].tolist() == pytest.approx(
        got["ece"].tolist())
    with pytest.raises(ValueError, match="policy"):
        per_class_ece(ev, policy="x")


@pytest.mark.parametrize("temperature", [0.4, 1.0, 2.5])
def test_temperature_bins_equal_those_of_the_calibrated_set(temperature):
    """``temperature=`` bins softmax(log p / T) block by block: the same bins and ECE as the
    calibrated copy of the probabilities (analysis.decision.calibrated)."""
    from analysis.decision import calibrated

    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.full(5, 0.3), 3000).astype(np.float32)
    ev = evalset_from_arrays(probs, rng.integers(0, 5, 3000))
    ref = calibrated(ev, temperature)
    got = reliability(ev, n_bins=12, temperature=temperature)
    np.testing.assert_allclose(got.fillna(-1).to_numpy(), reliability(ref, n_bins=12).fillna(-1)
                               .to_numpy(), atol=1e-5)
    assert ece(ev, temperature=temperature) == pytest.approx(ece(ref), abs=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        ece(ev, temperature=0.0)
