"""Calibration: reliability-diagram bins and expected calibration error (ECE).

Top-label calibration (Guo et al. 2017): the confidence of the arg-max against whether it is
correct under the scoring policy. Per class, one-vs-rest ("classwise", Kull et al. 2019): the
probability given to class c against whether c is in the image's label set (``set``) or is its
first annotation (``primary``), over every image. Bins are equal-width on [0, 1]; the last bin
includes 1.0. ECE = sum over bins of (bin count / n) * |accuracy - mean confidence|.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.evalset import EvalSet, Policy, memoised, targets

_ROW_CHUNK = 1_000_000  # rows per step of the per-class pass (bounds the (rows, C) temporaries)


def _bin_index(conf: np.ndarray, n_bins: int) -> np.ndarray:
    return np.minimum((conf * n_bins).astype(np.int64), n_bins - 1)


def top_probability(probs: np.ndarray, temperature: float) -> np.ndarray:
    """The largest probability of each row of ``softmax(log p / temperature)`` (float64),
    in blocks of rows: the calibrated confidence without a calibrated (n, C) array
    (``analysis.temperature`` scales whole rows).

    Examples
    --------
    >>> np.round(top_probability(np.array([[0.8, 0.2]]), 2.0), 3).tolist()
    [0.667]
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    out = np.empty(len(probs), np.float64)
    inv = np.float32(1.0 / temperature)
    for lo in range(0, len(probs), _ROW_CHUNK // 4):
        z = np.log(np.maximum(probs[lo:lo + _ROW_CHUNK // 4].astype(np.float32),
                              np.float32(1e-12))) * inv  # log p clipped as temperature's
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        out[lo:lo + len(z)] = 1.0 / z.sum(axis=1, dtype=np.float64)
    return out


def _top_label(ev: EvalSet, policy: Policy, temperature: float | None
               ) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = targets(ev, policy=policy)
    conf = (ev.pred_prob.astype(np.float64) if temperature is None
            else top_probability(ev.probs, temperature))
    return conf, y_true == y_pred


@memoised
def reliability(ev: EvalSet, *, n_bins: int = 15, policy: Policy = "set",
                temperature: float | None = None) -> pd.DataFrame:
    """Reliability-diagram bins of the top prediction's confidence.

    Parameters
    ----------
    ev : EvalSet
    n_bins : int
        Equal-width bins on [0, 1].
    policy : {"set", "primary"}
        Decides whether a prediction is correct.
    temperature : float, optional
        Bin the confidence of ``softmax(log p / T)`` instead (temperature scaling keeps the
        arg-max), computed block by block without a calibrated copy of the probabilities.

    Returns
    -------
    DataFrame
        One row per bin: ``lo, hi, count, confidence`` (mean), ``accuracy``, ``gap``
        (accuracy - confidence; negative = over-confident). Empty bins have NaN means.
    """
    conf, correct = _top_label(ev, policy, temperature)
    b = _bin_index(conf, n_bins)
    count = np.bincount(b, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(b, weights=conf, minlength=n_bins) / count
        acc = np.bincount(b, weights=correct, minlength=n_bins) / count
    edges = np.linspace(0, 1, n_bins + 1)
    return pd.DataFrame({"lo": edges[:-1], "hi": edges[1:], "count": count,
                         "confidence": mean_conf, "accuracy": acc, "gap": acc - mean_conf})


def _ece_from_bins(count: np.ndarray, conf_sum: np.ndarray, hit_sum: np.ndarray) -> np.ndarray:
    """ECE over the last axis of per-bin sums."""
    n = count.sum(axis=-1)
    gap = np.abs(hit_sum - conf_sum).sum(axis=-1)  # sum_b |hits_b - conf_b| = sum_b n_b |acc-conf|
    return np.divide(gap, n, out=np.full(np.shape(n), np.nan, dtype=np.float64), where=n > 0)


def top_label_sums(ev: EvalSet, *, n_bins: int = 15, policy: Policy = "set",
                   temperature: float | None = None) -> np.ndarray:
    """Per-bin ``(count, sum of confidence, sum of correct)`` of the top prediction, shape
    (3, n_bins): sums over rows, so blocks of rows add up (:func:`ece_from_sums`)."""
    conf, correct = _top_label(ev, policy, temperature)
    b = _bin_index(conf, n_bins)
    return np.stack([np.bincount(b, minlength=n_bins),
                     np.bincount(b, weights=conf, minlength=n_bins),
                     np.bincount(b, weights=correct, minlength=n_bins)]).astype(np.float64)


def ece_from_sums(sums: np.ndarray) -> np.ndarray:
    """ECE from per-bin sums ``(count, confidence, correct)`` on the first axis (bins last)."""
    return _ece_from_bins(sums[0], sums[1], sums[2])


@memoised
def ece(ev: EvalSet, *, n_bins: int = 15, policy: Policy = "set",
        temperature: float | None = None) -> float:
    """Expected calibration error of the top prediction (NaN for an empty set), after
    ``temperature`` when given (as :func:`reliability`).

    Examples
    --------
    Ten images at confidence 0.9 of which 9 are right are perfectly calibrated: ECE 0.
    """
    return float(ece_from_sums(top_label_sums(ev, n_bins=n_bins, policy=policy,
                                              temperature=temperature)))


def per_class_ece(ev: EvalSet, *, n_bins: int = 15, policy: Policy = "set") -> pd.DataFrame:
    """One-vs-rest ECE of every class over all images.

    Parameters
    ----------
    ev : EvalSet
    n_bins : int
    policy : {"set", "primary"}
        ``set``: the outcome for class c is "c in the label set"; ``primary``: "c is the first
        annotation".

    Returns
    -------
    DataFrame
        ``class, ece, support`` (images whose outcome is positive), in class order.
    """
    count, conf_sum, hit_sum = class_sums(ev, n_bins=n_bins, policy=policy)
    support = hit_sum.sum(axis=1).astype(np.int64)
    return pd.DataFrame({"class": ev.classes, "ece": _ece_from_bins(count, conf_sum, hit_sum),
                         "support": support})


def class_sums(ev: EvalSet, *, n_bins: int = 15, policy: Policy = "set") -> np.ndarray:
    """Per class and bin ``(count, sum of probability, sum of positives)`` of the one-vs-rest
    calibration, shape (3, C, n_bins): sums over rows (:func:`per_class_ece`)."""
    if policy not in ("set", "primary"):
        raise ValueError(f"policy must be 'set' or 'primary', got {policy!r}")
    c = ev.n_classes
    sums = np.zeros((3, c * n_bins))
    cols = np.arange(c) * n_bins
    for lo in range(0, len(ev), _ROW_CHUNK):
        p = ev.probs[lo:lo + _ROW_CHUNK]
        if policy == "primary":
            pos = np.zeros(p.shape, bool)
            pos[np.arange(len(p)), ev.primary[lo:lo + _ROW_CHUNK]] = True
        else:
            pos = ev.labels[lo:lo + _ROW_CHUNK]
        flat = (_bin_index(p, n_bins) + cols).reshape(-1)
        sums[0] += np.bincount(flat, minlength=c * n_bins)
        sums[1] += np.bincount(flat, weights=p.reshape(-1), minlength=c * n_bins)
        sums[2] += np.bincount(flat, weights=pos.reshape(-1), minlength=c * n_bins)
    return sums.reshape(3, c, n_bins)
