"""analysis.embedding on seeded synthetic embeddings with known clusters and planted cases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors

from analysis import embedding as em
from analysis.embedding import (EmbeddingError, cached_projection, cosine_knn, density_grid,
                                near_duplicates, neighbours, outliers, project_2d,
                                projection_path, reduce, sample_points, select_box,
                                select_polygon)


def clusters(n_per=60, n_clusters=5, dim=32, seed=0):
    """Well-separated clusters (distinct directions, so cosine separates them too)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim))
    centres *= 10 / np.linalg.norm(centres, axis=1, keepdims=True)
    label = np.repeat(np.arange(n_clusters), n_per)
    x = centres[label] + rng.normal(size=(len(label), dim))
    return x.astype(np.float32), label


# ------------------------------------------------------------------------------ reduce

def test_reduce_float16_and_matches_sklearn_pca():
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(500, 6)) @ rng.normal(size=(6, 40))
         + 0.01 * rng.normal(size=(500, 40))).astype(np.float32)
    r, params = reduce(x, dim=6, seed=0)
    assert r.shape == (500, 6) and r.dtype == np.float16
    ref = PCA(n_components=6).fit(x)
    np.testing.assert_allclose(params.explained_variance_ratio, ref.explained_variance_ratio_,
                               rtol=1e-3)
    # Same subspace: reconstruction from the reduced coordinates recovers x.
    back = r.astype(np.float32) @ params.components + params.mean
    assert np.abs(back - x).max() < 0.05 * np.abs(x).max()


def test_reduce_fits_on_a_sample():
    x, _ = clusters(n_per=200)
    _, params = reduce(x, dim=4, fit_sample=100)
    assert params.n_fit == 100


@pytest.mark.parametrize("dim", [0, 33])
def test_reduce_rejects_bad_dim(dim):
    x, _ = clusters()
    with pytest.raises(EmbeddingError, match=f"dim={dim}"):
        reduce(x, dim=dim)


def test_reduce_names_nan_row():
    x, _ = clusters()
    x[17, 3] = np.nan
    with pytest.raises(EmbeddingError, match="row 17"):
        reduce(x, dim=4)


# -------------------------------------------------------------------------- projection

# PCA is linear: three centres span a plane, so they separate in 2-D; five need t-SNE.
@pytest.mark.parametrize("method,sample,n_clusters",
                         [("pca", 10_000, 3), ("tsne", 10_000, 5), ("tsne", 120, 5)])
def test_projection_separates_clusters(method, sample, n_clusters):
    x, label = clusters(n_clusters=n_clusters)
    xy = project_2d(x, method=method, sample=sample, seed=0, max_iter=300)
    assert xy.shape == (len(x), 2) and xy.dtype == np.float32 and np.isfinite(xy).all()
    # Each point's 5 nearest map neighbours come from its own cluster, and clusters separate.
    _, idx = NearestNeighbors(n_neighbors=6).fit(xy).kneighbors(xy)
    assert (label[idx[:, 1:]] == label[:, None]).mean() > 0.95
    assert silhouette_score(xy, label) > 0.5


def test_projection_is_seeded():
    x, _ = clusters(n_per=20)
    a = project_2d(x, method="tsne", sample=60, seed=3, max_iter=250)
    b = project_2d(x, method="tsne", sample=60, seed=3, max_iter=250)
    np.testing.assert_array_equal(a, b)


def test_auto_without_umap_uses_tsne(monkeypatch):
    monkeypatch.setattr(em, "umap_available", lambda: False)
    assert em.resolve_method("auto") == "tsne"
    with pytest.raises(EmbeddingError, match="umap-learn"):
        em.resolve_method("umap")
    with pytest.raises(EmbeddingError, match="method='nope'"):
        em.resolve_method("nope")


@pytest.mark.slow
@pytest.mark.skipif(not em.umap_available(), reason="umap-learn not installed")
def test_umap_projection_separates_clusters():
    x, label = clusters()
    xy = project_2d(x, method="umap", sample=200, seed=0)
    assert silhouette_score(xy, label) > 0.5


def test_cached_projection_writes_once_and_keys_on_predictions(tmp_path, monkeypatch):
    x, _ = clusters(n_per=20)
    ids = [f"img{i}" for i in range(len(x))]
    (tmp_path / "predictions.parquet").write_bytes(b"v1")
    first = cached_projection(tmp_path, x, ids, method="pca")
    params = {"method": "pca", "sample": 10_000, "seed": 0, "n": len(x), "dim": x.shape[1]}
    path = projection_path(tmp_path, params)
    assert path.exists()
    assert pd.read_parquet(path)["image_id"].tolist() == ids

    def boom(*a, **k):
        raise AssertionError("recomputed although cached")
    monkeypatch.setattr(em, "project_2d", boom)
    np.testing.assert_array_equal(cached_projection(tmp_path, x, ids, method="pca"), first)
    # New predictions: a different cache file, so the map is recomputed.
    (tmp_path / "predictions.parquet").write_bytes(b"version 2")
    assert projection_path(tmp_path, params) != path
    with pytest.raises(AssertionError, match="recomputed"):
        cached_projection(tmp_path, x, ids, method="pca")


def test_projection_path_needs_a_run(tmp_path):
    with pytest.raises(EmbeddingError, match="predictions.parquet: file not found"):
        projection_path(tmp_path, {"method": "pca"})


# -------------------------------------------------------------------------- neighbours

def test_neighbours_stay_in_cluster_and_exclude_self():
    x, label = clusters()
    rows = np.arange(0, len(x), 7)
    idx, sim = neighbours(x, rows, k=10)
    assert idx.shape == (len(rows), 10)
    assert (label[idx] == label[rows][:, None]).all()
    assert not (idx == rows[:, None]).any()
    assert (np.diff(sim, axis=1) <= 1e-6).all()  # most similar first


def test_cosine_knn_blocks_match_sklearn():
    rng = np.random.default_rng(4)
    base = rng.normal(size=(103, 12))
    query = rng.normal(size=(17, 12))
    idx, sim = cosine_knn(query, base, k=6, block=7, query_block=5)
    ref_d, ref_i = (NearestNeighbors(n_neighbors=6, metric="cosine", algorithm="brute")
                    .fit(base).kneighbors(query))
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(sim, 1 - ref_d, atol=1e-5)


def test_neighbours_exclude_same_capture():
    x, label = clusters(n_per=30)
    capture = np.arange(len(x)) // 3  # three frames per capture
    idx, _ = neighbours(x, [0, 31], k=5, exclude_same=capture)
    assert not np.isin(idx[0], [0, 1, 2]).any() and not np.isin(idx[1], [30, 31, 32]).any()
    assert (label[idx[0]] == label[0]).all()


def test_neighbours_pad_when_too_few_candidates():
    x = np.eye(3)
    idx, sim = neighbours(x, [0], k=4)
    assert idx[0, 2:].tolist() == [-1, -1] and np.isnan(sim[0, 2:]).all()


def test_neighbours_rejects_bad_row():
    with pytest.raises(EmbeddingError, match="row 9 is outside 0..2"):
        neighbours(np.eye(3), [9], k=1)


# -------------------------------------------------------------------------- selection

def winding_number_inside(px: float, py: float, poly: np.ndarray) -> bool:
    """Slow scalar reference (Sunday's winding number), independent of the ray casting."""
    wn = 0
    m = len(poly)
    for i in range(m):
        x1, y1 = poly[i]
        x2, y2 = poly[(i + 1) % m]
        is_left = (x2 - x1) * (py - y1) - (px - x1) * (y2 - y1)
        if y1 <= py:
            if y2 > py and is_left > 0:
                wn += 1
        elif y2 <= py and is_left < 0:
            wn -= 1
    return wn != 0


@pytest.mark.parametrize("seed", range(5))
def test_polygon_selection_equals_winding_number_reference(seed):
    rng = np.random.default_rng(seed)
    # A random simple (star-shaped) lasso outline, as a hand draws it, and scattered points.
    m = int(rng.integers(3, 60))
    angles = np.sort(rng.uniform(0, 2 * np.pi, m))
    radius = rng.uniform(0.3, 1.0, m)
    poly = np.c_[radius * np.cos(angles), radius * np.sin(angles)] + rng.normal(size=2) * 0.1
    xy = rng.uniform(-1.2, 1.2, size=(3000, 2)).astype(np.float32)
    got = select_polygon(xy, poly)
    want = np.array([winding_number_inside(float(px), float(py), poly) for px, py in xy])
    np.testing.assert_array_equal(got, want)
    assert 0 < got.sum() < len(xy)


def test_polygon_even_odd_on_self_intersecting_outline():
    k = np.arange(5) * 4 * np.pi / 5  # pentagram: vertex order skips one each time
    star = np.c_[np.sin(k), np.cos(k)]
    got = select_polygon(np.array([[0.0, 0.0], [0.0, 0.7], [2.0, 2.0]]), star)
    assert got.tolist() == [False, True, False]  # the centre is crossed twice: out


def test_polygon_ignores_nan_points_and_rejects_bad_outline():
    sq = np.array([[0, 0], [1, 0], [1, 1], [0, 1]])
    assert select_polygon(np.array([[np.nan, 0.5], [0.5, 0.5]]), sq).tolist() == [False, True]
    with pytest.raises(EmbeddingError, match="m >= 3"):
        select_polygon(np.zeros((4, 2)), sq[:2])
    with pytest.raises(EmbeddingError, match=r"\(n, 2\)"):
        select_polygon(np.zeros((4, 3)), sq)


def test_select_box_inclusive():
    xy = np.array([[0, 0], [1, 1], [1.01, 0.5], [0.5, -0.01]])
    assert select_box(xy, x_range=(1, 0), y_range=(0, 1)).tolist() == [True, True, False, False]


# -------------------------------------------------------------- duplicates and outliers

def test_near_duplicates_finds_planted_groups_across_captures_only():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 16)).astype(np.float32)
    capture = np.arange(200)
    # Planted: 40 re-appears as capture 150's image, 7 as 90 and 120 (a group of three).
    x[150] = x[40] + 0.001 * rng.normal(size=16)
    x[90] = x[7] + 0.001 * rng.normal(size=16)
    x[120] = x[7] + 0.001 * rng.normal(size=16)
    # Two frames of one capture are identical: never a duplicate group.
    x[61] = x[60]
    capture[61] = 60
    df = near_duplicates(x, capture, threshold=0.99)
    groups = [sorted(g["row"]) for _, g in df.groupby("group")]
    assert groups == [[7, 90, 120], [40, 150]]
    assert (df["similarity"] > 0.99).all()


def test_near_duplicates_none():
    x, label = clusters()
    df = near_duplicates(x, np.arange(len(x)), threshold=0.9999)
    assert df.empty and list(df.columns) == ["group", "row", "capture", "similarity"]


def test_outliers_finds_planted_isolated_images():
    x, _ = clusters()
    rng = np.random.default_rng(6)
    planted = [13, 200]
    x[planted] = rng.normal(size=(2, x.shape[1])) * 10  # random directions, off every cluster
    df = outliers(x, k=5, top=2, block=50)
    assert sorted(df["row"]) == planted
    assert df["score"].is_monotonic_decreasing


# ----------------------------------------------------------------------------- drawing

def test_density_grid_matches_histogram2d():
    rng = np.random.default_rng(7)
    xy = rng.normal(size=(5000, 2))
    counts, xe, ye = density_grid(xy, bins=(30, 20))
    ref, rxe, rye = np.histogram2d(xy[:, 0], xy[:, 1], bins=(30, 20))
    np.testing.assert_allclose(xe, rxe)
    np.testing.assert_allclose(ye, rye)
    assert counts.shape == (20, 30) and counts.sum() == len(xy)
    # Binning agrees except possibly for points on an edge (floating-point rounding).
    assert np.abs(counts - ref.T).sum() <= 4


def test_sample_points_seeded_sorted_unique():
    a = sample_points(1000, 100, seed=1)
    assert len(np.unique(a)) == 100 and (np.diff(a) > 0).all()
    np.testing.assert_array_equal(a, sample_points(1000, 100, seed=1))
    assert sample_points(5, 10).tolist() == [0, 1, 2, 3, 4]
