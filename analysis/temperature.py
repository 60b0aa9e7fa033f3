"""Temperature scaling (Guo et al. 2017) fitted on a validation split, and its effect on ECE.

One scalar T divides the logits: ``softmax(z / T)``. T > 1 softens over-confident
probabilities, T < 1 sharpens them; the arg-max (hence accuracy) never changes. T is fitted
by minimising the mean negative log-likelihood of the true class on validation images, a 1-D
problem solved on ``log T`` with :func:`scipy.optimize.minimize_scalar` (bounded).

Runs store probabilities, not logits: ``log(p)`` serves as logits (softmax is invariant to a
per-row constant, so ``softmax(log p) == p``). Probabilities are clipped at 1e-12 first.

At capture level, frame logits are averaged per capture and the same T is applied
(``softmax(mean(z) / T)``), as Dussert et al. found works for camera traps.

ECE is top-label ECE on equal-width bins (:mod:`analysis.calibration`'s convention);
per-class ECE is one-vs-rest.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import optimize, sparse

from analysis.calibration import class_sums, ece_from_sums, top_label_sums
from analysis.evalset import evalset_from_arrays

log = logging.getLogger(__name__)

_BLOCK = 262_144  # rows per block of (rows, C) temporaries
KINDS = ("probs", "logits")


class TemperatureError(ValueError):
    """Scores or labels for temperature scaling are malformed."""


def as_logits(scores: np.ndarray, *, kind: str = "probs") -> np.ndarray:
    """Logits (float32) from probabilities (``log p``, clipped at 1e-12) or logits as given.

    Examples
    --------
    >>> np.round(as_logits(np.array([[0.5, 0.5]])).astype(float), 4).tolist()
    [[-0.6931, -0.6931]]
    """
    if kind not in KINDS:
        raise TemperatureError(f"kind must be one of {KINDS}, got {kind!r}")
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise TemperatureError(f"scores must be 2-D (n, C), got shape {scores.shape}")
    if kind == "logits":
        return scores.astype(np.float32, copy=False)
    return np.log(np.maximum(scores.astype(np.float32, copy=False), np.float32(1e-12)))


def _nll(logits: np.ndarray, y: np.ndarray, t: float) -> float:
    """Mean negative log-likelihood of ``softmax(logits / t)`` at ``y``, in blocks."""
    total = 0.0
    inv = np.float32(1.0 / t)
    for lo in range(0, len(logits), _BLOCK):
        z = logits[lo:lo + _BLOCK] * inv
        m = z.max(axis=1)
        lse = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
        total += float((lse - z[np.arange(len(z)), y[lo:lo + _BLOCK]]).sum(dtype=np.float64))
    return total / len(logits)


def fit_temperature(scores: np.ndarray, y_true: np.ndarray, *, kind: str = "probs",
                    bounds: tuple[float, float] = (0.05, 20.0), max_rows: int | None = None,
                    seed: int = 0) -> float:
    """Temperature minimising the validation negative log-likelihood.

    Parameters
    ----------
    scores : ndarray, shape (n, C)
        Validation probabilities (``kind="probs"``) or logits.
    y_true : ndarray of int, shape (n,)
        True class per row (e.g. ``targets(ev, policy="set")[0]`` for label sets).
    kind : {"probs", "logits"}
    bounds : (float, float)
        Search interval for T.
    max_rows : int, optional
        Fit on a seeded random subset of this many rows (NLL is a mean: 10^5 rows pin T to
        well under 1 %).
    seed : int

    Returns
    -------
    float
        T > 0.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(0, 3, (20000, 4))
    >>> y = (rng.random((20000, 1)) > np.cumsum(softmax_t(z, 1.0), axis=1)).sum(axis=1)
    >>> round(fit_temperature(z * 2, y, kind="logits"), 1)   # logits twice too large
    2.0
    """
    logits = as_logits(scores, kind=kind)
    y = np.asarray(y_true, dtype=np.int64)
    if len(y) != len(logits):
        raise TemperatureError(f"fit_temperature: {len(logits)} score rows, {len(y)} labels")
    if not len(y):
        raise TemperatureError("fit_temperature: no validation rows")
    if y.min() < 0 or y.max() >= logits.shape[1]:
        bad = int(np.flatnonzero((y < 0) | (y >= logits.shape[1]))[0])
        raise TemperatureError(f"fit_temperature: row {bad}: label {y[bad]} outside "
                               f"0..{logits.shape[1] - 1}")
    if not np.isfinite(logits).all():
        bad = int(np.flatnonzero(~np.isfinite(logits).all(axis=1))[0])
        raise TemperatureError(f"fit_temperature: row {bad} has non-finite scores")
    if max_rows is not None and len(y) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(y), max_rows, replace=False))
        logits, y = logits[rows], y[rows]
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    res = optimize.minimize_scalar(lambda u: _nll(logits, y, float(np.exp(u))),
                                   bounds=(lo, hi), method="bounded",
                                   options={"xatol": 1e-4})
    t = float(np.exp(res.x))
    if min(abs(res.x - lo), abs(res.x - hi)) < 1e-3:
        log.warning("fit_temperature: T = %.3g is at the search bound %s", t, bounds)
    return t


def softmax_t(scores: np.ndarray, temperature: float, *, kind: str = "logits",
              dtype: type = np.float32) -> np.ndarray:
    """``softmax(logits / temperature)`` row-wise, in blocks of rows (computed in float32,
    stored as ``dtype``).

    ``kind="probs"`` takes probabilities and uses ``log p`` (as :func:`as_logits`) block by
    block: no (n, C) logits array is ever held, which at 7.2 M x 61 would be 1.7 GB.

    Examples
    --------
    >>> np.round(softmax_t(np.log(np.array([[0.8, 0.2]])), 2.0).astype(float), 3).tolist()
    [[0.667, 0.333]]
    >>> np.round(softmax_t(np.array([[0.8, 0.2]]), 2.0, kind="probs").astype(float), 3).tolist()
    [[0.667, 0.333]]
    """
    scores = np.asarray(scores)
    out = np.empty(scores.shape, dtype)
    inv = np.float32(1.0 / temperature)
    for lo in range(0, len(scores), _BLOCK):
        z = as_logits(scores[lo:lo + _BLOCK], kind=kind) * inv  # a new float32 block
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        out[lo:lo + _BLOCK] = z
    return out


def apply_temperature(scores: np.ndarray, temperature: float, *, kind: str = "probs",
                      dtype: type = np.float32) -> np.ndarray:
    """Calibrated probabilities ``softmax(logits / T)`` (shape (n, C), stored as ``dtype``)."""
    if not temperature > 0:
        raise TemperatureError(f"temperature must be > 0, got {temperature!r}")
    return softmax_t(scores, temperature, kind=kind, dtype=dtype)


def capture_logits(scores: np.ndarray, captures: np.ndarray, *, kind: str = "logits"
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Mean frame logits per capture, and the capture's first row.

    ``kind="probs"`` takes probabilities (logits ``log p``, block by block, as
    :func:`softmax_t`).

    Returns
    -------
    mean : ndarray of float32, shape (G, C)
        Captures in order of first appearance.
    first : ndarray of int, shape (G,)
        Row of each capture's first frame.
    """
    scores = np.asarray(scores)
    codes, uniq_first = pd.factorize(pd.Series(np.asarray(captures)), use_na_sentinel=False)
    g, n = len(uniq_first), len(codes)
    member = sparse.csc_matrix((np.ones(n, np.float32), (codes, np.arange(n))), shape=(g, n))
    mean = np.zeros((g, scores.shape[1]), np.float32)
    for lo in range(0, n, _BLOCK):
        mean += member[:, lo:lo + _BLOCK] @ as_logits(scores[lo:lo + _BLOCK], kind=kind)
    mean /= np.bincount(codes, minlength=g).astype(np.float32)[:, None]
    first = np.full(g, n, np.int64)
    np.minimum.at(first, codes, np.arange(n))
    return mean, first


def _ece_pair(scores: np.ndarray, t: float, labels: np.ndarray, classes: list[str],
              n_bins: int, kind: str) -> dict:
    """Top-label and per-class ECE of ``softmax(logits)`` and of ``softmax(logits / t)``, a
    block of rows at a time: the bin sums add up over blocks, so no calibrated (n, C) copy of
    the scores is ever held (two of them at 7.2 M x 61 would be 3.5 GB)."""
    top = {name: np.zeros((3, n_bins)) for name in ("before", "after")}
    per = {name: np.zeros((3, len(classes), n_bins)) for name in ("before", "after")}
    for lo in range(0, len(scores), _BLOCK):
        block, lab = scores[lo:lo + _BLOCK], labels[lo:lo + _BLOCK]
        rows = np.arange(len(block))  # ids the sums never read: no strings made per row
        for name, temp in (("before", 1.0), ("after", t)):
            ev = evalset_from_arrays(softmax_t(block, temp, kind=kind), lab, classes=classes,
                                     image_ids=rows)
            top[name] += top_label_sums(ev, n_bins=n_bins)
            per[name] += class_sums(ev, n_bins=n_bins)
    out = {}
    for name in ("before", "after"):
        out[f"ece_{name}"] = float(ece_from_sums(top[name]))
        out[f"per_class_{name}"] = ece_from_sums(per[name])
    return out


def calibration_fit(val_scores: np.ndarray, val_labels: np.ndarray, eval_scores: np.ndarray,
                    eval_labels: np.ndarray, *, classes: list[str], kind: str = "probs",
                    eval_captures: np.ndarray | None = None, n_bins: int = 15,
                    max_rows: int | None = 500_000, temperature: float | None = None) -> dict:
    """Fit T on validation, apply it to the evaluated split, ECE before and after.

    Parameters
    ----------
    val_scores : ndarray, shape (m, C)
        Validation probabilities or logits.
    val_labels : ndarray of int, shape (m,)
        True class per validation row.
    eval_scores : ndarray, shape (n, C)
        Scores of the evaluated split (same ``kind``).
    eval_labels : ndarray, shape (n,) of int or (n, C) of bool
        Labels of the evaluated split (label sets allowed).
    classes : list of str, length C
    kind : {"probs", "logits"}
    eval_captures : ndarray, shape (n,), optional
        Capture per evaluated row: adds the capture-level block (frame logits averaged).
    n_bins : int
    max_rows : int, optional
        Passed to :func:`fit_temperature`.
    temperature : float, optional
        A temperature fitted before on the same validation rows (e.g. stored beside the run):
        used as is, no fit.

    Returns
    -------
    dict
        ``temperature``, ``ece_before``, ``ece_after`` (image level, evaluated split),
        ``per_class``: list of ``{class, ece_before, ece_after}``; with captures also
        ``capture_level``: ``{n, ece_before, ece_after}``. JSON-ready.
    """
    t = (float(temperature) if temperature is not None
         else fit_temperature(val_scores, val_labels, kind=kind, max_rows=max_rows))
    labels = np.asarray(eval_labels)
    res = _ece_pair(eval_scores, t, labels, classes, n_bins, kind)
    out = {"temperature": t, "ece_before": res["ece_before"], "ece_after": res["ece_after"],
           "per_class": [{"class": name, "ece_before": float(b), "ece_after": float(a)}
                         for name, b, a in zip(classes, res["per_class_before"],
                                               res["per_class_after"])]}
    if eval_captures is not None:
        mean, _ = capture_logits(eval_scores, eval_captures, kind=kind)
        codes = pd.factorize(pd.Series(np.asarray(eval_captures)), use_na_sentinel=False)[0]
        if labels.ndim == 1:
            cap_labels = np.zeros((len(mean), len(classes)), bool)
            cap_labels[codes, labels] = True
        else:
            cap_labels = np.zeros((len(mean), len(classes)), bool)
            np.logical_or.at(cap_labels, codes, labels)
        res_c = _ece_pair(mean, t, cap_labels, classes, n_bins, "logits")
        out["capture_level"] = {"n": int(len(mean)), "ece_before": res_c["ece_before"],
                                "ece_after": res_c["ece_after"]}
    return out
