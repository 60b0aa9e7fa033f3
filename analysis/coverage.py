"""Automation coverage: how many images a confidence threshold lets the model label alone.

The point of the original project (Norouzzadeh et al. 2018, PNAS): accept the model's label
when its confidence reaches a threshold, send the rest to people. For every threshold:
coverage (share auto-accepted) and the accuracy of the accepted images; per class, the lowest
threshold whose accepted images reach a target precision, e.g. 95 % or 96.6 %, the accuracy
of the volunteer crowd reported in that paper. An image is accepted when the confidence of its
arg-max is >= the threshold; correctness follows the scoring policy.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.evalset import EvalSet, Policy, targets

#: Accuracy of the Snapshot Serengeti volunteer consensus (Norouzzadeh et al. 2018).
VOLUNTEER_ACCURACY = 0.966
#: Target precisions of the automation summary (the report's ``automation`` block): 95 % and
#: the volunteers' 96.6 %.
TARGET_PRECISIONS = (0.95, VOLUNTEER_ACCURACY)
DEFAULT_THRESHOLDS = np.round(np.linspace(0.0, 1.0, 101), 2)


def _confidence(ev: EvalSet, policy: Policy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y_true, y_pred = targets(ev, policy=policy)
    return ev.pred_prob, y_pred, y_true == y_pred


def coverage_curve(ev: EvalSet, *, policy: Policy = "set",
                   thresholds: Sequence[float] | np.ndarray | None = None) -> pd.DataFrame:
    """Coverage and accuracy of auto-accepted images for each threshold.

    Parameters
    ----------
    ev : EvalSet
    policy : {"set", "primary"}
    thresholds : array-like of float, optional
        Default 0.00, 0.01, ..., 1.00.

    Returns
    -------
    DataFrame
        ``threshold, coverage, accuracy, n_accepted, n_left``; ``accuracy`` is NaN where
        nothing is accepted.
    """
    conf, _, correct = _confidence(ev, policy)
    t = np.asarray(DEFAULT_THRESHOLDS if thresholds is None else thresholds, dtype=np.float64)
    order = np.argsort(conf, kind="stable")
    conf_sorted = conf[order].astype(np.float64)
    hits_from_top = np.r_[np.cumsum(correct[order][::-1])[::-1], 0]  # hits with index >= i
    first = np.searchsorted(conf_sorted, t, side="left")  # first index with conf >= t
    accepted = len(conf) - first
    hits = hits_from_top[first]
    n = max(len(conf), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(accepted > 0, hits / np.maximum(accepted, 1), np.nan)
    return pd.DataFrame({"threshold": t, "coverage": accepted / n, "accuracy": acc,
                         "n_accepted": accepted, "n_left": len(conf) - accepted})


def class_thresholds(ev: EvalSet, *, target_precision: float = 0.95,
                     policy: Policy = "set") -> pd.DataFrame:
    """Per predicted class, the lowest threshold whose accepted images reach a precision.

    Among the images predicted as class c, accepting those with confidence >= t has precision
    ``correct / accepted``; the chosen t is the one that accepts the most images while the
    precision stays >= ``target_precision`` (ties in confidence are accepted together).

    Parameters
    ----------
    ev : EvalSet
    target_precision : float
    policy : {"set", "primary"}

    Returns
    -------
    DataFrame
        One row per class: ``class, threshold`` (NaN: unreachable), ``precision`` (of the
        accepted), ``n_predicted, n_accepted, n_left`` (predicted as c but not accepted),
        ``coverage`` (n_accepted / n_predicted). ``df.attrs`` holds the totals:
        ``n, n_accepted, n_left, accuracy_accepted``.
    """
    conf, y_pred, correct = _confidence(ev, policy)
    c = ev.n_classes
    order = np.lexsort((-conf, y_pred))  # by class, most confident first
    cls, cf, ok = y_pred[order], conf[order], correct[order]
    starts = np.searchsorted(cls, np.arange(c))
    ends = np.searchsorted(cls, np.arange(c), side="right")
    n_pred = ends - starts
    rank = np.arange(len(cls)) - starts[cls] + 1                       # accepted so far
    cum_ok = np.cumsum(ok) - np.r_[0, np.cumsum(ok)][starts[cls]]      # correct so far
    # A threshold can only cut after the last image of a tie group within the class.
    boundary = np.r_[(cls[1:] != cls[:-1]) | (cf[1:] != cf[:-1]), True]
    good = boundary & (cum_ok >= target_precision * rank - 1e-12)
    best_rank = np.zeros(c, np.int64)
    np.maximum.at(best_rank, cls[good], rank[good])
    best_pos = starts + best_rank - 1
    reach = best_rank > 0
    threshold = np.where(reach, cf[np.maximum(best_pos, 0)] if len(cf) else 0.0, np.nan)
    n_ok = np.where(reach, cum_ok[np.maximum(best_pos, 0)] if len(cf) else 0, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(reach, n_ok / np.maximum(best_rank, 1), np.nan)
        coverage = np.where(n_pred > 0, best_rank / np.maximum(n_pred, 1), np.nan)
    table = pd.DataFrame({"class": ev.classes, "threshold": threshold, "precision": precision,
                          "n_predicted": n_pred, "n_accepted": best_rank,
                          "n_left": n_pred - best_rank, "coverage": coverage})
    accepted = int(best_rank.sum())
    table.attrs = {"target_precision": float(target_precision), "n": int(len(ev)),
                   "n_accepted": accepted, "n_left": int(len(ev) - accepted),
                   "accuracy_accepted": float(n_ok.sum() / accepted) if accepted else None}
    return table


def automation_summary(ev: EvalSet, *, targets_: Sequence[float] = TARGET_PRECISIONS,
                       policy: Policy = "set") -> list[dict]:
    """For each target precision: images auto-labelled with per-class thresholds, images left
    for people, and the thresholds of the classes the model predicts.

    Parameters
    ----------
    ev : EvalSet
    targets_ : sequence of float
        Target precisions; default 95 % and the volunteers' 96.6 % (:data:`TARGET_PRECISIONS`).
    policy : {"set", "primary"}

    Returns
    -------
    list of dict
        One per target: the totals of :func:`class_thresholds` (``target_precision, n,
        n_accepted, n_left, accuracy_accepted``) plus ``per_class``, its rows (as records) for
        the classes predicted at least once. The report's ``automation`` block.

    Examples
    --------
    >>> from analysis.evalset import evalset_from_arrays
    >>> ev = evalset_from_arrays(np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]]),
    ...                          np.array([0, 1, 1]))
    >>> [(a["n_accepted"], a["n_left"]) for a in automation_summary(ev)]
    [(2, 1), (2, 1)]
    """
    out = []
    for target in targets_:
        table = class_thresholds(ev, target_precision=target, policy=policy)
        out.append({**table.attrs,
                    "per_class": table[table["n_predicted"] > 0].to_dict("records")})
    return out
