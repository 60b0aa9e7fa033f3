"""Rows for an image gallery: per-image prediction facts, ready to caption and draw.

Pure functions over an :class:`~analysis.evalset.EvalSet`: the dashboard's galleries (and any
other front end) render what these return. Look-ups by image id or capture go through the
EvalSet's own memoised indexes (:meth:`EvalSet.rows_of`, :meth:`EvalSet.capture_rows`).

A gallery table has ``image_id``, ``file_name`` and ``seq_id``; fastai-style galleries add the
:data:`FACT_COLUMNS` (predicted / actual / loss / p(predicted) / p(actual)), from which a
caption is written for the shown cards only.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.evalset import EvalSet, meta_values
from analysis.format import FASTAI_FIELDS
from analysis.ranking import losses

#: The fastai ``plot_top_losses`` facts of a gallery row, in caption order.
FACT_COLUMNS = FASTAI_FIELDS


def _ids_and_files(ev: EvalSet, rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: np.array(["nan" if v is None else str(v)
                            for v in meta_values(ev, name, rows)], dtype=object)
            for name in ("image_id", "file_name", "seq_id")}


def frame_predictions(ev: EvalSet, idx: np.ndarray | Sequence[int]) -> pd.DataFrame:
    """Per-image prediction facts for rows ``idx`` of ``ev`` (a capture's frames, say).

    Parameters
    ----------
    ev : EvalSet
        With ``image_id``, ``file_name``, ``seq_id`` and ``frame_num`` in its ``meta``.
    idx : array of int, shape (k,)
        Rows of ``ev``, in the order wanted.

    Returns
    -------
    DataFrame, k rows
        ``image_id``, ``file_name``, ``seq_id``, ``frame_num``, ``predicted`` (arg-max class
        name), ``p_predicted`` (its probability), ``actual`` (the label set joined with "+",
        ``"(no label)"`` when empty).

    Examples
    --------
    >>> from analysis.evalset import evalset_from_arrays
    >>> meta = pd.DataFrame({"image_id": ["a", "b"], "file_name": ["a.jpg", "b.jpg"],
    ...                      "seq_id": ["s", "s"], "frame_num": [1, 2]})
    >>> ev = evalset_from_arrays(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]),
    ...                          classes=["gazelle", "zebra"], meta=meta)
    >>> frame_predictions(ev, [1])[["image_id", "predicted", "actual"]].values.tolist()
    [['b', 'zebra', 'gazelle']]
    """
    idx = np.asarray(idx, dtype=np.int64)
    probs = np.asarray(ev.probs[idx], dtype=np.float32)
    pred = probs.argmax(axis=1) if len(idx) else np.zeros(0, dtype=np.int64)
    classes = np.asarray(ev.classes, dtype=object)
    labels = np.asarray(ev.labels[idx], dtype=bool)
    actual = ["+".join(classes[row]) or "(no label)" for row in labels]
    out = _ids_and_files(ev, idx)
    return pd.DataFrame({
        **out,
        "frame_num": ev.meta["frame_num"].iloc[idx].to_numpy(),
        "predicted": classes[pred] if len(idx) else np.zeros(0, dtype=object),
        "p_predicted": probs[np.arange(len(idx)), pred] if len(idx) else np.zeros(0),
        "actual": actual,
    })


def fastai_items(ev: EvalSet, rows: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, *,
                 largest: bool = True, limit: int | None = None) -> pd.DataFrame:
    """Gallery rows with the fastai caption facts, sorted by loss.

    Parameters
    ----------
    ev : EvalSet
    rows : array of int, shape (k,)
        Rows of ``ev`` to show (a confusion cell, a class's misses...).
    y_true, y_pred : array of int, shape (n,)
        The full-length targets of ``ev`` under the page's policy
        (:func:`analysis.evalset.targets`).
    largest : bool
        Largest loss first (default), else smallest first; ties keep ``rows`` order.
    limit : int, optional
        Keep only the first ``limit`` rows of that order (a gallery of a million-image cell
        reads the ids and files of the rows it can show, not of every row).

    Returns
    -------
    DataFrame, k rows (at most ``limit``)
        ``image_id, file_name, seq_id`` and :data:`FACT_COLUMNS`; ``loss`` is
        :func:`analysis.ranking.losses` against the scored actual class ``y_true``.

    Examples
    --------
    >>> from analysis.evalset import evalset_from_arrays
    >>> meta = pd.DataFrame({"image_id": ["a", "b"], "file_name": ["a.jpg", "b.jpg"],
    ...                      "seq_id": ["s", "t"]})
    >>> ev = evalset_from_arrays(np.array([[0.6, 0.4], [0.1, 0.9]]), np.array([1, 0]),
    ...                          meta=meta)
    >>> y = np.array([1, 0]); items = fastai_items(ev, [0, 1], y, np.array([0, 1]))
    >>> items["image_id"].tolist(), items["loss"].round(3).tolist()
    (['b', 'a'], [2.303, 0.916])
    """
    rows = np.asarray(rows, dtype=np.int64)
    t, p = np.asarray(y_true)[rows], np.asarray(y_pred)[rows]
    p_actual = ev.probs[rows, t].astype(np.float64)  # two values per row, not (k, C)
    loss = losses(p_actual[:, None], np.ones((len(rows), 1), bool),
                  actual=np.zeros(len(rows), np.int64))  # -log p_actual, clipped as losses()
    order = np.lexsort((np.arange(len(rows)), -loss if largest else loss))[:limit]
    rows, t, p, loss, p_actual = rows[order], t[order], p[order], loss[order], p_actual[order]
    classes = np.asarray(ev.classes, dtype=object)
    return pd.DataFrame({
        **_ids_and_files(ev, rows),
        "predicted": classes[p], "actual": classes[t], "loss": loss,
        "p_predicted": ev.probs[rows, p].astype(np.float64), "p_actual": p_actual,
    })


def ranked_items(ev: EvalSet, table: pd.DataFrame) -> pd.DataFrame:
    """Gallery rows for an :func:`analysis.ranking.top_losses` table, in its order.

    Parameters
    ----------
    ev : EvalSet
        The set the table was ranked from (every ``image_id`` is one of its rows).
    table : DataFrame
        ``image_id`` and the :data:`FACT_COLUMNS`; its index, when named ``row`` (as
        top_losses gives it), holds the rows in ``ev`` (checked against the ids).

    Returns
    -------
    DataFrame, ``len(table)`` rows
        ``image_id, file_name, seq_id`` (joined from ``ev.meta``) and :data:`FACT_COLUMNS`.

    Raises
    ------
    KeyError
        An ``image_id`` of ``table`` is not in ``ev``.
    """
    ids = table["image_id"].astype(str).to_numpy(dtype=object)
    rows = table.index.to_numpy() if table.index.name == "row" else None
    if rows is None or not (len(rows) == 0 or (rows.min() >= 0 and rows.max() < len(ev)
                                               and np.all(ev.image_ids[rows] == ids))):
        rows = ev.rows_of(ids)  # not top_losses' own rows of this set: look the ids up
    if (rows < 0).any():
        raise KeyError(f"ranked_items: image_id {ids[np.flatnonzero(rows < 0)[0]]!r} of the "
                       "table is not in the eval set")
    out = pd.DataFrame(_ids_and_files(ev, rows))
    for col in FACT_COLUMNS:
        out[col] = table[col].to_numpy()
    return out
