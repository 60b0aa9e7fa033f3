"""Per-image losses, top losses, and the merged relabel-candidate list.

Three signals point at images whose labels deserve a second look; :func:`label_issues` merges
them into one ranked list, one row per image:

- confident learning (cleanlab's ``find_label_issues``) on *out-of-sample* predictions with the
  primary label: the model, not having trained on the image, disagrees with its label more than
  the class's noise rate explains;
- the sequence suspects of :func:`analysis.sequences.suspects` (inherited labels, missed second
  species);
- the top losses of :func:`top_losses` (cross-entropy against the label set).

Every signal's score lies in [0, 1] and reads "how strongly the model doubts the given label";
an image flagged by several keeps the largest score and all reasons.
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.evalset import EvalSet, capture_codes, given_labels, targets
from analysis.sequences import suspects

log = logging.getLogger(__name__)

#: Probabilities are clipped here before the log: a loss is at most -log(1e-12) ~ 27.6 nats.
EPS = 1e-12
#: Rows per block when a full (n, C) temporary would be too large.
_CHUNK = 1 << 18
#: Rows per block of 1-D temporaries (kept in cache).
_BLOCK = 1 << 14
#: Signals :func:`label_issues` can merge, in the order their reasons and suggestions win.
SOURCES = ("sequence", "cleanlab", "loss")
ISSUE_COLUMNS = ["image_id", "score", "given", "suggested", "reason", "kinds"]
TOP_LOSS_COLUMNS = ["image_id", "predicted", "actual", "loss", "p_predicted", "p_actual"]


def label_set_best(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Index of the most probable class *within* each image's label set.

    Parameters
    ----------
    probs : ndarray of float, shape (n, C)
    labels : ndarray of bool, shape (n, C)

    Returns
    -------
    ndarray of int64, shape (n,)
        -1 for rows with an empty label set.
    """
    probs = np.asarray(probs)
    labels = np.asarray(labels, dtype=bool)
    if probs.shape != labels.shape:
        raise ValueError(f"probs has shape {probs.shape} but labels {labels.shape}")
    n = len(labels)
    # Most images carry one label: the first True is the answer; only multi-label rows need a
    # masked arg-max over probabilities (a full masked copy of (n, C) costs seconds at 7 M).
    best = labels.argmax(axis=1).astype(np.int64)
    counts = np.add.reduce(labels.view(np.uint8), axis=1, dtype=np.uint8) if n else best
    best[counts == 0] = -1
    multi = np.flatnonzero(counts > 1)
    for lo in range(0, len(multi), _CHUNK):
        rows = multi[lo:lo + _CHUNK]
        best[rows] = np.where(labels[rows], probs[rows], -1.0).argmax(axis=1)
    return best


def losses(probs: np.ndarray, labels: np.ndarray, *, actual: np.ndarray | None = None
           ) -> np.ndarray:
    """Per-image cross-entropy against the label set: the smallest over the image's labels.

    Parameters
    ----------
    probs : ndarray of float, shape (n, C)
        Predicted probabilities (rows sum to 1).
    labels : ndarray of bool, shape (n, C)
        Label set of each image.
    actual : ndarray of int, shape (n,), optional
        Precomputed :func:`label_set_best` (e.g. the ``set`` policy's ``y_true``); saves one
        pass over the labels.

    Returns
    -------
    ndarray of float64, shape (n,)
        ``-log(max over the label set of p)``, probabilities clipped at :data:`EPS`; NaN for
        rows without labels.

    Examples
    --------
    >>> losses(np.array([[0.5, 0.25, 0.25]]), np.array([[False, True, True]])).round(4)
    array([1.3863])
    """
    probs = np.asarray(probs)
    best = label_set_best(probs, labels) if actual is None else np.asarray(actual, np.int64)
    p = _label_prob(probs, best, np.float64)
    return -np.log(p, out=p)


def _label_prob(probs: np.ndarray, best: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``probs[i, best[i]]`` clipped to ``[EPS, 1]``, as ``dtype``; NaN where ``best < 0``.

    In blocks of rows, so the flat indices and the gathered values stay in cache and the only
    new array at 7 M rows is the result.
    """
    n, c = probs.shape
    ok = best >= 0
    if not ok.all():
        p = np.full(n, np.nan, dtype)
        rows = np.flatnonzero(ok)
        p[rows] = probs[rows, best[rows]]
        return np.clip(p, _eps(dtype), 1.0, out=p)
    out = np.empty(n, dtype)
    flat = probs.reshape(-1)
    step = np.arange(_BLOCK, dtype=np.int64) * c
    for lo in range(0, n, _BLOCK):
        hi = min(lo + _BLOCK, n)
        idx = step[:hi - lo] + best[lo:hi]
        idx += lo * c
        block = out[lo:hi]
        block[:] = flat[idx]
        np.clip(block, _eps(dtype), 1.0, out=block)
    return out


def _eps(dtype: np.dtype) -> np.floating:
    """The largest ``dtype`` value not above :data:`EPS`: clipping there ties exactly the
    values that clipping at ``EPS`` in float64 ties."""
    eps = np.asarray(EPS, dtype)[()]
    return eps if eps <= EPS else np.nextafter(eps, eps.dtype.type(0))


def _set_loss(ev: EvalSet) -> tuple[np.ndarray, bool]:
    """Ranking key of the losses of ``ev`` and whether all are finite, computed once per
    EvalSet (the ``set`` policy's y_true is the best label, so its probability gives the loss).

    The key is the clipped probability of the best label in the dtype of ``ev.probs``: the
    loss ``-log(p)`` decreases strictly with it and ties exactly where it ties, so ranking by
    it is ranking by the float64 loss, without a log over 7 M rows and, for float32
    probabilities, with half the memory to stream through.
    """
    key = "ranking:loss"
    if key not in ev._cache:
        y_true, y_pred = targets(ev, policy="set")
        dtype = np.dtype(np.float32 if ev.probs.dtype == np.float32 else np.float64)
        wrong = np.flatnonzero(y_true != y_pred)
        if len(wrong) > len(ev) // 4:  # a poor model: one streamed gather is cheaper
            p = _label_prob(ev.probs, y_true, dtype)
        else:
            # Right predictions lose -log(max p), already known from the arg-max; only the
            # wrong ones are gathered from the (n, C) matrix.
            p = ev.pred_prob.astype(dtype)
            p[wrong] = ev.probs[wrong, y_true[wrong]]
            np.clip(p, _eps(dtype), 1.0, out=p)
        ev._cache[key] = (p, bool(np.isfinite(p).all()))
    return ev._cache[key]


def _pick(values: np.ndarray, rows: np.ndarray | None, k: int, largest: bool, *,
          finite: bool = False) -> np.ndarray:
    """Row indices of the k largest (or smallest) values, ordered; ties by row index."""
    sub = values if rows is None else values[rows]
    if not finite:
        ok = ~np.isnan(sub)
        if not ok.all():
            rows = np.flatnonzero(ok) if rows is None else rows[ok]
            sub = sub[ok]
    k = min(k, len(sub))
    if k <= 0:
        return np.zeros(0, np.int64)
    if k == len(sub):
        sel = np.arange(len(sub))
    else:
        if largest:  # no negated copy of a 7 M vector: partition at n - k
            sel = np.argpartition(sub, len(sub) - k)[len(sub) - k:]
            bound = sub[sel].min()
        else:
            sel = np.argpartition(sub, k - 1)[:k]
            bound = sub[sel].max()
        if np.count_nonzero(sub == bound) > np.count_nonzero(sub[sel] == bound):
            # Ties straddle the k-th value: argpartition kept arbitrary ones; the lowest
            # rows must complete the k.
            sel = np.flatnonzero(sub > bound if largest else sub < bound)
            sel = np.r_[sel, np.flatnonzero(sub == bound)[:k - len(sel)]]
    idx = sel if rows is None else rows[sel]
    key = sub[sel]
    return idx[np.lexsort((idx, -key if largest else key))]


def top_losses(ev: EvalSet, *, k: int = 100, largest: bool = True,
               mask: np.ndarray | None = None) -> pd.DataFrame:
    """The k images with the largest (or smallest) loss, fastai style.

    Parameters
    ----------
    ev : EvalSet
    k : int
        Rows to return (fewer when fewer images pass ``mask``).
    largest : bool
        True: the worst images; False: the most confidently right ones.
    mask : ndarray of bool, shape (n,), optional
        Filter (e.g. :func:`analysis.slices.slice_mask` or a confusion cell).

    Returns
    -------
    DataFrame
        Columns ``image_id, predicted, actual, loss, p_predicted, p_actual``, sorted by loss
        (descending when ``largest``; ties by row order). ``actual`` is the label-set class
        the loss is measured against (the most probable of the image's labels), ``predicted``
        the arg-max. The index (``row``) is each image's row in ``ev``: galleries join on it
        without hashing every id of the set.

    Examples
    --------
    >>> top_losses(ev, k=10, mask=ev.meta["location"].eq("D04").to_numpy())  # doctest: +SKIP
    """
    p_best, finite = _set_loss(ev)
    rows = None
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (len(ev),):
            raise ValueError(f"top_losses: mask has shape {mask.shape}, expected ({len(ev)},)")
        rows = np.flatnonzero(mask)
    # Largest losses = smallest probabilities of the best label (see _set_loss).
    idx = _pick(p_best, rows, k, not largest, finite=finite)
    y_true, y_pred = targets(ev, policy="set")
    exact = losses(ev.probs[idx], ev.labels[idx], actual=y_true[idx])  # float64, k rows
    classes = np.asarray(ev.classes, dtype=object)
    pred, act = y_pred[idx], y_true[idx]
    return pd.DataFrame({"image_id": ev.image_ids[idx], "predicted": classes[pred],
                         "actual": classes[act], "loss": exact,
                         "p_predicted": ev.probs[idx, pred].astype(np.float64),
                         "p_actual": ev.probs[idx, act].astype(np.float64)},
                        columns=TOP_LOSS_COLUMNS, index=pd.Index(idx, name="row"))


def out_of_sample(ev: EvalSet) -> np.ndarray:
    """Rows predicted out of sample: ``split`` is not ``"train"`` (missing counts as out)."""
    if "split" not in ev.meta.columns:
        return np.ones(len(ev), bool)
    return ~ev.meta["split"].astype("string").eq("train").fillna(False).to_numpy(bool)


def confident_learning(ev: EvalSet, *, filter_by: str = "prune_by_noise_rate") -> pd.DataFrame:
    """cleanlab's confident learning on the out-of-sample rows, primary label as the given label.

    Parameters
    ----------
    ev : EvalSet
    filter_by : str
        cleanlab's ``find_label_issues`` method.

    Returns
    -------
    DataFrame
        ``row, score, suggested, reason`` for the rows cleanlab flags whose arg-max is not in
        the label set (an image labelled {zebra, wildebeest} predicted wildebeest is
        consistent, whatever its primary label). ``score`` = 1 - p(primary label)
        (cleanlab's self-confidence), ``suggested`` = the arg-max class.
    """
    from cleanlab.filter import find_label_issues

    oos = np.flatnonzero(out_of_sample(ev))
    cols = ["row", "score", "suggested", "reason"]
    given = ev.primary[oos]
    if len(np.unique(given)) < 2:
        # cleanlab needs two given classes; with one there is no noise rate to estimate.
        log.warning("confident learning skipped: %d out-of-sample prediction(s) (split != "
                    "train) with %d distinct label(s)", len(oos), len(np.unique(given)))
        return pd.DataFrame(columns=cols)
    with warnings.catch_warnings():
        # cleanlab warns once per class with few examples; rare species always are.
        warnings.simplefilter("ignore", UserWarning)
        flagged = find_label_issues(given, ev.probs[oos], filter_by=filter_by, n_jobs=1)
    rows = oos[flagged]
    pred = ev.pred[rows]
    consistent = ev.labels[rows, pred]
    rows, pred = rows[~consistent], pred[~consistent]
    p_given = ev.probs[rows, ev.primary[rows]].astype(np.float64)
    p_pred = ev.probs[rows, pred].astype(np.float64)
    names = np.asarray(ev.classes, dtype=object)
    reason = [f"confident learning: labelled {g} (p={pg:.2f}) but model says {s} ({ps:.2f})"
              for g, pg, s, ps in zip(names[ev.primary[rows]], p_given, names[pred], p_pred)]
    log.info("confident learning: %d of %d out-of-sample images flagged", len(rows), len(oos))
    return pd.DataFrame({"row": rows, "score": 1.0 - p_given, "suggested": names[pred],
                         "reason": reason}, columns=cols)


def _loss_candidates(ev: EvalSet, k: int | None) -> pd.DataFrame:
    y_true, y_pred = targets(ev, policy="set")
    wrong = y_true != y_pred  # a correct prediction is no candidate
    k = int(wrong.sum()) if k is None else k
    top = top_losses(ev, k=k, mask=wrong)
    rows = top.index.to_numpy()
    reason = [f"top loss #{i + 1}: loss {l:.2f}, model says {p} ({pp:.2f}), "
              f"{a} only {pa_:.2f}"
              for i, (l, p, pp, a, pa_) in enumerate(zip(top["loss"], top["predicted"],
                                                         top["p_predicted"], top["actual"],
                                                         top["p_actual"]))]
    return pd.DataFrame({"row": rows, "score": 1.0 - top["p_actual"].to_numpy(),
                         "suggested": top["predicted"].to_numpy(), "reason": reason,
                         "kind": "top_loss"})


def _sequence_candidates(ev: EvalSet, sus: pd.DataFrame | None, **kwargs) -> pd.DataFrame:
    if sus is None:
        if kwargs.get("empty_class") not in ev.classes:
            if kwargs.get("empty_class") is not None:
                log.warning("no class %r in this run: inherited-label suspects skipped",
                            kwargs["empty_class"])
            kwargs["empty_class"] = None
        sus = suspects(ev, **kwargs)
    rows = ev.rows_of(sus["image_id"])
    return pd.DataFrame({"row": rows, "score": sus["score"].to_numpy(float),
                         "suggested": sus["suggested"].to_numpy(), "reason": sus["reason"],
                         "kind": sus["kind"].to_numpy()})


def claimed_class(ev: EvalSet, suggested) -> np.ndarray:
    """The class a candidate claims the image shows: the last name of its suggestion.

    ``"empty"`` for an inherited label, the missed species Y of ``"zebra,Y"``, the arg-max of
    a confident-learning or top-loss candidate; -1 for an unknown name.
    """
    last = pd.Series(suggested, dtype=object).astype(str).str.rsplit(",", n=1).str[-1]
    return pd.Index(ev.classes).get_indexer(last.str.strip())


def corroboration(ev: EvalSet, rows: np.ndarray, claim: np.ndarray) -> np.ndarray:
    """The capture's independent evidence for a frame-level claim.

    Parameters
    ----------
    ev : EvalSet
    rows : ndarray of int, shape (k,)
        Candidate rows.
    claim : ndarray of int, shape (k,)
        The class each candidate says its frame shows (see :func:`claimed_class`).

    Returns
    -------
    ndarray of float64, shape (k,)
        ``max over the other frames j of the capture of p_j(claim)``; NaN for a frame alone in
        its capture (or an unknown claim). Labels belong to the capture, so a real label error
        is seen on the other frames too, while the model's slips are frame by frame.
    """
    rows = np.asarray(rows, np.int64)
    claim = np.asarray(claim, np.int64)
    out = np.full(len(rows), np.nan)
    if not len(rows):
        return out
    codes, _ = capture_codes(ev)
    members = np.flatnonzero(np.isin(codes, np.unique(codes[rows])))
    pairs = pd.DataFrame({"k": np.arange(len(rows)), "code": codes[rows]}).merge(
        pd.DataFrame({"j": members, "code": codes[members]}), on="code")
    k, j = pairs["k"].to_numpy(np.int64), pairs["j"].to_numpy(np.int64)
    keep = (j != rows[k]) & (claim[k] >= 0)
    k, j = k[keep], j[keep]
    if len(k):
        p = ev.probs[j, claim[k]].astype(np.float64)
        np.fmax.at(out, k, p)
    return out


#: Fewer multi-frame candidates than this in a stratum: the raw score stands uncalibrated.
MIN_CALIBRATION = 20


def calibrate(score: np.ndarray, target: np.ndarray, *, min_points: int = MIN_CALIBRATION
              ) -> np.ndarray:
    """Map a signal's scores to probabilities: isotonic regression on a noisy target.

    Parameters
    ----------
    score : ndarray of float, shape (k,)
        The signal's own score (larger = more suspect).
    target : ndarray of float, shape (k,)
        A noisy, independent estimate of each candidate's probability of being a label error
        (NaN where none is available; those rows are mapped, not fitted).
    min_points : int
        With fewer finite targets the scores are returned unchanged (clipped to [0, 1]).

    Returns
    -------
    ndarray of float64, shape (k,)
        Non-decreasing in ``score``: E[target | score], clipped to [0, 1].

    Examples
    --------
    >>> calibrate(np.array([0.9, 0.8, 0.1]), np.array([0.2, 0.2, 0.0]), min_points=1)
    array([0.2, 0.2, 0. ])
    """
    from sklearn.isotonic import IsotonicRegression

    score = np.asarray(score, np.float64)
    target = np.asarray(target, np.float64)
    fit = np.isfinite(target) & np.isfinite(score)
    if fit.sum() < min_points or np.unique(score[fit]).size < 2:
        return np.clip(score, 0.0, 1.0)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    iso.fit(score[fit], np.clip(target[fit], 0.0, 1.0))
    return iso.predict(score)


def _probabilities(ev: EvalSet, cand: pd.DataFrame, empty: int) -> np.ndarray:
    """Each candidate's estimated probability that the given label is wrong.

    - inherited label: ``p_i(empty) * p_j(X)``, the model's probabilities of the two frames
      (the claim is already corroborated by another frame);
    - missed species, confident learning, top loss: the signal's score mapped through
      :func:`calibrate` with the capture's corroboration of the claim as the noisy target,
      fitted on each signal's multi-frame candidates (separately for claims of ``empty`` and
      of a species) and applied to all of them. A frame-level slip of the model is seldom
      repeated on the other frames of its capture; a label error is.
    """
    prob = cand["score"].to_numpy(np.float64).copy()
    kind = cand["kind"].to_numpy(object)
    rows = cand["row"].to_numpy(np.int64)
    claim = claimed_class(ev, cand["suggested"].to_numpy(object))
    target = corroboration(ev, rows, claim)
    for k in ("missed_species", "confident_learning", "top_loss"):
        for is_empty in (True, False):
            sel = np.flatnonzero((kind == k) & ((claim == empty) == is_empty))
            if len(sel):
                prob[sel] = calibrate(prob[sel], target[sel])
    return np.clip(prob, 0.0, 1.0)


COMBINE = ("noisy_or", "max")


def label_issues(ev: EvalSet, *, sources: Sequence[str] = SOURCES,
                 k_losses: int | None = 100, empty_class: str | None = "empty",
                 min_confidence: float = 0.5, filter_by: str = "prune_by_noise_rate",
                 k: int | None = None, sequence_suspects: pd.DataFrame | None = None,
                 calibrate: bool = True, combine: str = "noisy_or") -> pd.DataFrame:
    """One ranked relabel-candidate list: confident learning + sequence suspects + top losses.

    Every signal's score is first put on one scale, an estimate of the probability that the
    image's given label is wrong (see :func:`calibrate`): inherited labels keep the product
    of the two frames' probabilities; missed species, confident learning and top losses are
    calibrated on the run's own data against the capture's corroboration of their claim, so a
    confident slip of the model on one frame ranks below evidence repeated across frames. An
    image flagged by several signals gets their noisy-OR, ``1 - prod(1 - p)`` (or the largest,
    ``combine="max"``).

    Parameters
    ----------
    ev : EvalSet
    sources : sequence of {"sequence", "cleanlab", "loss"}
        Signals to merge. Where several flag one image, the first in :data:`SOURCES` order
        supplies the suggestion.
    k_losses : int or None
        How many top losses enter the list (among wrongly predicted images only); None: every
        wrongly predicted image.
    empty_class, min_confidence
        Passed to :func:`analysis.sequences.suspects` (an ``empty_class`` that is not a class
        of the run skips inherited labels, with a warning).
    filter_by : str
        cleanlab's ``find_label_issues`` method (confident learning on rows with
        ``split != "train"`` only: in-sample predictions have seen their labels).
    k : int, optional
        Keep only the k highest-scoring candidates.
    sequence_suspects : DataFrame, optional
        :func:`analysis.sequences.suspects` of ``ev`` if already computed (then
        ``empty_class`` and ``min_confidence`` are not used).
    calibrate : bool
        False: rank by the signals' raw scores (each signal's own order; for benchmarks).
    combine : {"noisy_or", "max"}
        How the probabilities of the signals flagging one image are combined.

    Returns
    -------
    DataFrame
        One row per image, columns ``image_id, score, given, suggested, reason, kinds``,
        sorted by score (descending), then the largest raw signal score, then image id.
        ``score`` in [0, 1] is the estimated probability that the given label is wrong;
        ``given`` the label set (tuple, primary first); ``suggested`` the proposed label set
        as comma-separated class names (the syntax of ``python -m data decide --labels``);
        ``reason`` the signals' reasons joined by "; "; ``kinds`` a tuple of
        ``inherited_label``, ``missed_species``, ``confident_learning``, ``top_loss``.

    Examples
    --------
    >>> label_issues(ev, k=100)  # doctest: +SKIP
    """
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise ValueError(f"label_issues: unknown source(s) {sorted(unknown)}; choose from "
                         f"{list(SOURCES)}")
    if combine not in COMBINE:
        raise ValueError(f"label_issues: combine must be one of {COMBINE}, got {combine!r}")
    parts = []
    if "sequence" in sources:
        parts.append(_sequence_candidates(ev, sequence_suspects, empty_class=empty_class,
                                          min_confidence=min_confidence).assign(src=0))
    if "cleanlab" in sources:
        parts.append(confident_learning(ev, filter_by=filter_by)
                     .assign(kind="confident_learning", src=1))
    if "loss" in sources and (k_losses is None or k_losses > 0):
        parts.append(_loss_candidates(ev, k_losses).assign(src=2))
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=ISSUE_COLUMNS)
    cand = pd.concat(parts, ignore_index=True)
    cand["score"] = cand["score"].astype(np.float64)
    empty = ev.classes.index(empty_class) if empty_class in ev.classes else -1
    cand["prob"] = _probabilities(ev, cand, empty) if calibrate else cand["score"]
    # noisy-OR through logs: sum of log(1 - p) per image.
    cand["log_keep"] = np.log1p(-np.minimum(cand["prob"].to_numpy(), 1.0 - 1e-15))
    # Within an image: strongest source first, then the highest score.
    cand = cand.sort_values(["row", "src", "score"], ascending=[True, True, False],
                            kind="stable")
    grouped = cand.groupby("row", sort=True)
    score = (-np.expm1(grouped["log_keep"].sum()) if combine == "noisy_or"
             else grouped["prob"].max())
    merged = pd.DataFrame({"score": score.clip(0.0, 1.0),
                           "raw": grouped["score"].max(),
                           "suggested": grouped["suggested"].first(),
                           "reason": grouped["reason"].agg("; ".join),
                           "kinds": grouped["kind"].agg(lambda s: tuple(dict.fromkeys(s)))})
    rows = merged.index.to_numpy(np.int64)
    merged.insert(0, "image_id", ev.image_ids[rows])
    merged.insert(2, "given", given_labels(ev, rows))
    out = merged.sort_values(["score", "raw", "image_id"], ascending=[False, False, True],
                             kind="stable")
    if k is not None:
        out = out.head(k)
    return out.reset_index(drop=True)[ISSUE_COLUMNS]
