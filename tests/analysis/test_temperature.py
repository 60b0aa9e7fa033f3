"""analysis.temperature: a known temperature is recovered, ECE falls, capture level works."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.temperature import (TemperatureError, apply_temperature, as_logits,
                                  calibration_fit, capture_logits, fit_temperature, softmax_t)


def _sample(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row."""
    return (rng.random((len(probs), 1)) > np.cumsum(probs, axis=1)).sum(axis=1).clip(
        0, probs.shape[1] - 1)


def _data(n: int, seed: int, t_true: float = 2.0, c: int = 10):
    """Labels drawn from softmax(z); the model reports softmax(t_true * z): over-confident."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, c)) + 2.0 * (np.arange(c) == rng.integers(0, c, (n, 1)))
    y = _sample(softmax_t(z, 1.0), rng)
    return softmax_t(t_true * z, 1.0), t_true * z, y


@pytest.mark.parametrize("kind", ["probs", "logits"])
def test_recovers_a_known_temperature_and_lowers_ece(kind):
    probs, logits, y = _data(60_000, 0)
    scores = probs if kind == "probs" else logits
    t = fit_temperature(scores[:30_000], y[:30_000], kind=kind)
    assert t == pytest.approx(2.0, rel=0.05)
    out = calibration_fit(scores[:30_000], y[:30_000], scores[30_000:], y[30_000:],
                          classes=[f"c{i}" for i in range(10)], kind=kind)
    assert out["temperature"] == pytest.approx(t)
    assert out["ece_after"] < out["ece_before"] / 2
    assert len(out["per_class"]) == 10
    assert np.mean([r["ece_after"] < r["ece_before"] for r in out["per_class"]]) >= 0.8


def test_apply_keeps_argmax_and_matches_definition():
    probs, logits, _ = _data(500, 1)
    cal = apply_temperature(probs, 2.0)
    assert np.array_equal(cal.argmax(axis=1), probs.argmax(axis=1))
    expected = np.exp(np.log(probs) / 2.0)
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(cal, expected, rtol=1e-4, atol=1e-6)
    assert np.allclose(cal.sum(axis=1), 1, atol=1e-5)


def test_capture_level_averages_frame_logits():
    logits = np.array([[0.0, 2.0], [2.0, 0.0], [1.0, 1.0]], np.float32)
    mean, first = capture_logits(logits, np.array(["a", "a", "b"]))
    np.testing.assert_allclose(mean, [[1.0, 1.0], [1.0, 1.0]])
    assert first.tolist() == [0, 2]
    probs, _, y = _data(20_000, 2)
    caps = np.repeat(np.arange(10_000), 2)
    out = calibration_fit(probs[:10_000], y[:10_000], probs[10_000:], y[10_000:],
                          classes=[f"c{i}" for i in range(10)], eval_captures=caps[:10_000])
    assert out["capture_level"]["n"] == 5000
    assert np.isfinite(out["capture_level"]["ece_after"])


def test_bad_inputs():
    with pytest.raises(TemperatureError, match="kind must be"):
        as_logits(np.ones((2, 2)), kind="odds")
    with pytest.raises(TemperatureError, match="row 1: label 5"):
        fit_temperature(np.full((2, 2), 0.5), np.array([0, 5]))
    with pytest.raises(TemperatureError, match="3 score rows, 2 labels"):
        fit_temperature(np.full((3, 2), 0.5), np.array([0, 1]))
