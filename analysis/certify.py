"""Certified automation: per-class confidence thresholds with a guaranteed precision.

A model's top-1 label is accepted for class c when the image's arg-max is c and its
probability is at least ``threshold[c]``. A *point-estimate* threshold is the lowest one at
which the observed precision of the accepted images reaches the target; on new data of the
same kind it misses the target about half the time. A *certified* threshold is chosen so that
a one-sided lower confidence bound (default 95 %) of that precision reaches the target.

The bound (capture-clustered)
-----------------------------
Frames of one capture share their animal and mostly their prediction, so they are not
independent trials. For the images accepted at a threshold, let capture i contribute k_i
accepted frames of which x_i are correct. Precision is the ratio ``p = sum x / sum k``. Its
variance is largest when frames of a capture are all right or all wrong together; then it is
``p (1 - p) / n_eff`` with Kish's effective sample size ``n_eff = (sum k)**2 / sum k**2``
(at most the number of captures; equal to it when every capture has the same number of
accepted frames). Any weaker within-capture dependence gives a smaller variance, so
``n_eff`` is a worst case. The bound is the Clopper-Pearson lower limit on ``n_eff`` trials
with ``p * n_eff`` successes, ``Beta(alpha; p n_eff, n_eff - p n_eff + 1)``: the
effective-sample-size Clopper-Pearson interval of Korn & Graubard (1998), with their
design-effect estimate replaced by the fully-correlated one, which is defined when no error
is observed (where a bootstrap of captures degenerates to ``[1, 1]`` and would certify any
threshold). Frames of one capture therefore count once when they agree.

Choosing among thresholds without losing the guarantee
------------------------------------------------------
Testing many thresholds and keeping the lowest that passes would over-state the guarantee.
Thresholds are instead tested in fixed sequences, each stopping at its first failure
("fixed-sequence testing", as in Learn-then-Test, Angelopoulos et al. 2021), which keeps the
error rate of a sequence at its level without any correction. The sequences depend only on
the scores and captures, never on the labels. Two run side by side, each at ``alpha / 2``
(Bonferroni), and the looser of their certified thresholds is kept:

- strict to loose, for precision that falls as the threshold loosens: it starts at the
  strictest threshold whose ``n_eff`` would pass with an observed error rate of half the
  allowed one (:func:`captures_needed` at precision ``1 - (1 - target) / 2``), or at all of a
  smaller class's predictions, and takes a step each time ``n_eff`` has grown by ``step``
  (10 %), so one unlucky bin does not end the search (starting at the very strictest
  thresholds would demand a perfect record from the first few dozen captures);
- loose to strict, for a class whose precision is nearly flat: its first test accepts all
  the class's predictions (threshold 0); if it passes, nothing looser exists, and if it fails
  the sequence stops, so it is a single test.

Neither tests a threshold whose ``n_eff`` is below what a perfect record needs
(``log(alpha / 2) / log(target)``, 72 captures at 95 %/95 %). Bounds are reported at the level
they were tested at, ``1 - alpha / 2``.

Scores are binned on ``n_bins`` equal-width bins of [0, 1] (default 4096, finer than float16
resolution near 1); thresholds are bin edges ``b / n_bins``, applied as ``prob >= threshold``.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import special

from analysis.evalset import (EvalSet, aggregate_sequences, argmax_rows, capture_codes,
                              evalset_from_arrays, memoised)

log = logging.getLogger(__name__)

LEVELS = ("image", "capture")


class CertifyError(ValueError):
    """Inputs of the certification do not line up (shapes, class list, options)."""


def precision_lower_bound(successes, trials, *, confidence: float = 0.95) -> np.ndarray:
    """One-sided Clopper-Pearson lower bound, also for non-integer (effective) counts.

    Parameters
    ----------
    successes, trials : array-like of float
        ``0 <= successes <= trials``.
    confidence : float
        One-sided coverage, e.g. 0.95.

    Returns
    -------
    ndarray of float64
        0 where ``successes == 0`` or ``trials == 0``.

    Examples
    --------
    >>> round(float(precision_lower_bound(59, 59)), 4)   # 0.05 ** (1 / 59)
    0.9505
    >>> round(float(precision_lower_bound(8, 10)), 4)
    0.4931
    """
    x = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    x, n = np.broadcast_arrays(x, n)
    out = np.zeros(x.shape)
    ok = (x > 0) & (n > 0)
    out[ok] = special.betaincinv(x[ok], n[ok] - x[ok] + 1, 1 - confidence)
    return out


def captures_needed(precision, *, target: float, confidence: float = 0.95) -> np.ndarray:
    """Effective number of labelled captures at which an observed precision certifies.

    The smallest ``n`` with ``precision_lower_bound(precision * n, n) >= target``: how many
    captures, accepted at the same operating point and with the same observed precision, the
    bound would need. NaN where ``precision <= target`` (more data cannot help; the model
    must improve).

    Examples
    --------
    >>> captures_needed([1.0, 0.99, 0.9], target=0.95).tolist()
    [59.0, 90.0, nan]
    """
    p = np.atleast_1d(np.asarray(precision, dtype=np.float64))
    out = np.full(p.shape, np.nan)
    ok = p > target
    lo = np.ones(int(ok.sum()))
    hi = np.full(lo.shape, 1e12)
    pk = p[ok]
    for _ in range(100):  # bisection in log n, vectorised over classes
        mid = np.sqrt(lo * hi)
        good = precision_lower_bound(pk * mid, mid, confidence=confidence) >= target
        hi = np.where(good, mid, hi)
        lo = np.where(good, lo, mid)
        if np.all(hi / lo < 1 + 1e-9):
            break
    out[ok] = np.ceil(hi - 1e-6)
    return out


def _as_correct(labels: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 1:
        return labels == pred
    if labels.shape != (len(pred), n_classes):
        raise CertifyError(f"certify: labels have shape {labels.shape}, expected "
                           f"({len(pred)}, {n_classes}) or ({len(pred)},)")
    return labels[np.arange(len(pred)), pred]


def _pair_sums(groups: np.ndarray, pred: np.ndarray, key: np.ndarray, size: int) -> np.ndarray:
    """``sum k**2 - sum k`` per (class, bin) key: 2 for each pair of frames
    of one capture with the same arg-max, counted at the lower of their two bins (the pair is
    accepted exactly when both frames are)."""
    out = np.zeros(size)
    if len(groups) < 2:
        return out
    if np.all(groups[1:] >= groups[:-1]):
        g, p, k = groups, pred, key
    else:  # captures must be contiguous for the offset scan
        order = np.argsort(groups, kind="stable")
        g, p, k = groups[order], pred[order], key[order]
    for d in range(1, len(g)):
        same = g[d:] == g[:-d]
        if not same.any():
            break
        both = np.flatnonzero(same & (p[d:] == p[:-d]))
        # same class => same row of the key grid, so min(key) is the lower bin of the pair
        out += 2 * np.bincount(np.minimum(k[d:][both], k[:-d][both]), minlength=size)
    return out


def _first_failure_choice(grid: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Per row, the last grid column before the first failing grid column (-1: none)."""
    c, b = grid.shape
    fail = grid & ~ok
    first_fail = np.where(fail.any(axis=1), fail.argmax(axis=1), b)
    cand = grid & ok & (np.arange(b)[None, :] < first_fail[:, None])
    return np.where(cand.any(axis=1), b - 1 - cand[:, ::-1].argmax(axis=1), -1)


def _grid_points(n_eff: np.ndarray, start: np.ndarray, step: float) -> np.ndarray:
    """Columns where the running maximum of ``n_eff`` first reaches ``start * step**j``,
    plus the last column when it reaches ``start`` at all (labels play no part)."""
    run = np.maximum.accumulate(n_eff, axis=1)
    s = np.asarray(start, dtype=np.float64)[:, None] * (1 - 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        lev = np.where(run >= s, np.floor(np.log(run / s) / np.log(step) + 1e-9), -1)
    grid = np.zeros(n_eff.shape, bool)
    grid[:, 0] = lev[:, 0] >= 0
    grid[:, 1:] = lev[:, 1:] > lev[:, :-1]
    grid[run[:, -1] >= s[:, 0], -1] = True
    return grid


def _sequence_choice(n_eff: np.ndarray, lower: np.ndarray, *, n_start: np.ndarray,
                     n_min: float, step: float, target: float) -> np.ndarray:
    """Column (strict-to-loose order) of the certified bin per class, -1 when none.

    Two fixed sequences, each run at half the error rate (``lower`` must be computed at
    ``1 - alpha / 2``): strict to loose from ``n_start``, and loose to strict, whose first
    test (all the class's predictions) is the only one that can matter; the looser wins.
    """
    ok = lower >= target
    down = _first_failure_choice(_grid_points(n_eff, n_start, step), ok)
    # Loose to strict, the first test is the loosest threshold (all of the class's
    # predictions); a pass certifies it, and no later test can certify anything looser.
    b = n_eff.shape[1]
    up = np.where(ok[:, -1] & (n_eff[:, -1] >= n_min * (1 - 1e-9)), b - 1, -1)
    return np.maximum(down, up)


def certify(probs: np.ndarray, labels: np.ndarray, *, captures: np.ndarray | None,
            classes: list[str], target: float = 0.95, confidence: float = 0.95,
            level: str = "image", n_bins: int = 4096, step: float = 1.1) -> dict:
    """Per-class certified and point-estimate thresholds for automatic labelling.

    Parameters
    ----------
    probs : ndarray, shape (n, C)
        Class probabilities (calibrated or not), columns in ``classes`` order.
    labels : ndarray, shape (n,) of int or (n, C) of bool
        True class per image, or label sets (a decision for c is right when c is in the set).
    captures : ndarray, shape (n,), or None
        Capture (``seq_id``) per image; None = every image is its own capture.
    classes : list of str, length C
    target : float
        Precision to certify, e.g. 0.95.
    confidence : float
        One-sided confidence of the lower bound.
    level : {"image", "capture"}
        ``capture``: one decision per capture from the mean of its frames' probabilities,
        scored against the union of the frames' labels (captures are then independent).
    n_bins : int
        Score bins; thresholds are multiples of ``1 / n_bins``.
    step : float
        Growth of the effective sample size between tested thresholds (> 1).

    Returns
    -------
    dict
        ``target_precision``, ``confidence``, ``level``, ``n`` (decisions), ``coverage``
        (share of all decisions accepted with the certified thresholds), ``coverage_point``
        (with point-estimate thresholds), ``uncertifiable`` (class names) and ``per_class``:
        one row per class in class order, ``{class, threshold (None when it cannot be
        certified), precision_lower_bound, precision, coverage, n_accepted, n_predicted,
        point_threshold, point_coverage, point_precision_lower_bound, captures_needed}``.
        ``coverage`` is the share of the class's predictions (arg-max = class) accepted.
        For a class that cannot be certified, ``precision_lower_bound`` and ``precision`` are
        taken at its most favourable tested threshold, and ``captures_needed`` estimates how
        many accepted labelled captures at that observed precision the bound would need
        (:func:`captures_needed`; None when the observed precision is not above the target).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 4000)
    >>> p1 = np.clip(np.where(y == 1, 0.75, 0.25) + rng.normal(0, 0.15, 4000), 0, 1)
    >>> out = certify(np.c_[1 - p1, p1], y, captures=None, classes=["a", "b"], target=0.95)
    >>> row = out["per_class"][1]
    >>> row["threshold"] > row["point_threshold"], row["precision_lower_bound"] >= 0.95
    (True, True)
    """
    if level not in LEVELS:
        raise CertifyError(f"certify: level must be one of {LEVELS}, got {level!r}")
    if not 0 < target < 1 or not 0 < confidence < 1 or step <= 1:
        raise CertifyError(f"certify: need 0 < target < 1, 0 < confidence < 1, step > 1; got "
                           f"target={target!r}, confidence={confidence!r}, step={step!r}")
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] != len(classes):
        raise CertifyError(f"certify: probs have shape {probs.shape}, expected (n, "
                           f"{len(classes)}) for {len(classes)} classes")
    n, c = probs.shape
    if len(labels) != n or (captures is not None and len(captures) != n):
        raise CertifyError(f"certify: {n} probability rows but {len(labels)} label rows"
                           + ("" if captures is None else f" and {len(captures)} captures"))
    if level == "capture":
        labels = np.asarray(labels)
        ids = np.arange(n)
        meta = pd.DataFrame({"image_id": ids, "seq_id": ids if captures is None
                             else np.asarray(captures)})
        agg = aggregate_sequences(evalset_from_arrays(probs, labels, classes=classes,
                                                      meta=meta, image_ids=ids), how="mean")
        probs, labels, captures, n = agg.probs, agg.labels, None, len(agg)
    conf = np.empty(n, probs.dtype)
    pred = argmax_rows(probs, max_out=conf)
    correct = _as_correct(labels, pred, c)
    size = c * n_bins
    key = pred * n_bins + np.minimum((conf.astype(np.float64) * n_bins).astype(np.int64),
                                     n_bins - 1)
    acc = np.bincount(key, minlength=size).astype(np.float64)
    hit = np.bincount(key, weights=correct, minlength=size)
    sq = acc.copy()
    if captures is not None:
        groups = np.asarray(captures)
        if groups.dtype.kind not in "iu":
            groups = pd.factorize(pd.Series(groups), use_na_sentinel=False)[0]
        sq += _pair_sums(groups, pred, key, size)
    # Strict-to-loose order: column j is bin n_bins-1-j; cumulative sums = accepted at edge.
    k_acc, k_hit, k_sq = (np.cumsum(a.reshape(c, n_bins)[:, ::-1], axis=1)
                          for a in (acc, hit, sq))
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eff = np.where(k_sq > 0, k_acc ** 2 / k_sq, 0.0)
        prec = np.where(k_acc > 0, k_hit / k_acc, 0.0)
    lower = np.zeros_like(n_eff)
    alpha = 1 - confidence
    half = 1 - alpha / 2  # each of the two fixed sequences runs at alpha / 2
    n_min = np.log(alpha / 2) / np.log(target)
    # Only bins where n_eff can pass are evaluated (the beta quantile is the costly part).
    live = (n_eff >= n_min * (1 - 1e-9)) & (prec > target)
    lower[live] = precision_lower_bound(prec[live] * n_eff[live], n_eff[live],
                                        confidence=half)
    # The sequence starts where half the allowed error rate would pass (or, for a class with
    # fewer captures, at all its predictions), never below what a perfect record needs.
    n_half = captures_needed(1 - (1 - target) / 2, target=target, confidence=half)[0]
    n_start = np.maximum(np.minimum(n_half, n_eff.max(axis=1)), n_min)
    chosen = _sequence_choice(n_eff, lower, n_start=n_start, n_min=n_min, step=step,
                              target=target)
    # Point estimate: the loosest bin whose observed precision reaches the target.
    reach = (prec >= target) & (k_acc > 0)
    point = np.where(reach.any(axis=1), n_bins - 1 - reach[:, ::-1].argmax(axis=1), -1)
    n_pred = k_acc[:, -1]
    rows = []
    for j, name in enumerate(classes):
        b = chosen[j]
        pb = point[j]
        row = {"class": name, "threshold": None, "precision_lower_bound": None,
               "precision": None, "coverage": 0.0, "n_accepted": 0,
               "n_predicted": int(n_pred[j]), "point_threshold": None, "point_coverage": 0.0,
               "point_precision_lower_bound": None, "captures_needed": None}
        if pb >= 0:
            row["point_threshold"] = float((n_bins - 1 - pb) / n_bins)
            row["point_coverage"] = float(k_acc[j, pb] / n_pred[j])
            row["point_precision_lower_bound"] = float(precision_lower_bound(
                prec[j, pb] * n_eff[j, pb], n_eff[j, pb], confidence=half))
        if b >= 0:
            row.update(threshold=float((n_bins - 1 - b) / n_bins),
                       precision_lower_bound=float(lower[j, b]), precision=float(prec[j, b]),
                       coverage=float(k_acc[j, b] / n_pred[j]), n_accepted=int(k_acc[j, b]))
        elif n_pred[j] > 0:
            tested = n_eff[j] >= n_min * (1 - 1e-9)
            if tested.any():
                # most favourable: the highest bound, else (none computed) the best precision
                best = int(np.argmax(np.where(tested, lower[j], -1))) if lower[j].any() \
                    else int(np.argmax(np.where(tested, prec[j], -1)))
                row["precision_lower_bound"] = float(precision_lower_bound(
                    prec[j, best] * n_eff[j, best], n_eff[j, best], confidence=half))
                row["precision"] = float(prec[j, best])
                need = captures_needed(prec[j, best], target=target, confidence=half)[0]
            else:  # too few captures for even a perfect record: judge the pooled precision
                row["precision"] = float(prec[j, -1])
                row["precision_lower_bound"] = float(precision_lower_bound(
                    prec[j, -1] * n_eff[j, -1], n_eff[j, -1], confidence=half))
                need = captures_needed(prec[j, -1], target=target, confidence=half)[0]
            row["captures_needed"] = None if np.isnan(need) else int(need)
        rows.append(row)
    n_acc = sum(r["n_accepted"] for r in rows)
    n_point = sum(r["point_coverage"] * r["n_predicted"] for r in rows)
    return {"target_precision": target, "confidence": confidence, "level": level, "n": int(n),
            "coverage": n_acc / n if n else 0.0, "coverage_point": n_point / n if n else 0.0,
            "uncertifiable": [r["class"] for r in rows
                              if r["threshold"] is None and r["n_predicted"] > 0],
            "per_class": rows}


def thresholds_array(result: dict, *, point: bool = False) -> np.ndarray:
    """Thresholds of a :func:`certify` result as an array (NaN where none), class order.

    ``point=True`` takes the point-estimate thresholds instead of the certified ones.
    """
    key = "point_threshold" if point else "threshold"
    return np.array([np.nan if r[key] is None else r[key] for r in result["per_class"]])


def accept_mask(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Which rows a set of per-class thresholds accepts: arg-max class c with
    ``probs[c] >= thresholds[c]`` (NaN threshold: never).

    Parameters
    ----------
    probs : ndarray, shape (n, C)
    thresholds : ndarray of float, shape (C,)

    Returns
    -------
    ndarray of bool, shape (n,)

    Examples
    --------
    >>> accept_mask(np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]]),
    ...             np.array([0.8, np.nan])).tolist()
    [True, False, False]
    """
    probs = np.asarray(probs)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.shape != (probs.shape[1],):
        raise CertifyError(f"accept_mask: {thresholds.shape[0]} thresholds for "
                           f"{probs.shape[1]} classes")
    conf = np.empty(len(probs), probs.dtype)
    pred = argmax_rows(probs, max_out=conf)
    t = thresholds[pred]
    return ~np.isnan(t) & (conf.astype(np.float64) >= t)


@memoised
def certify_for(ev: EvalSet, *, target: float = 0.95, confidence: float = 0.95,
                level: str = "image", n_bins: int = 4096) -> dict:
    """:func:`certify` on an :class:`~analysis.evalset.EvalSet` (label sets, its captures).

    Capture level uses :func:`analysis.evalset.aggregate_sequences` (mean of frames).
    """
    if level == "capture":
        agg = aggregate_sequences(ev, how="mean")
        out = certify(agg.probs, agg.labels, captures=None, classes=ev.classes, target=target,
                      confidence=confidence, n_bins=n_bins)
        out["level"] = "capture"
        return out
    return certify(ev.probs, ev.labels, captures=capture_codes(ev)[0], classes=ev.classes,
                   target=target, confidence=confidence, level=level, n_bins=n_bins)
