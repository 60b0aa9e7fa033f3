"""Classification metrics from one confusion matrix, with capture-level bootstrap intervals.

Conventions (identical to scikit-learn with ``zero_division=0`` and ``labels=None``):

- precision = TP / predicted, recall = TP / support, F1 = 2 TP / (predicted + support); each is
  0 when its denominator is 0. Every class of the dataset keeps its row.
- accuracy = trace / n.
- balanced accuracy = mean recall over classes with support (``balanced_accuracy_score``).
- macro F1 = mean F1 over the classes that occur in the truth *or* the predictions
  (scikit-learn's default label set): classes absent from both (e.g. a rare species outside a
  filtered slice) do not drag it towards 0, while predicting a class that is not there does.
- weighted F1 = support-weighted mean F1.
- Bootstrap intervals resample whole captures (``seq_id``), because frames of a capture are not
  independent; percentile intervals from a Poisson bootstrap (below).
"""
from __future__ import annotations


import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from analysis.evalset import (EvalSet, Policy, aggregate_sequences, capture_codes,
                              memoised, targets)

log = logging.getLogger(__name__)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, *,
              mask: np.ndarray | None = None) -> np.ndarray:
    """Confusion counts: rows actual, columns predicted (one ``np.bincount``).

    Parameters
    ----------
    y_true, y_pred : ndarray of int, shape (n,)
        Class indices in ``0 .. n_classes-1``.
    n_classes : int
    mask : ndarray of bool, shape (n,), optional
        Count only these rows (a filter).

    Returns
    -------
    ndarray of int64, shape (C, C)

    Examples
    --------
    >>> confusion(np.array([0, 1, 1]), np.array([0, 0, 1]), 3).tolist()
    [[1, 0, 0], [1, 1, 0], [0, 0, 0]]
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"confusion: y_true has shape {y_true.shape}, y_pred {y_pred.shape}")
    if mask is not None:
        y_true, y_pred = y_true[mask], y_pred[mask]
    flat = y_true * n_classes + y_pred
    if len(flat) and (min(y_true.min(), y_pred.min()) < 0
                      or max(y_true.max(), y_pred.max()) >= n_classes):
        raise ValueError(f"confusion: class indices must lie in [0, {n_classes})")
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def confusion_for(ev: EvalSet, *, policy: Policy = "set",
                  mask: np.ndarray | None = None) -> np.ndarray:
    """Confusion matrix of an EvalSet under a policy, optionally filtered; the fast path for
    interactive filters.

    The (actual, predicted) cell of every row is computed once per EvalSet and policy and
    kept as one integer array, so each new filter costs one weighted ``np.bincount``.

    Parameters
    ----------
    ev : EvalSet
    policy : {"set", "primary"}
    mask : ndarray of bool, shape (n,), or integer row indices, optional

    Returns
    -------
    ndarray of int64, shape (C, C)
    """
    c = ev.n_classes
    key = f"codes:{policy}"
    if key not in ev._cache:
        y_true, y_pred = targets(ev, policy=policy)
        ev._cache[key] = (y_true * c + y_pred).astype(np.intp)  # bincount's own index type
    cells = ev._cache[key]
    if mask is None:
        return np.bincount(cells, minlength=c * c).reshape(c, c)
    mask = np.asarray(mask)
    if mask.dtype != bool:  # row indices
        return np.bincount(cells[mask], minlength=c * c).reshape(c, c)
    # The mask as 0/1 weights: one pass, ~3x faster than boolean selection on random masks;
    # float64 sums of 0/1 are exact up to 2**53 rows.
    return np.bincount(cells, weights=mask, minlength=c * c).astype(np.int64).reshape(c, c)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast_shapes(num.shape, den.shape)),
                     where=den > 0)


def _counts(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.diagonal(cm, axis1=-2, axis2=-1), cm.sum(axis=-2), cm.sum(axis=-1)


def f1_from_counts(tp: np.ndarray, pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per-class F1 from true-positive, predicted and true counts (0 where undefined).

    Parameters
    ----------
    tp, pred, true : ndarray of int, shape (..., C)
        Diagonal, column sums and row sums of confusion matrices (one matrix or a stack of
        bootstrap resamples along the leading axes).

    Returns
    -------
    ndarray of float64, shape (..., C)
        ``2 tp / (pred + true)``; 0 for a class neither predicted nor present.

    Examples
    --------
    >>> f1_from_counts(np.array([2, 0]), np.array([3, 0]), np.array([2, 1])).tolist()
    [0.8, 0.0]
    """
    return _ratio(2 * np.asarray(tp), np.asarray(pred) + np.asarray(true))


def per_class(cm: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support from a confusion matrix.

    Parameters
    ----------
    cm : ndarray of int, shape (C, C)
        Rows actual, columns predicted.
    classes : list of str, length C

    Returns
    -------
    DataFrame
        Columns ``class, precision, recall, f1, support``; one row per class, in class order
        (absent classes keep their row, with zeros).
    """
    tp, pred, true = _counts(np.asarray(cm))
    if len(classes) != len(tp):
        raise ValueError(f"per_class: {len(classes)} class names for a {cm.shape} matrix")
    return pd.DataFrame({"class": list(classes), "precision": _ratio(tp, pred),
                         "recall": _ratio(tp, true), "f1": f1_from_counts(tp, pred, true),
                         "support": true.astype(np.int64)})


def summary_from_counts(tp: np.ndarray, pred: np.ndarray,
                        true: np.ndarray) -> dict[str, np.ndarray]:
    """Summary metrics from per-class counts, over the last axis.

    Works for one confusion matrix or a stack of them (bootstrap resamples, slices): every
    leading axis is kept. The averages run over the class sets described in the module
    docstring.

    Parameters
    ----------
    tp, pred, true : ndarray of int, shape (..., C)
        True positives, predicted counts and true counts per class.

    Returns
    -------
    dict of str to ndarray, each of shape (...)
        ``n, accuracy, balanced_accuracy, macro_f1, weighted_f1``.

    Examples
    --------
    >>> out = summary_from_counts(np.array([2, 0]), np.array([3, 0]), np.array([2, 1]))
    >>> float(out["accuracy"]), float(out["macro_f1"])
    (0.6666666666666666, 0.4)
    """
    tp, pred, true = np.asarray(tp), np.asarray(pred), np.asarray(true)
    n = true.sum(axis=-1)
    f1 = f1_from_counts(tp, pred, true)
    present = (true + pred) > 0
    supported = true > 0
    return {"n": n,
            "accuracy": _ratio(tp.sum(axis=-1), n),
            "balanced_accuracy": _ratio((_ratio(tp, true) * supported).sum(axis=-1),
                                        supported.sum(axis=-1)),
            "macro_f1": _ratio((f1 * present).sum(axis=-1), present.sum(axis=-1)),
            "weighted_f1": _ratio((f1 * true).sum(axis=-1), n)}


def summary(cm: np.ndarray) -> dict:
    """Overall metrics of a confusion matrix.

    Parameters
    ----------
    cm : ndarray of int, shape (C, C)

    Returns
    -------
    dict
        ``accuracy, balanced_accuracy, macro_f1, weighted_f1`` (floats) and ``n`` (int); see
        the module docstring for the class sets each average runs over.
    """
    out = summary_from_counts(*_counts(np.asarray(cm)))
    return {k: (int(v) if k == "n" else float(v)) for k, v in out.items()}


def _group_patterns(code: np.ndarray, base: int, groups: np.ndarray) -> np.ndarray:
    """Pattern id (0..K-1) per group; groups with the same multiset of per-image codes
    (``1 <= code < base``) share one, so the bootstrap draws K counts instead of G.
    ``groups`` must be ``0..G-1``; ids are numbered by first appearance. A group with more
    images than one int64 key holds keeps a pattern of its own (exact, less compressed)."""
    n = len(code)
    if not n:
        return np.zeros(0, np.int64)
    sizes = np.bincount(groups)
    m = int(sizes.max())
    width = max(1, int(62 // np.log2(base)))  # codes that fit in one int64 key
    if width < m:  # a wide base (e.g. two runs' codes): renumber the codes present
        code = pd.factorize(code)[0] + 1
        base = int(code.max()) + 1
        width = max(1, int(62 // np.log2(base)))
    w = min(width, m)
    powers = np.int64(base) ** np.arange(w, dtype=np.int64)
    big = sizes > width
    if m <= 16 and np.all(groups[1:] >= groups[:-1]):  # frames of a capture together
        # each group's codes as one row padded with 0 (below every code), sorted: the row
        # is the multiset; its last ``w`` digits in base ``base`` an exact key
        starts = np.r_[0, np.cumsum(sizes)[:-1]]
        mat = np.zeros((len(sizes), m), np.int64)
        mat[groups, np.arange(n) - starts[groups]] = code
        mat.sort(axis=1)
        key = mat[:, m - w:] @ powers
    else:
        order = np.lexsort((code, groups))
        g_sorted, c_sorted = groups[order], code[order]
        starts = np.r_[0, np.cumsum(sizes)[:-1]]
        pos = np.arange(n) - starts[g_sorted]  # codes ascending in each group: its digits
        term = np.where(pos < w, c_sorted * powers[np.minimum(pos, w - 1)], 0)
        key = np.add.reduceat(term, starts)
    key[big] = -(np.arange(int(big.sum())) + 1)
    return pd.factorize(key)[0]


def resampled_counts(pairs: list[tuple[np.ndarray, np.ndarray]], groups: np.ndarray | None,
                     n_classes: int, *, n_resamples: int = 200, seed: int = 0
                     ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per-class (TP, predicted, true) counts in each capture-bootstrap resample.

    Every pair ``(y_true, y_pred)`` is resampled with the SAME capture weights (paired
    bootstrap, e.g. two runs on the same images).

    Parameters
    ----------
    pairs : list of (y_true, y_pred), each ndarray of int, shape (n,)
    groups : ndarray, shape (n,), or None
        Capture of each image (any hashable codes); None = every image alone.
    n_classes : int
    n_resamples : int
    seed : int

    Returns
    -------
    list of (tp, pred, true)
        One per pair; each an ndarray of float64, shape (n_resamples, C).
    """
    n = len(pairs[0][0])
    groups = np.arange(n) if groups is None else pd.factorize(np.asarray(groups))[0]
    c2 = n_classes * n_classes
    code = np.zeros(n, np.int64)
    for j, (yt, yp) in enumerate(pairs):
        code += (np.asarray(yt, np.int64) * n_classes + yp) * c2 ** j
    # Patterns numbered by their first capture, not by their (class-index) codes: the random
    # weights then go to the same captures whatever the class order of the manifest.
    pattern_of_group = _group_patterns(code + 1, c2 ** len(pairs) + 1, groups)
    _, rep_group, n_per_pattern = np.unique(pattern_of_group, return_index=True,
                                            return_counts=True)
    # One representative capture per pattern gives the pattern's integer contribution;
    # columns per pair = [tp | predicted | true] per class.
    is_rep = np.zeros(len(pattern_of_group), bool)
    is_rep[rep_group] = True
    sel = np.flatnonzero(is_rep[groups])
    pat = pattern_of_group[groups[sel]]
    rows, cols = [], []
    for j, (yt, yp) in enumerate(pairs):
        yt, yp = np.asarray(yt)[sel], np.asarray(yp)[sel]
        hit = yt == yp
        off = 3 * n_classes * j
        rows += [pat[hit], pat, pat]
        cols += [off + yt[hit], off + n_classes + yp, off + 2 * n_classes + yt]
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    contrib = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                                shape=(len(n_per_pattern), 3 * n_classes * len(pairs)))
    stats = _poisson_weighted_sums(contrib, n_per_pattern, n_resamples,
                                   np.random.default_rng(seed))
    return [tuple(np.split(part, 3, axis=1)) for part in np.split(stats, len(pairs), axis=1)]


def percentile_interval(samples: np.ndarray, level: float = 0.95, axis: int = 0) -> np.ndarray:
    """``[lo, hi]`` percentile interval along ``axis`` (moved to the last axis)."""
    alpha = (1 - level) / 2
    return np.moveaxis(np.quantile(samples, [alpha, 1 - alpha], axis=axis), 0, -1)


#: Poisson(1) CDF on a 16-bit grid: weight = number of thresholds a uniform uint16 reaches
#: (inversion sampling; probabilities below 2**-16, i.e. weights above 8, are cut).
_POISSON1_CDF16 = np.round(np.cumsum(
    [np.exp(-1.0) / np.prod(np.arange(1, k + 1)) for k in range(9)]) * 65536).astype(np.int64)


def _poisson1(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    u = rng.integers(0, 65536, size=shape, dtype=np.uint16)
    out = np.zeros(shape, np.uint8)
    for t in _POISSON1_CDF16[_POISSON1_CDF16 < 65536]:
        out += u >= t
    return out


def _poisson_weighted_sums(contrib: sparse.csr_matrix, counts: np.ndarray, n_resamples: int,
                           rng: np.random.Generator) -> np.ndarray:
    """``(n_resamples, cols)``: sums of pattern contributions under Poisson(count) weights.

    Single-capture patterns (usually most of them) draw Poisson(1) by table look-up, an order
    of magnitude faster than ``rng.poisson``; the others use ``rng.poisson(count)``.
    """
    k = len(counts)
    multi = np.flatnonzero(counts > 1)
    stats = np.empty((n_resamples, contrib.shape[1]))
    contrib_t = contrib.T.tocsr()
    block = max(1, min(n_resamples, 20_000_000 // max(k, 1)))  # bound the weight matrix
    for lo in range(0, n_resamples, block):
        r = min(lo + block, n_resamples) - lo
        weights = _poisson1(rng, (k, r)).astype(np.float32)
        if len(multi):
            weights[multi] = rng.poisson(counts[multi, None], size=(len(multi), r))
        stats[lo:lo + r] = (contrib_t @ weights).T
    return stats


def bootstrap(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray | None,
              n_classes: int, *, n_resamples: int = 200, level: float = 0.95,
              seed: int = 0) -> dict:
    """Percentile bootstrap intervals for macro F1 and per-class F1, resampling whole groups.

    A Poisson bootstrap: every group (capture) gets an independent Poisson(1) weight per
    resample, the large-sample equivalent of drawing captures with replacement. Groups with the
    same multiset of (true, predicted) pairs are pooled first (the sum of m Poisson(1) weights
    is Poisson(m)), so the cost grows with the number of distinct capture patterns, not images.

    Parameters
    ----------
    y_true, y_pred : ndarray of int, shape (n,)
    groups : ndarray of int, shape (n,), or None
        Capture code per image (values need not be contiguous); None = every image alone.
    n_classes : int
    n_resamples : int
    level : float
        Coverage of the interval, e.g. 0.95.
    seed : int

    Returns
    -------
    dict
        ``macro_f1_ci``: ndarray (2,); ``f1_ci``: ndarray (C, 2); ``accuracy_ci``: ndarray (2,).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    n = len(y_true)
    if n == 0 or n_resamples < 1:
        nan = np.full(2, np.nan)
        return {"macro_f1_ci": nan, "f1_ci": np.full((n_classes, 2), np.nan),
                "accuracy_ci": nan}
    (tp, pred, true), = resampled_counts([(y_true, y_pred)], groups, n_classes,
                                         n_resamples=n_resamples, seed=seed)
    summ = summary_from_counts(tp, pred, true)
    return {"macro_f1_ci": percentile_interval(summ["macro_f1"], level),
            "f1_ci": percentile_interval(f1_from_counts(tp, pred, true), level),
            "accuracy_ci": percentile_interval(summ["accuracy"], level)}


def interval_list(pair: np.ndarray | Sequence[float]) -> list[float | None]:
    """A confidence interval as JSON-ready ``[lo, hi]`` (None where undefined).

    Parameters
    ----------
    pair : array-like of float, shape (2,)
        Lower and upper bound; NaN or infinite where the interval is undefined.

    Returns
    -------
    list of (float or None), length 2

    Examples
    --------
    >>> interval_list(np.array([0.25, np.nan]))
    [0.25, None]
    """
    return [None if not np.isfinite(x) else float(x) for x in pair]


def evaluate(ev: EvalSet, *, policy: Policy = "set", level: str = "image",
             aggregation: str = "mean", n_resamples: int = 200, seed: int = 0) -> dict:
    """The report's ``image_level`` (or ``sequence_level``) block.

    Parameters
    ----------
    ev : EvalSet
    policy : {"set", "primary"}
    level : {"image", "sequence"}
        ``sequence`` first aggregates frames per capture (:func:`aggregate_sequences`).
    aggregation : {"mean", "max", "vote"}
        Used when ``level="sequence"``.
    n_resamples : int
        Bootstrap resamples (0 disables intervals: they come out as ``[None, None]``).
    seed : int

    Returns
    -------
    dict
        ``{n, accuracy, balanced_accuracy, macro_f1, macro_f1_ci: [lo, hi], weighted_f1,
        per_class: [{class, precision, recall, f1, f1_ci: [lo, hi], support}]}`` plus
        ``level``, ``policy`` and, for sequences, ``aggregation``. JSON-ready. Memoised on
        ``ev`` (a copy is returned).
    """
    if level not in ("image", "sequence"):
        raise ValueError(f"level must be 'image' or 'sequence', got {level!r}")
    return _evaluate(ev, policy=policy, level=level, aggregation=aggregation,
                     n_resamples=n_resamples, seed=seed)


@memoised  # the Overview and Per-class pages ask for the same block
def _evaluate(ev: EvalSet, *, policy: Policy, level: str, aggregation: str, n_resamples: int,
              seed: int) -> dict:
    if level == "sequence":
        ev = aggregate_sequences(ev, how=aggregation)
    y_true, y_pred = targets(ev, policy=policy)
    cm = confusion(y_true, y_pred, ev.n_classes)
    groups = capture_codes(ev)[0] if level == "image" else None
    ci = bootstrap(y_true, y_pred, groups, ev.n_classes, n_resamples=n_resamples, seed=seed)
    table = per_class(cm, ev.classes)
    table["f1_ci"] = [interval_list(r) for r in ci["f1_ci"]]
    out = {"level": level, "policy": policy, **summary(cm),
           "macro_f1_ci": interval_list(ci["macro_f1_ci"]),
           "per_class": [{"class": r["class"], "precision": float(r["precision"]),
                          "recall": float(r["recall"]), "f1": float(r["f1"]),
                          "f1_ci": r["f1_ci"], "support": int(r["support"])}
                         for r in table.to_dict("records")]}
    if level == "sequence":
        out["aggregation"] = aggregation
    return out
