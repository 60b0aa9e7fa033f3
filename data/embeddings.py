"""Embeddings as a run stores them: checks, the PCA reduction and its file beside the run.

``training.predict --embedding-dim 64`` reduces penultimate-layer features with :func:`reduce`
(PCA fitted on a sample, float16 output: 7.2 M images x 64 dimensions = 0.92 GB) and keeps
the fitted reduction beside the run (:data:`PCA_FILE`, :func:`save_pca` / :func:`load_pca`),
so a new image (the dashboard's "Try the model" upload) can be placed in the same space.
``analysis.embedding`` builds maps, neighbours and selections on top of these pieces; this
module is below it because training must reduce too and never imports analysis.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.files import atomic_write

#: The fitted reduction of a run's stored embeddings, beside its ``predictions.parquet``.
PCA_FILE = "embedding_pca.npz"


class EmbeddingError(ValueError):
    """An embedding, coordinate or polygon argument breaks the contract; the message names it."""


# --------------------------------------------------------------------------------- checks

def check_matrix(emb: np.ndarray, name: str = "embeddings") -> np.ndarray:
    emb = np.asarray(emb)
    if emb.ndim != 2 or emb.shape[0] == 0 or emb.shape[1] == 0:
        raise EmbeddingError(f"{name}: expected a non-empty (n, D) array, got shape {emb.shape}")
    if not np.issubdtype(emb.dtype, np.floating):
        raise EmbeddingError(f"{name}: expected floating point values, got dtype {emb.dtype}")
    return emb


def check_finite(emb: np.ndarray, name: str, block: int = 1 << 18) -> None:
    for start in range(0, len(emb), block):
        part = emb[start:start + block]
        bad = ~np.isfinite(part).all(axis=1)
        if bad.any():
            row = start + int(np.flatnonzero(bad)[0])
            raise EmbeddingError(f"{name}: row {row} holds NaN or infinite values "
                                 f"({int(bad.sum())} such rows in rows {start}..{start + len(part) - 1})")


# ------------------------------------------------------------------------------- reduction

@dataclass(frozen=True)
class PCAParams:
    """A fitted linear reduction: ``(x - mean) @ components.T``.

    Attributes
    ----------
    mean : ndarray of float32, shape (D,)
    components : ndarray of float32, shape (dim, D)
    explained_variance_ratio : ndarray of float32, shape (dim,)
    n_fit : int
        Number of rows the reduction was fitted on.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray
    n_fit: int

    def transform(self, x: np.ndarray, *, dtype=np.float32, block: int = 1 << 18) -> np.ndarray:
        """Project ``x`` (n, D) to (n, dim) in blocks of ``block`` rows, output in ``dtype``."""
        x = check_matrix(x, "x")
        if x.shape[1] != self.mean.shape[0]:
            raise EmbeddingError(f"x: {x.shape[1]} columns, the reduction was fitted on "
                                 f"{self.mean.shape[0]}")
        out = np.empty((len(x), len(self.components)), dtype=dtype)
        comp_t = self.components.T
        for start in range(0, len(x), block):
            part = np.asarray(x[start:start + block], dtype=np.float32) - self.mean
            out[start:start + block] = part @ comp_t
        return out


def fit_pca(embeddings: np.ndarray, *, dim: int, seed: int = 0,
            fit_sample: int = 100_000) -> PCAParams:
    """Fit a PCA (randomised SVD) on at most ``fit_sample`` rows drawn without replacement.

    Parameters
    ----------
    embeddings : ndarray, shape (n, D)
    dim : int
        Number of components, at most ``min(D, rows fitted on)``.
    seed : int
        Seeds the row sample and the randomised SVD.
    fit_sample : int
        Largest number of rows the SVD sees; the principal axes of 100,000 images are those
        of millions to well within the noise of the embedding itself.

    Returns
    -------
    PCAParams

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(200, 8)) * np.arange(1, 9)
    >>> p = fit_pca(x, dim=2)
    >>> p.components.shape
    (2, 8)
    """
    from sklearn.decomposition import PCA

    embeddings = check_matrix(embeddings)
    n, d = embeddings.shape
    rows = sample_points(n, fit_sample, seed=seed)
    fit = np.asarray(embeddings[rows], dtype=np.float32)
    check_finite(fit, "embeddings (rows fitted on)")
    if not 1 <= dim <= min(d, len(fit)):
        raise EmbeddingError(f"dim={dim}: must lie in 1..{min(d, len(fit))} for an embedding of "
                             f"{d} dimensions fitted on {len(fit)} rows")
    pca = PCA(n_components=dim, svd_solver="randomized" if dim < min(d, len(fit)) else "full",
              random_state=seed)
    pca.fit(fit)
    return PCAParams(mean=pca.mean_.astype(np.float32),
                     components=pca.components_.astype(np.float32),
                     explained_variance_ratio=pca.explained_variance_ratio_.astype(np.float32),
                     n_fit=len(fit))


def reduce(embeddings: np.ndarray, *, dim: int = 64, seed: int = 0,
           fit_sample: int = 100_000) -> tuple[np.ndarray, PCAParams]:
    """Reduce an embedding to ``dim`` PCA components stored as float16.

    The PCA is fitted on a sample (:func:`fit_pca`) and applied in blocks, so the only large
    allocation is the float16 output: 7.2 M images x 64 dimensions = 0.92 GB.

    Parameters
    ----------
    embeddings : ndarray, shape (n, D)
        Any float dtype (float16 as read from a run).
    dim : int, keyword-only
        Output dimensions (64 keeps >= 90 % of the variance of typical CNN features).
    seed : int, keyword-only
    fit_sample : int, keyword-only
        Rows the SVD is fitted on.

    Returns
    -------
    reduced : ndarray of float16, shape (n, dim)
    params : PCAParams
        The fitted reduction (apply it to new images with ``params.transform``).

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(300, 32)).astype(np.float16)
    >>> r, p = reduce(x, dim=4)
    >>> r.shape, r.dtype
    ((300, 4), dtype('float16'))
    """
    params = fit_pca(embeddings, dim=dim, seed=seed, fit_sample=fit_sample)
    return params.transform(embeddings, dtype=np.float16), params


def sample_points(n: int, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted row numbers of at most ``max_points`` of ``n`` rows, drawn without replacement.

    Examples
    --------
    >>> sample_points(10, 3, seed=0).shape, sample_points(3, 10).tolist()
    ((3,), [0, 1, 2])
    """
    if n < 0 or max_points < 0:
        raise EmbeddingError(f"sample_points: n={n} and max_points={max_points} must be >= 0")
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_points, replace=False)).astype(np.int64)


def save_pca(run_dir: str | Path, params: PCAParams) -> Path:
    """Write ``params`` beside the run as :data:`PCA_FILE` (atomically); return its path."""
    buf = io.BytesIO()
    np.savez(buf, mean=params.mean, components=params.components,
             explained_variance_ratio=params.explained_variance_ratio,
             n_fit=np.int64(params.n_fit))
    return atomic_write(Path(run_dir) / PCA_FILE, buf.getvalue())


def load_pca(run_dir: str | Path) -> PCAParams | None:
    """The run's stored reduction, or None when its embeddings were stored unreduced.

    Raises :class:`EmbeddingError` naming the file when it exists but cannot be read.

    Examples
    --------
    >>> import tempfile
    >>> x = np.random.default_rng(0).normal(size=(50, 6))
    >>> run = Path(tempfile.mkdtemp()); _ = save_pca(run, fit_pca(x, dim=3))
    >>> load_pca(run).components.shape
    (3, 6)
    """
    path = Path(run_dir) / PCA_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            params = PCAParams(mean=z["mean"].astype(np.float32),
                               components=z["components"].astype(np.float32),
                               explained_variance_ratio=z["explained_variance_ratio"]
                               .astype(np.float32), n_fit=int(z["n_fit"]))
    except (OSError, ValueError, KeyError) as exc:
        raise EmbeddingError(f"{path}: unreadable embedding reduction ({exc})") from None
    if params.components.ndim != 2 or params.components.shape[1] != params.mean.shape[0]:
        raise EmbeddingError(f"{path}: components of shape {params.components.shape} do not "
                             f"fit a mean of {params.mean.shape[0]} values")
    return params
