"""Confusion-matrix views: normalisation, most-confused pairs, class orderings, top-N + other.

The matrix itself comes from :func:`analysis.metrics.confusion` (rows actual, columns
predicted); drawing is :func:`analysis.plots.confusion_figure`.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

OTHER = "other"


def normalize(cm: np.ndarray, *, by: Literal["none", "true", "pred"] = "none") -> np.ndarray:
    """Counts, or rates over each row (``true``: recall view) or column (``pred``: precision).

    Parameters
    ----------
    cm : ndarray, shape (C, C)
    by : {"none", "true", "pred"}

    Returns
    -------
    ndarray of float64, shape (C, C)
        Rows (or columns) with no images are all zero.

    Examples
    --------
    >>> normalize(np.array([[3, 1], [0, 0]]), by="true").tolist()
    [[0.75, 0.25], [0.0, 0.0]]
    """
    cm = np.asarray(cm, dtype=np.float64)
    if by == "none":
        return cm.copy()
    if by not in ("true", "pred"):
        raise ValueError(f"normalize: by must be 'none', 'true' or 'pred', got {by!r}")
    axis = 1 if by == "true" else 0
    total = cm.sum(axis=axis, keepdims=True)
    return np.divide(cm, total, out=np.zeros_like(cm), where=total > 0)


def most_confused(cm: np.ndarray, classes: list[str], *, k: int = 10) -> pd.DataFrame:
    """The ``k`` largest off-diagonal cells (fastai's ``most_confused``).

    Parameters
    ----------
    cm : ndarray of int, shape (C, C)
    classes : list of str
    k : int

    Returns
    -------
    DataFrame
        ``actual, predicted, count`` (and ``rate``: share of the actual class's images),
        largest count first, ties by class order; zero cells left out.
    """
    cm = np.asarray(cm)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    flat = off.reshape(-1)
    nz = np.flatnonzero(flat)
    order = nz[np.lexsort((nz, -flat[nz]))][:k]
    actual, predicted = np.divmod(order, cm.shape[1])
    support = cm.sum(axis=1)
    names = np.asarray(classes, dtype=object)
    return pd.DataFrame({"actual": names[actual], "predicted": names[predicted],
                         "count": flat[order].astype(np.int64),
                         "rate": flat[order] / np.maximum(support[actual], 1)})


def _cluster_order(cm: np.ndarray) -> list[int]:
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    rates = normalize(cm, by="true")
    sim = (rates + rates.T) / 2
    np.fill_diagonal(sim, 0)
    dist = 1.0 - sim / max(sim.max(), 1e-12)
    np.fill_diagonal(dist, 0)
    if len(cm) < 3:
        return list(range(len(cm)))
    tree = linkage(squareform(dist, checks=False), method="average", optimal_ordering=True)
    return [int(i) for i in leaves_list(tree)]


def class_order(cm: np.ndarray, classes: list[str], *,
                by: Literal["support", "name", "cluster"] = "support") -> list[int]:
    """A permutation of class indices for displaying a confusion matrix.

    Parameters
    ----------
    cm : ndarray, shape (C, C)
    classes : list of str
    by : {"support", "name", "cluster"}
        ``support``: most images first (ties by name). ``name``: alphabetical.
        ``cluster``: average-linkage hierarchical clustering of the symmetrised row-normalised
        confusion ``(R + R.T) / 2`` (distance ``1 - similarity / max``), leaves in optimal
        order, so classes that are confused with each other sit side by side.

    Returns
    -------
    list of int
    """
    names = np.asarray(classes, dtype=str)
    if by == "name":
        return [int(i) for i in np.argsort(names, kind="stable")]
    if by == "support":
        return [int(i) for i in np.lexsort((names, -np.asarray(cm).sum(axis=1)))]
    if by == "cluster":
        return _cluster_order(np.asarray(cm))
    raise ValueError(f"class_order: by must be 'support', 'name' or 'cluster', got {by!r}")


def top_n_other(cm: np.ndarray, classes: list[str], *, n: int
                ) -> tuple[np.ndarray, list[str]]:
    """Keep the ``n`` classes with most support and pool the rest into ``"other"``.

    Parameters
    ----------
    cm : ndarray of int, shape (C, C)
    classes : list of str
    n : int

    Returns
    -------
    cm2 : ndarray, shape (n + 1, n + 1), or the input's shape when ``n >= C``
        Kept classes in their original order, ``other`` last; the total count is unchanged.
    classes2 : list of str
    """
    cm = np.asarray(cm)
    if n >= len(classes):
        return cm.copy(), list(classes)
    keep = np.sort(np.lexsort((np.arange(len(classes)), -cm.sum(axis=1)))[:n])
    index = np.full(len(classes), n)
    index[keep] = np.arange(n)
    out = np.zeros((n + 1, n + 1), dtype=cm.dtype)
    np.add.at(out, (index[:, None], index[None, :]), cm)
    return out, [classes[i] for i in keep] + [OTHER]


def cell_mask(y_true: np.ndarray, y_pred: np.ndarray, a: int | None, p: int | None
              ) -> np.ndarray:
    """Rows in confusion cell (actual ``a``, predicted ``p``); None matches any class.

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    mask = np.ones(len(y_true), bool)
    if a is not None:
        mask &= np.asarray(y_true) == a
    if p is not None:
        mask &= np.asarray(y_pred) == p
    return mask
