"""Captures (sequences of 1-3 frames): accuracy by frame, capture-level metrics, suspects.

Snapshot Serengeti labels captures, not frames: the capture's species is copied onto every
frame, so a frame the animal has already left still says "zebra" (an *inherited label*), and a
herd of two species is sometimes annotated with only one (a *missed species*). :func:`suspects`
ranks the frames where the model's probabilities point at either, with a readable reason.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from analysis.evalset import (EvalSet, Policy, aggregate_sequences, capture_codes,
                              given_labels, memoised, meta_values, targets)
from analysis.metrics import confusion, summary

log = logging.getLogger(__name__)

KINDS = ("inherited_label", "missed_species")
#: A missed-species frame is kept when its score reaches this share of ``min_prob``.
FRAME_FLOOR = 0.75
SUSPECT_COLUMNS = ["image_id", "seq_id", "kind", "score", "reason", "suggested"]
_CHUNK = 1 << 18


def frame_accuracy(ev: EvalSet, *, policy: Policy = "set") -> pd.DataFrame:
    """Accuracy by frame position within the capture.

    Parameters
    ----------
    ev : EvalSet
        Needs ``meta["frame_num"]`` (1-based).
    policy : {"set", "primary"}

    Returns
    -------
    DataFrame
        ``frame_num, n, correct, accuracy``, one row per frame position present, ascending.

    Examples
    --------
    Inherited labels show up as a drop at frames 2-3: the animal has left, the label stayed.
    """
    y_true, y_pred = targets(ev, policy=policy)
    frame = pd.to_numeric(ev.meta["frame_num"], errors="coerce").to_numpy(np.float64)
    ok = ~np.isnan(frame)
    df = pd.DataFrame({"frame_num": frame[ok].astype(np.int64),
                       "correct": (y_true == y_pred)[ok]})
    out = df.groupby("frame_num", sort=True)["correct"].agg(n="size", correct="sum")
    out["correct"] = out["correct"].astype(np.int64)
    out["accuracy"] = out["correct"] / out["n"]
    return out.reset_index()


def aggregate(ev: EvalSet, *, how: str = "mean") -> EvalSet:
    """One row per capture (see :func:`analysis.evalset.aggregate_sequences`)."""
    return aggregate_sequences(ev, how=how)


def level_summary(ev: EvalSet, *, policy: Policy = "set", how: str = "mean") -> pd.DataFrame:
    """Image-level and capture-level headline metrics side by side.

    Parameters
    ----------
    ev : EvalSet
    policy : {"set", "primary"}
    how : {"mean", "max", "vote"}
        How frame probabilities are aggregated per capture.

    Returns
    -------
    DataFrame
        Index ``image``, ``sequence``; columns ``n, accuracy, balanced_accuracy, macro_f1,
        weighted_f1``.
    """
    rows = {}
    for level, e in (("image", ev), ("sequence", aggregate(ev, how=how))):
        y_true, y_pred = targets(e, policy=policy)
        rows[level] = summary(confusion(y_true, y_pred, e.n_classes))
    return pd.DataFrame.from_dict(rows, orient="index")[
        ["n", "accuracy", "balanced_accuracy", "macro_f1", "weighted_f1"]]


def _frame_position(ev: EvalSet, rows: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """(frame_num, frames in the capture) of ``rows``; the count falls back to frames present."""
    meta = ev.meta
    frame = pd.to_numeric(meta["frame_num"], errors="coerce").to_numpy(np.float64)[rows] \
        if "frame_num" in meta.columns else np.full(len(rows), np.nan)
    present = np.bincount(codes)[codes[rows]].astype(np.float64)
    total = (pd.to_numeric(meta["seq_num_frames"], errors="coerce").to_numpy(np.float64)[rows]
             if "seq_num_frames" in meta.columns else np.full(len(rows), np.nan))
    total = np.where(np.isnan(total), present, total)
    return frame, total


def _fmt_frame(f: float) -> str:
    return "?" if np.isnan(f) else str(int(f))


def _species_mask(ev: EvalSet, empty: int | None) -> np.ndarray:
    mask = np.ones(ev.n_classes, bool)
    if empty is not None:
        mask[empty] = False
    return mask


def inherited_labels(ev: EvalSet, *, empty_class: str = "empty",
                     min_confidence: float = 0.5) -> pd.DataFrame:
    """Frames labelled with a species the model says is gone, while another frame shows it.

    A frame i labelled X (X not empty, empty not in its label set) is a suspect when
    ``p_i(empty) >= min_confidence`` and some other frame j of the same capture has
    ``p_j(X) >= min_confidence``. Score = ``p_i(empty) * p_j(X)`` for the best such (j, X).

    Returns
    -------
    DataFrame
        :data:`SUSPECT_COLUMNS`, kind ``inherited_label``, suggested ``"empty"``.
    """
    e = ev.class_index(empty_class)
    codes, _ = capture_codes(ev)
    species = _species_mask(ev, e)
    n_species = (np.add.reduce(ev.labels.view(np.uint8), axis=1, dtype=np.uint8)
                 - ev.labels[:, e].view(np.uint8)) if len(ev) else np.zeros(0, np.uint8)
    p_empty = ev.probs[:, e]
    cand = np.flatnonzero((p_empty >= min_confidence) & (n_species > 0) & ~ev.labels[:, e])
    if not len(cand):
        return pd.DataFrame(columns=SUSPECT_COLUMNS)
    # Every frame of the candidates' captures, paired with each candidate (captures are short).
    members = np.flatnonzero(np.isin(codes, np.unique(codes[cand])))
    pairs = pd.DataFrame({"i": cand, "code": codes[cand]}).merge(
        pd.DataFrame({"j": members, "code": codes[members]}), on="code")
    pairs = pairs[pairs["i"] != pairs["j"]]
    i, j = pairs["i"].to_numpy(np.int64), pairs["j"].to_numpy(np.int64)
    support = np.where(ev.labels[i] & species, ev.probs[j], -1.0)
    x = support.argmax(axis=1)
    px = support[np.arange(len(x)), x]
    best = (pd.DataFrame({"i": i, "j": j, "x": x, "px": px})
            .query("px >= @min_confidence")
            .sort_values(["i", "px", "j"], ascending=[True, False, True], kind="stable")
            .drop_duplicates("i"))
    if best.empty:
        return pd.DataFrame(columns=SUSPECT_COLUMNS)
    i, j = best["i"].to_numpy(np.int64), best["j"].to_numpy(np.int64)
    x, px = best["x"].to_numpy(np.int64), best["px"].to_numpy(np.float64)
    pe = p_empty[i].astype(np.float64)
    fi, total = _frame_position(ev, i, codes)
    fj, _ = _frame_position(ev, j, codes)
    names = np.asarray(ev.classes, dtype=object)
    given = [", ".join(g) for g in given_labels(ev, i)]
    reason = [f"frame {_fmt_frame(a)} of {_fmt_frame(t)}: model says {empty_class} ({p:.2f}) "
              f"but labelled {g}; frame {_fmt_frame(b)} shows {s} ({q:.2f})"
              for a, t, p, g, b, s, q in zip(fi, total, pe, given, fj, names[x], px)]
    return pd.DataFrame({"image_id": ev.image_ids[i],
                         "seq_id": meta_values(ev, "seq_id", i),
                         "kind": "inherited_label", "score": pe * px, "reason": reason,
                         "suggested": empty_class}, columns=SUSPECT_COLUMNS)


def _absent_confident(ev: EvalSet, empty: int | None, min_prob: float) -> np.ndarray:
    """Rows where some species outside the label set has probability >= min_prob."""
    out = np.zeros(len(ev), bool)
    for lo in range(0, len(ev), _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        hit = ev.probs[sl] >= min_prob
        np.greater(hit, ev.labels[sl], out=hit)  # hit and not labelled
        if empty is not None:
            hit[:, empty] = False
        out[sl] = hit.any(axis=1)
    return out


def _missed_candidates(ev: EvalSet, cand: np.ndarray, species: np.ndarray, empty: int | None,
                       min_prob: float, allowed_pair: np.ndarray) -> pd.DataFrame:
    """Frames with an absent, co-occurring species at ``p >= min_prob``: ``row, y, p``."""
    if empty is not None:
        cand = cand[~ev.labels[cand, empty]]
    lab = ev.labels[cand]
    allowed = (lab.astype(np.int32) @ allowed_pair.astype(np.int32)) > 0
    q = np.where(allowed & ~lab & species, ev.probs[cand], -1.0)
    r, y = np.nonzero(q >= min_prob)  # every qualifying species, not only the top one
    return pd.DataFrame({"row": cand[r], "y": y, "p": q[r, y].astype(np.float64)})


def missed_species(ev: EvalSet, *, empty_class: str | None = "empty",
                   min_prob: float = 0.2, min_cooccurrence: int = 1,
                   cooc: np.ndarray | None = None) -> pd.DataFrame:
    """Frames of captures where the model sees a species nobody annotated.

    A species Y is *seen* on frame j when Y is not in j's label set, is not empty, has
    ``p_j(Y) >= min_prob``, and is annotated together with some class X of the label set in at
    least ``min_cooccurrence`` captures (a known companion, as wildebeest is of zebra; a Y that
    never co-occurs is a plain misidentification, left to confident learning and top losses).
    Labels belong to the capture, so every frame of that capture whose label set lacks Y is a
    suspect, unless the model calls the frame empty (p(empty) >= 0.5: the herd has left).
    Score = ``sqrt(p_i(Y) * max_j p_j(Y))``, the geometric mean of the frame's own probability
    for Y and the capture's largest, so a species seen on every frame of a herd outranks one
    confident slip on a single frame; frames scoring below ``FRAME_FLOOR * min_prob`` are
    dropped. One row per frame (its best Y).

    A softmax model splits its probability between the species of a mixed herd, so the second
    species rarely passes 0.5: ``min_prob`` (default 0.2) is a share of probability, and the
    ranking by score puts the clearest cases first.

    Parameters
    ----------
    ev : EvalSet
    empty_class : str or None
    min_prob : float
    min_cooccurrence : int
    cooc : ndarray of int, shape (C, C), optional
        Capture-level co-occurrence counts; default
        ``analysis.cooccurrence.cooccurrence(ev, by="capture")``.

    Returns
    -------
    DataFrame
        :data:`SUSPECT_COLUMNS`, kind ``missed_species``; suggested = the label set plus Y.
    """
    from analysis.cooccurrence import cooccurrence

    e = None if empty_class is None else ev.class_index(empty_class)
    species = _species_mask(ev, e)
    cand = np.flatnonzero(_absent_confident(ev, e, min_prob))
    if not len(cand):
        return pd.DataFrame(columns=SUSPECT_COLUMNS)
    cooc = cooccurrence(ev, by="capture") if cooc is None else np.asarray(cooc)
    allowed_pair = cooc >= max(min_cooccurrence, 1)
    np.fill_diagonal(allowed_pair, False)
    seen = _missed_candidates(ev, cand, species, e, min_prob, allowed_pair)
    if seen.empty:
        return pd.DataFrame(columns=SUSPECT_COLUMNS)
    codes, _ = capture_codes(ev)
    seen["code"] = codes[seen["row"].to_numpy()]
    # The capture's strongest evidence per species, spread to its frames.
    best = (seen.sort_values(["code", "y", "p", "row"], ascending=[True, True, False, True])
            .drop_duplicates(["code", "y"])
            .rename(columns={"row": "src", "p": "score"}))
    members = np.flatnonzero(np.isin(codes, best["code"].unique()))
    frames = pd.DataFrame({"row": members, "code": codes[members]}).merge(best, on="code")
    row, y = frames["row"].to_numpy(np.int64), frames["y"].to_numpy(np.int64)
    keep = ~ev.labels[row, y]
    if e is not None:
        keep &= ev.probs[row, e] < 0.5  # the herd has left this frame
    frames = (frames[keep]
              .assign(own=ev.probs[row[keep], y[keep]].astype(np.float64))
              .sort_values(["row", "score", "own", "y"], ascending=[True, False, False, True])
              .drop_duplicates("row"))
    if frames.empty:
        return pd.DataFrame(columns=SUSPECT_COLUMNS)
    row, src = frames["row"].to_numpy(np.int64), frames["src"].to_numpy(np.int64)
    y, best, own = (frames["y"].to_numpy(np.int64), frames["score"].to_numpy(np.float64),
                    frames["own"].to_numpy(np.float64))
    # Geometric mean of the frame's own evidence and the capture's best: a species seen on
    # every frame of a herd outranks one confident slip of the model on a single frame.
    score = np.sqrt(own * best)
    keep = score >= FRAME_FLOOR * min_prob
    row, src, y, best, own, score = (a[keep] for a in (row, src, y, best, own, score))
    lab = ev.labels[row]
    # The annotated partner X that co-occurs with Y most often, for the reason.
    per_x = np.diag(cooc).astype(np.float64)
    rate = np.divide(cooc.astype(np.float64), per_x[:, None], out=np.zeros(cooc.shape),
                     where=per_x[:, None] > 0)
    partner_rate = np.where(lab, rate[:, y].T, -1.0)
    x = partner_rate.argmax(axis=1)
    names = np.asarray(ev.classes, dtype=object)
    given = given_labels(ev, row)
    f_row, total = _frame_position(ev, row, codes)
    f_src, _ = _frame_position(ev, src, codes)
    reason = []
    for k in range(len(row)):
        seen_at = (f"model says {names[y[k]]} ({own[k]:.2f})" if row[k] == src[k] else
                   f"frame {_fmt_frame(f_row[k])} of {_fmt_frame(total[k])}: model says "
                   f"{names[y[k]]} ({own[k]:.2f}) here, {best[k]:.2f} on frame "
                   f"{_fmt_frame(f_src[k])}")
        reason.append(f"{seen_at}; not in labels [{', '.join(given[k])}]; {names[y[k]]} is "
                      f"annotated with {names[x[k]]} in {partner_rate[k, x[k]]:.0%} of "
                      f"{names[x[k]]} captures")
    return pd.DataFrame({"image_id": ev.image_ids[row],
                         "seq_id": meta_values(ev, "seq_id", row),
                         "kind": "missed_species", "score": score, "reason": reason,
                         "suggested": [",".join((*g, names[yy])) for g, yy in zip(given, y)]},
                        columns=SUSPECT_COLUMNS)


@memoised
def suspects(ev: EvalSet, *, empty_class: str | None = "empty", min_confidence: float = 0.5,
             min_missed: float = 0.2, min_cooccurrence: int = 1,
             kinds: tuple[str, ...] = KINDS) -> pd.DataFrame:
    """Ranked sequence suspects: inherited labels and missed species.

    Parameters
    ----------
    ev : EvalSet
        Image-level rows with ``meta["seq_id"]`` and ``meta["frame_num"]``.
    empty_class : str or None
        Name of the "nothing here" class; None (a dataset without one) skips
        ``inherited_label``.
    min_confidence : float
        Probability the model must give both claims of an inherited label (empty here, X on
        another frame).
    min_missed : float
        Probability share of a missed species on some frame of the capture (see
        :func:`missed_species`).
    min_cooccurrence : int
        Captures in which a missed species must be annotated together with one of the
        image's labels (see :func:`missed_species`).
    kinds : tuple of {"inherited_label", "missed_species"}

    Returns
    -------
    DataFrame
        ``image_id, seq_id, kind, score, reason, suggested``, sorted by score (descending),
        then image id. ``score`` in [0, 1]; ``suggested`` the proposed label set,
        comma-separated. An image can appear once per kind.

    Examples
    --------
    ``frame 2 of 3: model says empty (0.97) but labelled zebra; frame 1 shows zebra (0.94)``
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"suspects: unknown kind(s) {sorted(unknown)}; choose from {list(KINDS)}")
    if empty_class is not None and empty_class not in ev.classes:
        raise ValueError(f"suspects: empty class {empty_class!r} is not a class of this run "
                         f"(classes: {ev.classes[:8]}...); pass empty_class=None to skip "
                         f"inherited labels")
    parts = []
    if "inherited_label" in kinds and empty_class is not None:
        parts.append(inherited_labels(ev, empty_class=empty_class,
                                      min_confidence=min_confidence))
    if "missed_species" in kinds:
        parts.append(missed_species(ev, empty_class=empty_class, min_prob=min_missed,
                                    min_cooccurrence=min_cooccurrence))
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=SUSPECT_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    out["score"] = out["score"].astype(np.float64)
    out = out.sort_values(["score", "image_id", "kind"], ascending=[False, True, True],
                          kind="stable")
    log.info("sequence suspects: %s", out["kind"].value_counts().to_dict())
    return out.reset_index(drop=True)
