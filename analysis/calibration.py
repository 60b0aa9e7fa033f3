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

from analysis.evalset import EvalSet, Policy, targets

_ROW_CHUNK = 1_000_000  # rows per step of the per-class pass (bounds the (rows, C) temporaries)


def _bin_index(conf: np.ndarray, n_bins: int) -> np.ndarray:
    return np.minimum((conf * n_bins).astype(np.int64), n_bins - 1)


def _top_label(ev: EvalSet, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = targets(ev, policy=policy)
    return ev.pred_prob.astype(np.float64), y_true == y_pred


def reliability(ev: EvalSet, *, n_bins: int = 15, policy: Policy = "set") -> pd.DataFrame:
    """Reliability-diagram bins of the top prediction's confidence.

    Parameters
    ----------
    ev : EvalSet
    n_bins : int
        Equal-width bins on [0, 1].
    policy : {"set", "primary"}
        Decides whether a prediction is correct.

    Returns
    -------
    DataFrame
        One row per bin: ``lo, hi, count, confidence`` (mean), ``accuracy``, ``gap``
        (accuracy - confidence; negative = over-confident). Empty bins have NaN means.
    """
    conf, correct = _top_label(ev, policy)
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


def ece(ev: EvalSet, *, n_bins: int = 15, policy: Policy = "set") -> float:
    """Expected calibration error of the top prediction (NaN for an empty set).

    Examples
    --------
    Ten images at confidence 0.9 of which 9 are right are perfectly calibrated: ECE 0.
    """
    conf, correct = _top_label(ev, policy)
    b = _bin_index(conf, n_bins)
    return float(_ece_from_bins(np.bincount(b, minlength=n_bins),
                                np.bincount(b, weights=conf, minlength=n_bins),
                                np.bincount(b, weights=correct, minlength=n_bins)))


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
    count, conf_sum, hit_sum = (s.reshape(c, n_bins) for s in sums)
    support = hit_sum.sum(axis=1).astype(np.int64)
    return pd.DataFrame({"class": ev.classes, "ece": _ece_from_bins(count, conf_sum, hit_sum),
                         "support": support})
