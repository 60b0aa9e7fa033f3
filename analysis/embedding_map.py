"""The embedding map page's computations over an ``EvalSet`` and its run's stored embedding.

Each function takes the run folder (not the embedding array), loads the run through
``data.runs.load_run`` (memoised by the files' stamps) and aligns its rows to the eval set's
images by id, so a page can cache the answer keyed by the eval set and the folder alone.

- :func:`map_points`: 2-D coordinates of every image of ``ev`` (the run's projection, cached
  beside it by :func:`analysis.embedding.cached_projection`);
- :func:`colour_values`: what each point is coloured by (label, prediction, correctness,
  loss, site, day/night);
- :func:`selection_rows`: the exact rows inside a plotly selection's box or lasso outline
  (the selection event's geometry, never its drawn points) or the clicked point;
- :func:`similar_images`, :func:`duplicate_groups`, :func:`isolated_images`: "more like
  this", near-duplicate groups across captures and the most isolated images.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.embedding import (EmbeddingError, cached_projection, near_duplicates, neighbours,
                                outliers, select_box, select_polygon)
from analysis.evalset import EvalSet, targets
from analysis.ranking import losses

#: What the map can be coloured by (page option -> meaning).
COLOURS = ("label", "prediction", "correctness", "loss", "site", "day/night")
#: Options whose values are numbers (a colour scale) rather than categories (a legend).
CONTINUOUS = ("loss",)


def run_embedding(ev: EvalSet, run_dir: str | Path) -> np.ndarray:
    """The run's stored embedding aligned to ``ev``'s rows, shape (len(ev), D).

    Raises :class:`analysis.embedding.EmbeddingError` naming the run when it stored no
    embedding or lacks an image of ``ev``.
    """
    from data.runs import load_run

    run = load_run(run_dir)
    if run.embedding is None:
        raise EmbeddingError(f"{run_dir}: the run stored no embeddings (predict it with "
                             "`python -m training.predict ... --embeddings`)")
    rows = _run_rows(ev, run)
    return run.embedding[rows]


def _run_rows(ev: EvalSet, run) -> np.ndarray:
    ids = ev.meta["image_id"].astype(str).to_numpy()
    rows = pd.Index(np.asarray(run.image_ids).astype(str)).get_indexer(ids)
    if (rows < 0).any():
        raise EmbeddingError(f"{run.path}: image {ids[rows < 0][0]!r} of the view has no row in "
                             "the run")
    return rows


def map_points(ev: EvalSet, run_dir: str | Path, *, method: str = "auto",
               sample: int = 10_000, seed: int = 0) -> np.ndarray:
    """Map coordinates (len(ev), 2) of ``ev``'s images: the projection of the whole run,
    computed once and cached beside it (see :func:`analysis.embedding.cached_projection`)."""
    from data.runs import load_run

    run = load_run(run_dir)
    if run.embedding is None:
        raise EmbeddingError(f"{run_dir}: the run stored no embeddings (predict it with "
                             "`python -m training.predict ... --embeddings`)")
    xy = cached_projection(run_dir, run.embedding, run.image_ids, method=method, sample=sample,
                           seed=seed)
    return xy[_run_rows(ev, run)]


def colour_values(ev: EvalSet, by: str, *, policy: str = "set") -> np.ndarray:
    """One value per image of ``ev`` to colour the map by (see :data:`COLOURS`).

    Categories come back as strings (``"(unknown)"`` where the metadata is missing); ``loss``
    as float (the cross-entropy against the label set, :func:`analysis.ranking.losses`).

    Examples
    --------
    >>> from analysis.evalset import evalset_from_arrays
    >>> meta = pd.DataFrame({"image_id": ["a", "b"], "location": ["B03", None]})
    >>> ev = evalset_from_arrays(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]),
    ...                          classes=["gazelle", "zebra"], meta=meta)
    >>> colour_values(ev, "correctness").tolist(), colour_values(ev, "site").tolist()
    (['right', 'wrong'], ['B03', '(unknown)'])
    """
    if by not in COLOURS:
        raise ValueError(f"colour by {by!r}: choose one of {', '.join(COLOURS)}")
    classes = np.asarray(ev.classes, dtype=object)
    if by == "label":
        return classes[ev.primary].astype(str)
    if by == "prediction":
        return classes[ev.probs.argmax(axis=1)].astype(str)
    if by == "correctness":
        y_true, y_pred = targets(ev, policy=policy)
        return np.where(y_true == y_pred, "right", "wrong")
    if by == "loss":
        return losses(ev.probs, ev.labels).astype(np.float64)
    column = "location" if by == "site" else "day_night"
    if column not in ev.meta.columns:
        return np.full(len(ev), "(unknown)", dtype=object).astype(str)
    return ev.meta[column].astype("string").fillna("(unknown)").to_numpy(dtype=str)


def _outline(entry: Mapping, kind: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        x = np.asarray(entry["x"], dtype=np.float64)
        y = np.asarray(entry["y"], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise EmbeddingError(f"selection {kind}: expected numeric 'x' and 'y' lists, got "
                             f"{dict(entry)!r:.200}") from None
    if x.shape != y.shape or x.ndim != 1:
        raise EmbeddingError(f"selection {kind}: 'x' and 'y' differ in length ({x.shape}, "
                             f"{y.shape})")
    return x, y


def selection_rows(selection: Mapping | None, xy: np.ndarray) -> tuple[np.ndarray | None,
                                                                         int | None]:
    """Rows of ``xy`` inside a plotly selection, and the clicked row.

    Parameters
    ----------
    selection : mapping or None
        ``st.plotly_chart(on_select="rerun")``'s ``event.selection``: ``box`` (list of
        ``{"x": [x0, x1], "y": [y0, y1]}``), ``lasso`` (list of ``{"x": [...], "y": [...]}``
        outlines) and ``points`` (each with ``customdata``: the image's row).
    xy : ndarray, shape (n, 2)
        Map coordinates of every image (drawn or not).

    Returns
    -------
    rows : ndarray of int or None
        Sorted rows inside the union of every box and lasso outline, computed from the
        geometry over all of ``xy`` (a density layer's undrawn images included); None when
        the selection holds no box or lasso.
    clicked : int or None
        The row of a single clicked point (``points`` without a box or lasso).

    Examples
    --------
    >>> xy = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    >>> selection_rows({"box": [{"x": [-1, 2], "y": [2, -1]}], "lasso": []}, xy)[0].tolist()
    [0, 1]
    >>> selection_rows({"points": [{"customdata": [2]}], "box": [], "lasso": []}, xy)
    (None, 2)
    """
    if not selection:
        return None, None
    boxes, lassos = selection.get("box") or [], selection.get("lasso") or []
    if boxes or lassos:
        mask = np.zeros(len(xy), dtype=bool)
        for entry in boxes:
            x, y = _outline(entry, "box")
            if len(x) < 2:
                raise EmbeddingError(f"selection box: needs two corners, got {len(x)}")
            mask |= select_box(xy, x_range=(x.min(), x.max()), y_range=(y.min(), y.max()))
        for entry in lassos:
            x, y = _outline(entry, "lasso")
            mask |= select_polygon(xy, np.c_[x, y])
        return np.flatnonzero(mask), None
    points = selection.get("points") or []
    if len(points) != 1:
        return None, None
    data = points[0].get("customdata")
    if isinstance(data, (list, tuple)):
        data = data[0] if data else None
    if data is None:
        return None, None
    row = int(data)
    return None, (row if 0 <= row < len(xy) else None)


def similar_images(ev: EvalSet, run_dir: str | Path, row: int, *, k: int = 8) -> pd.DataFrame:
    """"More like this": the ``k`` nearest images of ``ev`` to row ``row`` in embedding space,
    other frames of its own capture excluded.

    Returns
    -------
    DataFrame
        ``row`` (of ``ev``) and ``similarity`` (cosine), most similar first.
    """
    emb = run_embedding(ev, run_dir)
    seq = ev.meta["seq_id"].astype(str).to_numpy() if "seq_id" in ev.meta.columns else None
    idx, sim = neighbours(emb, [row], k=k, exclude_same=seq)
    keep = idx[0] >= 0
    return pd.DataFrame({"row": idx[0][keep], "similarity": sim[0][keep]})


def duplicate_groups(ev: EvalSet, run_dir: str | Path, *, threshold: float = 0.97,
                     max_groups: int = 50) -> pd.DataFrame:
    """Near-duplicate groups across captures (frames of one capture never link), largest first.

    Returns
    -------
    DataFrame
        ``group``, ``row`` (of ``ev``), ``image_id``, ``capture``, ``similarity``, for the
        ``max_groups`` largest groups (:func:`analysis.embedding.near_duplicates`).
    """
    emb = run_embedding(ev, run_dir)
    seq = (ev.meta["seq_id"].astype(str).to_numpy() if "seq_id" in ev.meta.columns
           else ev.meta["image_id"].astype(str).to_numpy())
    groups = near_duplicates(emb, seq, threshold=threshold)
    groups = groups[groups["group"] < max_groups]
    ids = ev.meta["image_id"].astype(str).to_numpy()
    return groups.assign(image_id=ids[groups["row"].to_numpy()]).reset_index(drop=True)


def isolated_images(ev: EvalSet, run_dir: str | Path, *, top: int = 48,
                    k: int = 10) -> pd.DataFrame:
    """The ``top`` most isolated images of ``ev`` (:func:`analysis.embedding.outliers`):
    ``row`` and ``score`` (mean cosine distance to their ``k`` nearest others)."""
    emb = run_embedding(ev, run_dir)
    if len(emb) < 2:
        return pd.DataFrame({"row": np.zeros(0, np.int64), "score": np.zeros(0, np.float32)})
    return outliers(emb, k=k, top=top)


def map_figure(ev: EvalSet, xy: np.ndarray, by: str, *, policy: str = "set",
               max_points: int | None = None):
    """:func:`analysis.plots.embedding_map_figure` of ``ev`` coloured by ``by``; hover names
    the image, its label and prediction when at most 20,000 points are drawn."""
    from analysis.plots import MAP_MAX_POINTS, embedding_map_figure

    max_points = MAP_MAX_POINTS if max_points is None else max_points
    hover = None
    if min(len(ev), max_points) <= 20_000:
        hover = (ev.meta["image_id"].astype(str).to_numpy(dtype=object) + "<br>label "
                 + colour_values(ev, "label").astype(object) + " · predicted "
                 + colour_values(ev, "prediction").astype(object))
    return embedding_map_figure(xy, colour_values(ev, by, policy=policy),
                                continuous=by in CONTINUOUS, max_points=max_points,
                                colour_label=by, hover=hover)


def gallery_items(ev: EvalSet, rows, *, score=None, score_name: str = "") -> pd.DataFrame:
    """:func:`analysis.gallery.frame_predictions` of ``rows`` with a caption per card:
    ``"<score_name> <score> · label <actual> · predicted <predicted> (<p>)"``."""
    from analysis.gallery import frame_predictions

    items = frame_predictions(ev, np.asarray(rows, dtype=np.int64))
    caption = ("label " + items["actual"].astype(str) + " · predicted "
               + items["predicted"].astype(str) + " ("
               + items["p_predicted"].map("{:.2f}".format) + ")")
    if score is not None:
        caption = (f"{score_name} " + pd.Series(np.asarray(score, dtype=float),
                                                index=items.index).map("{:.3f}".format)
                   + " · " + caption)
    return items.assign(caption=caption.to_numpy())
