"""Embedding maps for curators: reduction, 2-D projection, neighbours, selection, outliers.

Pure numpy / scikit-learn over an ``(n, D)`` embedding (a run's ``embedding`` column, float16
on disk). Everything that compares all images with all images (:func:`neighbours` for many
queries, :func:`near_duplicates`, :func:`outliers`) is a blocked matrix product whose working
memory is bounded by ``block`` and whose time grows as ``n * n_queries * D``; at Snapshot
Serengeti scale run it on the reduced (64-D) embedding.

The map itself (:func:`project_2d`) is fitted on a sample and every other image is placed from
its nearest sampled neighbours, so any ``n`` gets coordinates in bounded time. Selections
(:func:`select_polygon`, :func:`select_box`) are computed from the exact coordinates of every
image, never from the drawn points, so a density layer with a drawn sample
(:func:`density_grid`, :func:`sample_points`) selects exactly the same images.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data.embeddings import (EmbeddingError, PCAParams, fit_pca, reduce, sample_points)
from data.embeddings import check_finite as _check_finite
from data.embeddings import check_matrix as _check_matrix
from data.files import atomic_write_path

log = logging.getLogger(__name__)

#: Folder beside a run's ``predictions.parquet`` where projections are cached.
PROJECTIONS_DIR = "projections"
PREDICTIONS = "predictions.parquet"
METHODS = ("auto", "umap", "tsne", "pca")


def _check_xy(xy: np.ndarray, name: str = "xy") -> np.ndarray:
    xy = np.asarray(xy)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise EmbeddingError(f"{name}: expected an (n, 2) array of coordinates, got shape {xy.shape}")
    return xy



# ------------------------------------------------------------------------------ projection

def umap_available() -> bool:
    """Whether the optional ``umap-learn`` package is importable (it is not required)."""
    # A left-over folder of an uninstalled package is a namespace package: no origin.
    spec = importlib.util.find_spec("umap")
    return spec is not None and spec.origin is not None


def resolve_method(method: str) -> str:
    """``"auto"`` -> ``"umap"`` when umap-learn is importable, else ``"tsne"``; others as is."""
    if method not in METHODS:
        raise EmbeddingError(f"method={method!r}: choose one of {METHODS}")
    if method == "auto":
        return "umap" if umap_available() else "tsne"
    if method == "umap" and not umap_available():
        raise EmbeddingError("method='umap': the optional package umap-learn is not installed "
                             "(use method='tsne' or 'auto')")
    return method


def project_2d(emb: np.ndarray, *, method: str = "auto", sample: int = 10_000, seed: int = 0,
               perplexity: float = 30.0, max_iter: int = 1000, n_place: int = 5,
               block: int = 1 << 16) -> np.ndarray:
    """2-D map coordinates for every row of an embedding.

    ``"pca"`` projects every row on the first two principal axes. ``"tsne"`` (scikit-learn,
    Barnes-Hut) and ``"umap"`` (umap-learn, only if installed) are fitted on at most
    ``sample`` rows after a PCA to 50 dimensions; every other row is then placed at the
    similarity-weighted mean of the map positions of its ``n_place`` nearest sampled rows
    (cosine similarity in the 50-D space). A non-sampled image therefore lands in the
    neighbourhood of the sampled images it resembles, and any ``n`` costs one fit of
    ``sample`` points plus one blocked nearest-neighbour pass.

    Parameters
    ----------
    emb : ndarray, shape (n, D)
    method : {"auto", "umap", "tsne", "pca"}, keyword-only
        ``"auto"`` uses UMAP when umap-learn is importable, else t-SNE.
    sample : int, keyword-only
        Rows the non-linear map is fitted on.
    seed : int, keyword-only
    perplexity : float, keyword-only
        t-SNE perplexity (lowered automatically for tiny samples).
    max_iter : int, keyword-only
        t-SNE optimisation steps (at least 250).
    n_place : int, keyword-only
        Sampled neighbours that place each non-sampled row.
    block : int, keyword-only
        Rows per block of the placement pass.

    Returns
    -------
    ndarray of float32, shape (n, 2)

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(100, 16))
    >>> project_2d(x, method="pca").shape
    (100, 2)
    """
    emb = _check_matrix(emb)
    method = resolve_method(method)
    n, d = emb.shape
    if method == "pca" or n < 5:
        params = fit_pca(emb, dim=min(2, d, n), seed=seed)
        xy = params.transform(emb, block=block)
        return np.pad(xy, ((0, 0), (0, 2 - xy.shape[1]))).astype(np.float32)
    pre = fit_pca(emb, dim=min(50, d, sample, n), seed=seed)
    rows = sample_points(n, sample, seed=seed)
    fit_x = pre.transform(emb[rows])
    _check_finite(fit_x, "embeddings (sampled rows)")
    if method == "tsne":
        from sklearn.manifold import TSNE
        perp = float(min(perplexity, max(2.0, (len(rows) - 1) / 3.0)))
        fit_xy = TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed,
                      learning_rate="auto", max_iter=max_iter).fit_transform(fit_x)
    else:
        import umap  # optional dependency, see resolve_method
        fit_xy = umap.UMAP(n_components=2, random_state=seed).fit_transform(fit_x)
    fit_xy = np.asarray(fit_xy, dtype=np.float32)
    log.info("project_2d: %s fitted on %d of %d rows", method, len(rows), n)
    out = np.empty((n, 2), dtype=np.float32)
    out[rows] = fit_xy
    rest = np.setdiff1d(np.arange(n), rows, assume_unique=True)
    if len(rest):
        k = min(n_place, len(rows))
        base = _normalise(fit_x)
        for start in range(0, len(rest), block):
            part = rest[start:start + block]
            q = _normalise(pre.transform(emb[part]))
            idx, sim = _topk(q, base, k)
            w = np.clip(sim, 1e-3, None)
            out[part] = (w[:, :, None] * fit_xy[idx]).sum(axis=1) / w.sum(axis=1, keepdims=True)
    return out


# ---------------------------------------------------------------------------------- cache

def predictions_stamp(run_dir: str | Path) -> str:
    """``"<size>-<mtime_ns>"`` of a run's ``predictions.parquet``: changes when it is rewritten."""
    path = Path(run_dir) / PREDICTIONS
    try:
        st = path.stat()
    except FileNotFoundError:
        raise EmbeddingError(f"{path}: file not found (not a run folder?)") from None
    return f"{st.st_size}-{st.st_mtime_ns}"


def projection_path(run_dir: str | Path, params: Mapping) -> Path:
    """Where the projection computed with ``params`` for this run's predictions is cached.

    The file name is a hash of ``params`` (JSON, sorted keys) and :func:`predictions_stamp`,
    so new predictions or other parameters never read a stale map.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> run = pathlib.Path(tempfile.mkdtemp()); _ = (run / "predictions.parquet").write_bytes(b"x")
    >>> projection_path(run, {"method": "pca"}).parent.name
    'projections'
    """
    key = json.dumps({"params": dict(params), "predictions": predictions_stamp(run_dir)},
                     sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(run_dir) / PROJECTIONS_DIR / f"map-{digest}.parquet"


def cached_projection(run_dir: str | Path, emb: np.ndarray, image_ids, *, method: str = "auto",
                      sample: int = 10_000, seed: int = 0) -> np.ndarray:
    """:func:`project_2d` cached beside the run as Parquet (``image_id``, ``x``, ``y``).

    The cache is read when present and holds the same image ids in the same order; otherwise
    the projection is computed and written atomically.

    Parameters
    ----------
    run_dir : str or Path
        The run folder whose ``predictions.parquet`` the embedding came from.
    emb : ndarray, shape (n, D)
    image_ids : array-like of str, shape (n,)
    method, sample, seed
        As for :func:`project_2d` (``"auto"`` is resolved before keying the cache).

    Returns
    -------
    ndarray of float32, shape (n, 2)
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = np.asarray(image_ids).astype(str)
    if len(ids) != len(emb):
        raise EmbeddingError(f"image_ids: {len(ids)} ids for {len(emb)} embedding rows")
    resolved = resolve_method(method)
    params = {"method": resolved, "sample": int(sample), "seed": int(seed), "n": len(ids),
              "dim": int(np.shape(emb)[1])}
    path = projection_path(run_dir, params)
    if path.exists():
        try:
            table = pq.read_table(path)
            if table.column("image_id").to_numpy(zero_copy_only=False).astype(str).tolist() \
                    == ids.tolist():
                return np.column_stack([table.column("x").to_numpy(),
                                        table.column("y").to_numpy()]).astype(np.float32)
            log.warning("%s: image ids differ from the run's; recomputing", path)
        except (OSError, KeyError, pa.ArrowInvalid) as exc:
            log.warning("%s: unreadable cached projection (%s); recomputing", path, exc)
    xy = project_2d(emb, method=resolved, sample=sample, seed=seed)
    table = pa.table({"image_id": pa.array(ids, pa.string()), "x": xy[:, 0], "y": xy[:, 1]})
    atomic_write_path(path, lambda tmp: pq.write_table(table, tmp))
    return xy


# ----------------------------------------------------------------------------- neighbours

def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def _topk(q: np.ndarray, base: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k cosine of normalised ``q`` against normalised ``base`` (small base, no masks)."""
    s = q @ base.T
    idx = np.argpartition(-s, k - 1, axis=1)[:, :k]
    return idx, np.take_along_axis(s, idx, axis=1)


def cosine_knn(query: np.ndarray, base: np.ndarray, *, k: int, query_rows: np.ndarray | None = None,
               query_groups: np.ndarray | None = None, base_groups: np.ndarray | None = None,
               block: int = 16_384, query_block: int = 4_096) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most cosine-similar rows of ``base`` for every row of ``query``.

    A blocked matrix product with a running top-k: memory is ``query_block x block`` floats
    plus the answer, whatever the sizes.

    Parameters
    ----------
    query : ndarray, shape (q, D)
    base : ndarray, shape (n, D)
    k : int, keyword-only
    query_rows : ndarray of int, shape (q,), optional
        When the queries are rows of ``base``: their row numbers, never returned as their own
        neighbours.
    query_groups, base_groups : ndarray of int, shapes (q,) and (n,), optional
        Group codes (e.g. captures); a base row in the query's group is never returned.
    block, query_block : int
        Rows of ``base`` / ``query`` per block.

    Returns
    -------
    indices : ndarray of int64, shape (q, k)
        Rows of ``base``, most similar first; -1 where fewer than ``k`` rows qualify.
    similarity : ndarray of float32, shape (q, k)
        Cosine similarity; NaN where the index is -1.

    Examples
    --------
    >>> b = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
    >>> cosine_knn(b[:1], b, k=2, query_rows=np.array([0]))[0]
    array([[2, 1]])
    """
    query = _check_matrix(query, "query")
    base = _check_matrix(base, "base")
    if query.shape[1] != base.shape[1]:
        raise EmbeddingError(f"query has {query.shape[1]} dimensions, base {base.shape[1]}")
    if k < 1:
        raise EmbeddingError(f"k={k}: must be at least 1")
    if (query_groups is None) != (base_groups is None):
        raise EmbeddingError("query_groups and base_groups go together")
    nq, n = len(query), len(base)
    kk = min(k, n)
    best_s = np.full((nq, kk), -np.inf, dtype=np.float32)
    best_i = np.full((nq, kk), -1, dtype=np.int64)
    qn = _normalise(query)
    for b0 in range(0, n, block):
        bn = _normalise(base[b0:b0 + block])
        bg = None if base_groups is None else np.asarray(base_groups[b0:b0 + block])
        for q0 in range(0, nq, query_block):
            q1 = min(q0 + query_block, nq)
            s = qn[q0:q1] @ bn.T
            if bg is not None:
                s[np.asarray(query_groups[q0:q1])[:, None] == bg[None, :]] = -np.inf
            if query_rows is not None:
                local = np.asarray(query_rows[q0:q1]) - b0
                hit = (local >= 0) & (local < len(bn))
                s[np.flatnonzero(hit), local[hit]] = -np.inf
            take = min(kk, s.shape[1])
            part = np.argpartition(-s, take - 1, axis=1)[:, :take]
            cand_s = np.concatenate([best_s[q0:q1], np.take_along_axis(s, part, axis=1)], axis=1)
            cand_i = np.concatenate([best_i[q0:q1], part + b0], axis=1)
            keep = np.argpartition(-cand_s, kk - 1, axis=1)[:, :kk]
            best_s[q0:q1] = np.take_along_axis(cand_s, keep, axis=1)
            best_i[q0:q1] = np.take_along_axis(cand_i, keep, axis=1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    best_s = np.take_along_axis(best_s, order, axis=1)
    best_i = np.take_along_axis(best_i, order, axis=1)
    missing = ~np.isfinite(best_s)
    best_i[missing] = -1
    best_s[missing] = np.nan
    if kk < k:
        best_i = np.pad(best_i, ((0, 0), (0, k - kk)), constant_values=-1)
        best_s = np.pad(best_s, ((0, 0), (0, k - kk)), constant_values=np.nan)
    return best_i, best_s


def _codes(groups, n: int, name: str) -> np.ndarray:
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise EmbeddingError(f"{name}: expected shape ({n},), got {groups.shape}")
    codes, _ = pd.factorize(groups, use_na_sentinel=False)
    return codes.astype(np.int64)


def neighbours(emb: np.ndarray, query_rows, *, k: int = 10,
               exclude_same=None) -> tuple[np.ndarray, np.ndarray]:
    """Nearest neighbours in embedding space ("more like this") of some rows.

    Parameters
    ----------
    emb : ndarray, shape (n, D)
    query_rows : int or array-like of int, shape (q,)
        Rows whose neighbours are wanted; a row is never its own neighbour.
    k : int, keyword-only
    exclude_same : array-like, shape (n,), optional
        A group per row (e.g. the capture / ``seq_id``): rows sharing the query's group are
        excluded, so the other frames of the same capture do not crowd the answer.

    Returns
    -------
    indices : ndarray of int64, shape (q, k)
        Most similar first; -1 where fewer than ``k`` rows qualify.
    similarity : ndarray of float32, shape (q, k)
        Cosine similarity (NaN where the index is -1).

    Examples
    --------
    >>> e = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> neighbours(e, [0, 2], k=1)[0]
    array([[1],
           [3]])
    """
    emb = _check_matrix(emb)
    rows = np.atleast_1d(np.asarray(query_rows))
    if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
        raise EmbeddingError(f"query_rows: expected integer row numbers, got {rows!r}"[:200])
    bad = (rows < 0) | (rows >= len(emb))
    if bad.any():
        raise EmbeddingError(f"query_rows: row {int(rows[bad][0])} is outside 0..{len(emb) - 1}")
    qg = bg = None
    if exclude_same is not None:
        bg = _codes(exclude_same, len(emb), "exclude_same")
        qg = bg[rows]
    return cosine_knn(emb[rows], emb, k=k, query_rows=rows, query_groups=qg, base_groups=bg)


# ------------------------------------------------------------------------------ selection

def select_polygon(xy: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Exact point-in-polygon for every point (even-odd rule, the lasso's closed outline).

    Ray casting to +x, vectorised: points are sorted by y once (after a bounding-box
    prefilter) and each edge flips only the points in its own y band, found by binary
    search, so a lasso of m edges over n points costs ``O(n log n + sum of band sizes)``.
    A self-intersecting outline selects by the even-odd rule (a pentagram's centre is out).
    Points with NaN coordinates are never selected.

    Parameters
    ----------
    xy : ndarray, shape (n, 2)
        Map coordinates of every image (not only the drawn ones).
    polygon : ndarray, shape (m, 2), m >= 3
        Vertices in order; the last connects back to the first.

    Returns
    -------
    ndarray of bool, shape (n,)

    Examples
    --------
    >>> sq = np.array([[0, 0], [1, 0], [1, 1], [0, 1]])
    >>> select_polygon(np.array([[0.5, 0.5], [1.5, 0.5]]), sq)
    array([ True, False])
    """
    xy = _check_xy(xy)
    poly = np.asarray(polygon, dtype=np.float64)
    if poly.ndim != 2 or poly.shape[1] != 2 or len(poly) < 3:
        raise EmbeddingError(f"polygon: expected (m, 2) vertices with m >= 3, got shape {poly.shape}")
    if not np.isfinite(poly).all():
        raise EmbeddingError("polygon: vertices must be finite numbers")
    px, py = xy[:, 0], xy[:, 1]
    (x_lo, y_lo), (x_hi, y_hi) = poly.min(axis=0), poly.max(axis=0)
    cand = np.flatnonzero((px >= x_lo) & (px <= x_hi) & (py >= y_lo) & (py <= y_hi))
    out = np.zeros(len(xy), dtype=bool)
    if not len(cand):
        return out
    order = np.argsort(py[cand], kind="stable")
    cand = cand[order]
    ys = py[cand].astype(np.float64)
    xs = px[cand].astype(np.float64)
    inside = np.zeros(len(cand), dtype=bool)
    x1, y1 = poly[:, 0], poly[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    lo, hi = np.minimum(y1, y2), np.maximum(y1, y2)
    # A point is crossed by edge e iff lo_e <= y < hi_e (half-open: a vertex counts once).
    starts = np.searchsorted(ys, lo, side="left")
    stops = np.searchsorted(ys, hi, side="left")
    for e in np.flatnonzero(stops > starts):
        a, b = starts[e], stops[e]
        x_cross = x1[e] + (ys[a:b] - y1[e]) * (x2[e] - x1[e]) / (y2[e] - y1[e])
        inside[a:b] ^= xs[a:b] < x_cross
    out[cand] = inside
    return out


def select_box(xy: np.ndarray, *, x_range: tuple[float, float],
               y_range: tuple[float, float]) -> np.ndarray:
    """Points inside an axis-aligned box (bounds inclusive, given in either order).

    Examples
    --------
    >>> select_box(np.array([[0, 0], [2, 2]]), x_range=(-1, 1), y_range=(1, -1))
    array([ True, False])
    """
    xy = _check_xy(xy)
    x0, x1 = sorted(map(float, x_range))
    y0, y1 = sorted(map(float, y_range))
    return (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)


# ----------------------------------------------------------------- duplicates and outliers

def near_duplicates(emb: np.ndarray, capture_ids, *, threshold: float = 0.97, k: int = 10,
                    block: int = 16_384) -> pd.DataFrame:
    """Groups of near-identical images across different captures.

    Two images are linked when their cosine similarity is at least ``threshold`` and they
    belong to different captures (frames of one capture are alike by construction and never
    link). Groups are the connected components of these links among each image's ``k`` most
    similar images of other captures; only groups with two or more captures are returned.

    Parameters
    ----------
    emb : ndarray, shape (n, D)
    capture_ids : array-like, shape (n,)
        Capture (``seq_id``) per row.
    threshold : float, keyword-only
        Cosine similarity in (0, 1].
    k : int, keyword-only
        Candidate links per image (a group larger than ``k + 1`` is still found through chains).
    block : int, keyword-only

    Returns
    -------
    DataFrame
        Columns ``group`` (0 = largest group), ``row``, ``capture``, ``similarity`` (the row's
        highest similarity to another capture's image in its group); sorted by group, row.

    Examples
    --------
    >>> e = np.array([[1.0, 0.0], [1.0, 0.001], [0.0, 1.0]])
    >>> near_duplicates(e, ["a", "b", "c"], threshold=0.99)["row"].tolist()
    [0, 1]
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    emb = _check_matrix(emb)
    if not 0 < threshold <= 1:
        raise EmbeddingError(f"threshold={threshold}: must lie in (0, 1]")
    n = len(emb)
    caps = np.asarray(capture_ids)
    codes = _codes(caps, n, "capture_ids")
    idx, sim = cosine_knn(emb, emb, k=k, query_rows=np.arange(n), query_groups=codes,
                          base_groups=codes, block=block)
    src, slot = np.nonzero(sim >= threshold)
    cols = ["group", "row", "capture", "similarity"]
    if not len(src):
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                             zip(cols, ["int64", "int64", caps.dtype, "float32"])})
    dst = idx[src, slot]
    graph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    linked = np.unique(np.concatenate([src, dst]))
    best = np.full(n, -np.inf, dtype=np.float32)
    np.maximum.at(best, src, sim[src, slot])
    np.maximum.at(best, dst, sim[src, slot])
    df = pd.DataFrame({"label": labels[linked], "row": linked, "capture": caps[linked],
                       "similarity": best[linked]})
    size = df.groupby("label")["row"].transform("size")
    df = df.assign(size=size).sort_values(["size", "label", "row"], ascending=[False, True, True])
    df["group"] = pd.factorize(df["label"])[0]
    return df[cols].reset_index(drop=True)


def outliers(emb: np.ndarray, *, k: int = 10, top: int = 100, block: int = 16_384) -> pd.DataFrame:
    """The most isolated images: largest mean cosine distance to their ``k`` nearest others.

    Parameters
    ----------
    emb : ndarray, shape (n, D)
    k : int, keyword-only
    top : int, keyword-only
        Rows returned (all when ``top >= n``).
    block : int, keyword-only

    Returns
    -------
    DataFrame
        Columns ``row``, ``score`` (mean cosine distance ``1 - similarity``), most isolated first.

    Examples
    --------
    >>> e = np.array([[1.0, 0.0], [1.0, 0.05], [0.98, 0.0], [0.0, 1.0]])
    >>> outliers(e, k=1, top=1)["row"].tolist()
    [3]
    """
    emb = _check_matrix(emb)
    n = len(emb)
    if n < 2:
        raise EmbeddingError(f"outliers: need at least 2 rows, got {n}")
    k = min(k, n - 1)
    _, sim = cosine_knn(emb, emb, k=k, query_rows=np.arange(n), block=block)
    score = 1.0 - np.nanmean(sim, axis=1)
    top = min(top, n)
    rows = np.argpartition(-score, top - 1)[:top]
    rows = rows[np.lexsort((rows, -score[rows]))]
    return pd.DataFrame({"row": rows.astype(np.int64), "score": score[rows].astype(np.float32)})


# -------------------------------------------------------------------------------- drawing

def density_grid(xy: np.ndarray, *, bins: int | tuple[int, int] = 256,
                 extent: tuple[float, float, float, float] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point counts on a regular grid: the density layer drawn beneath a sample of points.

    Parameters
    ----------
    xy : ndarray, shape (n, 2)
    bins : int or (int, int), keyword-only
        Cells along x and y.
    extent : (x_min, x_max, y_min, y_max), optional
        Defaults to the finite points' range; points outside (and NaN) are not counted.

    Returns
    -------
    counts : ndarray of int64, shape (bins_y, bins_x)
        Row ``i`` is the ``i``-th y band (the layout a heatmap's ``z`` expects).
    x_edges : ndarray, shape (bins_x + 1,)
    y_edges : ndarray, shape (bins_y + 1,)

    Examples
    --------
    >>> c, xe, ye = density_grid(np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 0.9]]), bins=2)
    >>> c.tolist()
    [[1, 0], [0, 2]]
    """
    xy = _check_xy(xy)
    bx, by = (bins, bins) if np.isscalar(bins) else bins
    if bx < 1 or by < 1:
        raise EmbeddingError(f"bins={bins}: must be positive")
    x, y = xy[:, 0].astype(np.float64), xy[:, 1].astype(np.float64)
    if extent is None:
        ok = np.isfinite(x) & np.isfinite(y)
        if not ok.any():
            extent = (0.0, 1.0, 0.0, 1.0)
        else:
            extent = (x[ok].min(), x[ok].max(), y[ok].min(), y[ok].max())
    x0, x1, y0, y1 = map(float, extent)
    x1 = x1 if x1 > x0 else x0 + 1.0
    y1 = y1 if y1 > y0 else y0 + 1.0
    with np.errstate(invalid="ignore"):
        fx = (x - x0) / (x1 - x0) * bx
        fy = (y - y0) / (y1 - y0) * by
        keep = (fx >= 0) & (fx <= bx) & (fy >= 0) & (fy <= by)
    ix = np.minimum(fx[keep].astype(np.int64), bx - 1)
    iy = np.minimum(fy[keep].astype(np.int64), by - 1)
    counts = np.bincount(iy * bx + ix, minlength=bx * by).reshape(by, bx)
    return counts, np.linspace(x0, x1, bx + 1), np.linspace(y0, y1, by + 1)
