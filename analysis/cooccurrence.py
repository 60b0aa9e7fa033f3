"""Species co-occurrence and the confusions it explains.

When two species share frames (zebra and wildebeest herds), a single-label evaluation charges
the model for naming the *other* species that is really there. For a pair (A, B),
:func:`pair_stats` compares A's error rate on images where B is also annotated with those where
it is not, and measures the share of A -> B confusions that fall on images where B is annotated
("explained by co-presence"). :func:`rank_pairs` does this for every pair at once.

Which confusions count: an A -> B confusion is an image whose *primary* (first) label is A and
whose arg-max is B. This is deliberately the single-label (``primary``) view: under the ``set``
policy an image annotated {A, B} and predicted B is correct, so the confusions co-presence
explains are exactly those the ``primary`` policy reports and the ``set`` policy forgives. The
``policy`` argument sets how the error *rates* are scored.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from analysis.evalset import EvalSet, Policy, capture_codes, memoised, targets

log = logging.getLogger(__name__)

_CHUNK = 1 << 18
PAIR_COLUMNS = ["a", "b", "images_together", "a_images", "n_a_with_b", "n_a_without_b",
                "a_error_with_b", "a_error_without_b", "a_to_b", "a_to_b_with_b",
                "a_to_b_explained"]


def _label_counts(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels per row, first labelled column per row)."""
    counts = np.add.reduce(labels.view(np.uint8), axis=1, dtype=np.uint8) if len(labels) \
        else np.zeros(0, np.uint8)
    return counts, labels.argmax(axis=1)


def _gram(labels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """``(L * w)^T @ L`` as exact int64 counts.

    A single-label row only adds to the diagonal (one ``bincount``); only the few multi-label
    rows go through a matrix product, in blocks (float32 products are exact below 2^24).
    """
    c = labels.shape[1]
    counts, first = _label_counts(labels)
    single = counts == 1
    w = None if weights is None else weights[single]
    out = np.diag(np.rint(np.bincount(first[single], weights=w, minlength=c)).astype(np.int64))
    multi = np.flatnonzero(counts > 1)
    for lo in range(0, len(multi), _CHUNK):
        rows = multi[lo:lo + _CHUNK]
        block = labels[rows].astype(np.float32)
        left = block if weights is None else block * weights[rows, None].astype(np.float32)
        out += np.rint(left.T @ block).astype(np.int64)
    return out


def capture_labels(ev: EvalSet) -> np.ndarray:
    """Union of the frames' label sets per capture, shape (n_captures, C), bool."""
    codes, n_groups = capture_codes(ev)
    out = np.zeros((n_groups, ev.n_classes), bool)
    counts, first = _label_counts(ev.labels)
    single = counts == 1
    out[codes[single], first[single]] = True
    multi = np.flatnonzero(counts > 1)
    r, c = np.nonzero(ev.labels[multi])
    out[codes[multi[r]], c] = True
    return out


def cooccurrence(ev: EvalSet, *, by: str = "image") -> np.ndarray:
    """Co-occurrence counts of annotated classes.

    Parameters
    ----------
    ev : EvalSet
    by : {"image", "capture"}
        Count images whose label set holds both classes, or captures (frames' sets united).

    Returns
    -------
    ndarray of int64, shape (C, C)
        Symmetric; ``[a, b]`` = images (captures) annotated with both a and b; the diagonal
        holds each class's image (capture) count.

    Examples
    --------
    >>> cm = cooccurrence(ev, by="capture")  # doctest: +SKIP
    >>> cm[ev.class_index("zebra"), ev.class_index("wildebeest")]  # doctest: +SKIP
    """
    if by == "image":
        return _gram(ev.labels)
    if by == "capture":
        return _gram(capture_labels(ev))
    raise ValueError(f"cooccurrence: by must be 'image' or 'capture', got {by!r}")


def _pair_counts(ev: EvalSet, policy: Policy) -> dict[str, np.ndarray]:
    """Every (C, C) count the pair statistics need, in one pass."""
    c = ev.n_classes
    y_true, y_pred = targets(ev, policy=policy)
    err = (y_true != y_pred).astype(np.float32)
    primary = ev.primary.astype(np.int64)
    wrong = np.flatnonzero(primary != y_pred)
    with_b = ev.labels[wrong, y_pred[wrong]]
    flat = primary[wrong] * c + y_pred[wrong]
    return {"together": _gram(ev.labels),
            "err_with": _gram(ev.labels, err),
            "a_to_b": np.bincount(flat, minlength=c * c).reshape(c, c),
            "a_to_b_with_b": np.bincount(flat[with_b], minlength=c * c).reshape(c, c)}


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, np.float64)
    den = np.asarray(den, np.float64)
    return np.divide(num, den, out=np.full(np.broadcast_shapes(num.shape, den.shape), np.nan),
                     where=den > 0)


def _pair_table(ev: EvalSet, counts: dict[str, np.ndarray]) -> pd.DataFrame:
    together, err_with = counts["together"], counts["err_with"]
    n_a = np.diag(together)[:, None]
    err_a = np.diag(err_with)[:, None]
    n_without = n_a - together
    c = ev.n_classes
    a, b = np.nonzero(~np.eye(c, dtype=bool))
    names = np.asarray(ev.classes, dtype=object)
    table = {"a": names[a], "b": names[b],
             "images_together": together[a, b],
             "a_images": np.broadcast_to(n_a, (c, c))[a, b],
             "n_a_with_b": together[a, b],
             "n_a_without_b": n_without[a, b],
             "a_error_with_b": _ratio(err_with, together)[a, b],
             "a_error_without_b": _ratio(err_a - err_with, n_without)[a, b],
             "a_to_b": counts["a_to_b"][a, b],
             "a_to_b_with_b": counts["a_to_b_with_b"][a, b],
             "a_to_b_explained": _ratio(counts["a_to_b_with_b"], counts["a_to_b"])[a, b]}
    return pd.DataFrame(table, columns=PAIR_COLUMNS)


def pair_stats(ev: EvalSet, a: str, b: str, *, policy: Policy = "set") -> dict:
    """Error of class A with and without B annotated, and A -> B confusions explained by B.

    Parameters
    ----------
    ev : EvalSet
    a, b : str
        Class names (e.g. "zebra", "wildebeest"; nothing here assumes which).
    policy : {"set", "primary"}
        Scoring of A's error rates (an image counts for A when A is in its label set).

    Returns
    -------
    dict
        ``a, b, images_together`` (images annotated with both), ``a_images``,
        ``n_a_with_b, n_a_without_b``, ``a_error_with_b, a_error_without_b`` (error rates of
        A-annotated images with / without B, NaN when there are none), ``a_to_b`` (images with
        primary label A predicted B), ``a_to_b_with_b`` (those where B is annotated too) and
        ``a_to_b_explained`` = ``a_to_b_with_b / a_to_b`` (NaN without A -> B confusions).

    Examples
    --------
    >>> stats = pair_stats(ev, "zebra", "wildebeest", policy="primary")  # doctest: +SKIP
    >>> stats["a_to_b_explained"]  # doctest: +SKIP
    0.83
    """
    ia, ib = ev.class_index(a), ev.class_index(b)
    if ia == ib:
        raise ValueError(f"pair_stats: a and b are the same class {a!r}")
    sub = np.flatnonzero(ev.labels[:, ia] | (ev.primary == ia))
    counts = _pair_counts(ev.subset(sub), policy)
    row = _pair_table(ev, counts)
    rec = row[(row["a"] == a) & (row["b"] == b)].iloc[0].to_dict()
    return {k: (v if isinstance(v, str) else float(v) if k.startswith(("a_error", "a_to_b_ex"))
                else int(v)) for k, v in rec.items()}


@memoised
def rank_pairs(ev: EvalSet, *, policy: Policy = "set", k: int | None = 20,
               min_together: int = 1) -> pd.DataFrame:
    """All ordered class pairs ranked by confusion explained by co-presence.

    Parameters
    ----------
    ev : EvalSet
    policy : {"set", "primary"}
        Scoring of the error rates (see :func:`pair_stats`).
    k : int or None
        Rows to keep (None: all).
    min_together : int
        Keep pairs annotated together on at least this many images.

    Returns
    -------
    DataFrame
        Columns of :func:`pair_stats` (:data:`PAIR_COLUMNS`), sorted by ``a_to_b_with_b``
        (explained confusions), then ``a_to_b_explained``, ``images_together`` (descending),
        then names.
    """
    table = _pair_table(ev, _pair_counts(ev, policy))
    table = table[table["images_together"] >= min_together]
    table = table.sort_values(["a_to_b_with_b", "a_to_b_explained", "images_together", "a", "b"],
                              ascending=[False, False, False, True, True], na_position="last",
                              kind="stable")
    if k is not None:
        table = table.head(k)
    return table.reset_index(drop=True)
