"""Slices: restrict any analysis to sites, seasons, day/night, frame positions or splits.

A filter is a boolean mask over ``EvalSet.meta`` (``EvalSet.subset(mask)`` applies it);
:func:`slice_table` scores every value of a column at once (worst first) from per-slice
(TP, predicted, true) counts, three ``np.bincount`` calls in all.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.evalset import EvalSet, Policy, memoised, targets
from analysis.metrics import summary_from_counts

SLICE_COLUMNS = ("location", "season", "day_night", "frame_num", "split")
Filter = str | int | Sequence[str | int] | None


def _values(value: Filter) -> list:
    return list(value) if isinstance(value, (list, tuple, set, np.ndarray, pd.Index)) \
        else [value]


def slice_mask(meta: pd.DataFrame, *, location: Filter = None, season: Filter = None,
               day_night: Filter = None, frame_num: Filter = None,
               split: Filter = None) -> np.ndarray:
    """Rows of ``meta`` matching every given filter (None = any; a list = any of its values).

    Parameters
    ----------
    meta : DataFrame
        ``EvalSet.meta``.
    location, season, day_night, split : str or list of str, optional
    frame_num : int or list of int, optional
        1-based frame position within the capture.

    Returns
    -------
    ndarray of bool, shape (len(meta),)

    Raises
    ------
    ValueError
        A filtered column is absent from ``meta``.

    Examples
    --------
    >>> meta = pd.DataFrame({"location": ["D04", "E08"], "frame_num": [1, 2]})
    >>> slice_mask(meta, location=["D04"], frame_num=1).tolist()
    [True, False]
    """
    mask = np.ones(len(meta), bool)
    for col, value in (("location", location), ("season", season), ("day_night", day_night),
                       ("frame_num", frame_num), ("split", split)):
        if value is None:
            continue
        if col not in meta.columns:
            raise ValueError(f"slice_mask: meta has no column {col!r}; has {list(meta.columns)}")
        wanted = _values(value)
        series = meta[col]
        if col == "frame_num":
            hit = series.isin([int(v) for v in wanted])
        else:
            hit = series.astype("object").isin([str(v) for v in wanted])
        mask &= hit.to_numpy(dtype=bool, na_value=False)
    return mask


@memoised
def slice_table(ev: EvalSet, *, by: str | Sequence[str] = "location",
                policy: Policy = "set", min_images: int = 1) -> pd.DataFrame:
    """Per-slice n, accuracy, balanced accuracy and macro F1, worst macro F1 first.

    Parameters
    ----------
    ev : EvalSet
    by : str or list of str
        Column(s) of ``ev.meta``; missing values form their own slice (shown as None).
    policy : {"set", "primary"}
    min_images : int
        Slices with fewer images are left out.

    Returns
    -------
    DataFrame
        Columns ``by...`` then ``n, accuracy, balanced_accuracy, macro_f1, weighted_f1``;
        sorted by macro F1 ascending (ties: fewer images first).
    """
    cols = [by] if isinstance(by, str) else list(by)
    missing = [c for c in cols if c not in ev.meta.columns]
    if missing:
        raise ValueError(f"slice_table: meta has no column(s) {missing}; has "
                         f"{list(ev.meta.columns)}")
    codes = ev.meta.groupby(cols, dropna=False, sort=False, observed=True).ngroup()
    codes = codes.to_numpy(np.int64)
    g = int(codes.max()) + 1 if len(codes) else 0
    first_row = np.unique(codes, return_index=True)[1]
    c = ev.n_classes
    y_true, y_pred = targets(ev, policy=policy)
    size = g * c
    tp = np.bincount((codes * c + y_true)[y_true == y_pred], minlength=size).reshape(g, c)
    pred = np.bincount(codes * c + y_pred, minlength=size).reshape(g, c)
    true = np.bincount(codes * c + y_true, minlength=size).reshape(g, c)
    stats = summary_from_counts(tp, pred, true)
    table = ev.meta[cols].iloc[first_row].reset_index(drop=True).astype("object")
    table = table.where(table.notna(), None)
    for name in ("n", "accuracy", "balanced_accuracy", "macro_f1", "weighted_f1"):
        table[name] = stats[name]
    table = table[table["n"] >= min_images]
    return table.sort_values(["macro_f1", "n"], kind="stable").reset_index(drop=True)
