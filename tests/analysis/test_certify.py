"""analysis.certify: certified thresholds keep their promise on fresh data, by simulation."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.certify import (CertifyError, accept_mask, captures_needed, certify,
                              precision_lower_bound, thresholds_array)

N_BINS = 1024


def _draw(rng: np.random.Generator, n_captures: int):
    """Two classes; a capture-level score s ~ U(0, 1) is calibrated at capture level
    (truth 1 with probability s), its 1-3 frames share the truth and score s plus noise.
    Precision of class 1 at threshold t is about (1 + t) / 2: 0.95 near t = 0.9."""
    s = rng.random(n_captures)
    y_cap = (rng.random(n_captures) < s).astype(np.int64)
    sizes = rng.integers(1, 4, n_captures)
    cap = np.repeat(np.arange(n_captures), sizes)
    p1 = np.clip(s[cap] + rng.normal(0, 0.03, len(cap)), 0.0005, 0.9995)
    return np.c_[1 - p1, p1], y_cap[cap], cap


def _true_precision_curve(seed: int = 99, n_captures: int = 2_000_000) -> np.ndarray:
    """(2, N_BINS): precision of each class's decisions accepted at threshold b / N_BINS,
    from one very large fresh draw (the generator's truth, up to ~1e-3)."""
    probs, y, _ = _draw(np.random.default_rng(seed), n_captures)
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    b = np.minimum((conf * N_BINS).astype(np.int64), N_BINS - 1)
    key = pred * N_BINS + b
    acc = np.bincount(key, minlength=2 * N_BINS).reshape(2, N_BINS)
    hit = np.bincount(key, weights=y == pred, minlength=2 * N_BINS).reshape(2, N_BINS)
    acc_c = np.cumsum(acc[:, ::-1], axis=1)[:, ::-1]
    hit_c = np.cumsum(hit[:, ::-1], axis=1)[:, ::-1]
    return np.divide(hit_c, acc_c, out=np.ones_like(hit_c), where=acc_c > 0)


def test_certified_thresholds_hold_on_fresh_draws_point_estimates_do_not():
    target = 0.95
    truth = _true_precision_curve()
    rng = np.random.default_rng(0)
    ok_cert, ok_point, n_cert = [], [], 0
    for _ in range(200):
        probs, y, cap = _draw(rng, 20000)
        out = certify(probs, y, captures=cap, classes=["a", "b"], target=target,
                      n_bins=N_BINS)
        for j, t_cert, t_point in zip(range(2), thresholds_array(out),
                                      thresholds_array(out, point=True)):
            if not np.isnan(t_cert):
                n_cert += 1
                ok_cert.append(truth[j, int(round(t_cert * N_BINS))] >= target)
            else:  # nothing automated: no wrong promise
                ok_cert.append(True)
            ok_point.append(truth[j, int(round(t_point * N_BINS))] >= target)
    assert n_cert >= 0.8 * 400  # the test is not vacuous
    assert np.mean(ok_cert) >= 0.93
    assert np.mean(ok_point) <= np.mean(ok_cert) - 0.2  # point estimates fail visibly more


def test_capture_level_decisions_and_coverage():
    rng = np.random.default_rng(1)
    probs, y, cap = _draw(rng, 20000)
    out = certify(probs, y, captures=cap, classes=["a", "b"], level="capture", n_bins=N_BINS)
    assert out["level"] == "capture" and out["n"] == 20000
    img = certify(probs, y, captures=cap, classes=["a", "b"], n_bins=N_BINS)
    for res in (out, img):
        for r in res["per_class"]:
            assert r["threshold"] >= r["point_threshold"]
            assert r["coverage"] <= r["point_coverage"]
            assert r["precision_lower_bound"] >= 0.95
        assert res["coverage"] <= res["coverage_point"]
    # the reported coverage is what accept_mask accepts
    acc = accept_mask(probs, thresholds_array(img))
    assert acc.sum() == sum(r["n_accepted"] for r in img["per_class"])


def test_frames_of_a_capture_count_once():
    # 40 captures of 3 identical correct frames: 120 images, but only 40 independent ones,
    # fewer than the 72 a perfect record needs at 95 % (each sequence at 97.5 %).
    probs = np.tile([[0.01, 0.99]], (120, 1))
    y = np.ones(120, np.int64)
    cap = np.repeat(np.arange(40), 3)
    clustered = certify(probs, y, captures=cap, classes=["a", "b"])["per_class"][1]
    alone = certify(probs, y, captures=None, classes=["a", "b"])["per_class"][1]
    assert clustered["threshold"] is None and clustered["captures_needed"] == 72
    assert alone["threshold"] is not None
    assert alone["precision_lower_bound"] == pytest.approx(0.025 ** (1 / 120))


def test_bound_and_needed_captures_known_values():
    from scipy.stats import beta

    assert precision_lower_bound(37, 40) == pytest.approx(beta.ppf(0.05, 37, 4))
    assert precision_lower_bound(0, 10) == 0
    need = captures_needed(0.99, target=0.95)[0]
    assert precision_lower_bound(0.99 * need, need) >= 0.95
    assert precision_lower_bound(0.99 * (need - 1), need - 1) < 0.95


def test_bad_inputs_name_the_problem():
    with pytest.raises(CertifyError, match="probs have shape"):
        certify(np.ones((3, 2)) / 2, np.zeros(3, int), captures=None, classes=["a"])
    with pytest.raises(CertifyError, match="level must be"):
        certify(np.ones((3, 2)) / 2, np.zeros(3, int), captures=None, classes=["a", "b"],
                level="site")
    with pytest.raises(CertifyError, match="label rows"):
        certify(np.ones((3, 2)) / 2, np.zeros(2, int), captures=None, classes=["a", "b"])
