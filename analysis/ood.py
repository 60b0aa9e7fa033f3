"""Out-of-distribution screening: does an image lie outside what a run was trained on?

Two pieces of evidence, both judged against the run's own validation split (never against a
fixed number, so the scale of the embedding and the model's habits do not matter):

- distance: the mean cosine distance from the image to its ``k`` nearest *training*
  embeddings, compared with the same distance of every validation image ("farther from any
  training image than 99 % of validation images");
- confidence: the top-1 probability, compared with the validation images' ("below the 5th
  percentile of validation confidences").

:func:`fit_reference` builds the reference once per run; :func:`score` is vectorised, so a run
predicted on a new site is screened in one call, and one uploaded image gets the same answer
with a sentence naming the evidence (:attr:`OODResult.message`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.embedding import EmbeddingError, cosine_knn, sample_points


class OODError(ValueError):
    """Inputs to the OOD score break the contract; the message names the argument and value."""


@dataclass(frozen=True)
class OODReference:
    """What a run's training and validation images look like to the OOD score.

    Attributes
    ----------
    train : ndarray of float32, shape (m, D)
        Training embeddings (a sample of at most ``max_train`` rows).
    k : int
        Nearest training images averaged.
    val_distance : ndarray of float64, sorted, shape (v,)
        Validation images' mean cosine distance to their ``k`` nearest training images.
    val_confidence : ndarray of float64, sorted, shape (v,) or (0,)
        Validation images' top-1 probabilities (empty when not given).
    distance_percentile, confidence_percentile : float
        Flag above / below these percentiles of the validation split.
    distance_threshold, confidence_threshold : float
        The corresponding values (NaN for confidence when not given).
    """

    train: np.ndarray
    k: int
    val_distance: np.ndarray
    val_confidence: np.ndarray
    distance_percentile: float
    confidence_percentile: float
    distance_threshold: float
    confidence_threshold: float


def _confidence(values, name: str) -> np.ndarray:
    """Top-1 probabilities from either (n,) confidences or (n, C) probabilities."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr.max(axis=1)
    if arr.ndim != 1:
        raise OODError(f"{name}: expected (n,) confidences or (n, C) probabilities, "
                       f"got shape {np.shape(values)}")
    bad = ~np.isfinite(arr) | (arr < 0) | (arr > 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise OODError(f"{name}: row {i} has confidence {float(arr[i])!r}, outside [0, 1]")
    return arr


def _distances(train: np.ndarray, emb: np.ndarray, k: int, name: str) -> np.ndarray:
    emb = np.asarray(emb)
    if emb.ndim != 2 or emb.shape[1] != train.shape[1]:
        raise OODError(f"{name}: expected shape (n, {train.shape[1]}) like the training "
                       f"embeddings, got {emb.shape}")
    if not np.isfinite(emb).all():
        row = int(np.flatnonzero(~np.isfinite(emb).all(axis=1))[0])
        raise OODError(f"{name}: row {row} holds NaN or infinite values")
    if len(emb) == 0:
        return np.zeros(0)
    try:
        _, sim = cosine_knn(emb, train, k=k)
    except EmbeddingError as exc:
        raise OODError(f"{name}: {exc}") from None
    return 1.0 - sim.astype(np.float64).mean(axis=1)


def fit_reference(train_emb: np.ndarray, val_emb: np.ndarray, val_confidence=None, *,
                  k: int = 5, distance_percentile: float = 99.0,
                  confidence_percentile: float = 5.0, max_train: int = 200_000,
                  seed: int = 0) -> OODReference:
    """Build a run's OOD reference from its training and validation images.

    Parameters
    ----------
    train_emb : ndarray, shape (m, D)
        Embeddings of the images the model trained on.
    val_emb : ndarray, shape (v, D)
        Embeddings of its validation split (images it did not train on).
    val_confidence : array-like, shape (v,) or (v, C), optional
        Validation top-1 probabilities, or their full probability rows.
    k : int, keyword-only
        Nearest training images averaged (1 = "the nearest training image").
    distance_percentile : float, keyword-only
        An image farther than this percentile of validation images is flagged.
    confidence_percentile : float, keyword-only
        An image less confident than this percentile of validation images is flagged.
    max_train : int, keyword-only
        Training rows kept (a seeded sample), bounding the cost of every later score.
    seed : int, keyword-only

    Returns
    -------
    OODReference

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = fit_reference(rng.normal(size=(200, 8)) + 3, rng.normal(size=(50, 8)) + 3, k=1)
    >>> float(ref.distance_percentile)
    99.0
    """
    train = np.asarray(train_emb)
    if train.ndim != 2 or len(train) == 0 or train.shape[1] == 0:
        raise OODError(f"train_emb: expected a non-empty (m, D) array, got shape {train.shape}")
    if not np.isfinite(train).all():
        row = int(np.flatnonzero(~np.isfinite(train).all(axis=1))[0])
        raise OODError(f"train_emb: row {row} holds NaN or infinite values")
    for name, p in (("distance_percentile", distance_percentile),
                    ("confidence_percentile", confidence_percentile)):
        if not 0 < p < 100:
            raise OODError(f"{name}={p}: must lie strictly between 0 and 100")
    if k < 1 or k > len(train):
        raise OODError(f"k={k}: must lie in 1..{len(train)} (the number of training rows)")
    train = np.asarray(train[sample_points(len(train), max_train, seed=seed)], dtype=np.float32)
    val_d = np.sort(_distances(train, val_emb, k, "val_emb"))
    if len(val_d) == 0:
        raise OODError("val_emb: the validation split is empty; the OOD score needs it as reference")
    if val_confidence is None:
        val_c = np.zeros(0)
        c_thr = float("nan")
    else:
        val_c = np.sort(_confidence(val_confidence, "val_confidence"))
        if len(val_c) != len(val_d):
            raise OODError(f"val_confidence: {len(val_c)} rows for {len(val_d)} validation "
                           "embeddings")
        c_thr = float(np.percentile(val_c, confidence_percentile))
    return OODReference(train=train, k=int(k), val_distance=val_d, val_confidence=val_c,
                        distance_percentile=float(distance_percentile),
                        confidence_percentile=float(confidence_percentile),
                        distance_threshold=float(np.percentile(val_d, distance_percentile)),
                        confidence_threshold=c_thr)


def reference_from_run(embedding: np.ndarray, split, probs: np.ndarray | None = None, *,
                       train: str = "train", val: str = "val", **options) -> OODReference:
    """:func:`fit_reference` from a run's aligned arrays (``embedding``, ``split``, ``probs``).

    ``options`` go to :func:`fit_reference`. Raises :class:`OODError` naming the split when
    either split has no rows.
    """
    split = np.asarray(split).astype(str)
    emb = np.asarray(embedding)
    if emb.ndim != 2 or len(emb) != len(split):
        raise OODError(f"embedding: shape {emb.shape} does not match {len(split)} split values")
    masks = {}
    for name in (train, val):
        masks[name] = split == name
        if not masks[name].any():
            found = sorted(set(split.tolist()))[:10]
            raise OODError(f"split: no rows with split {name!r} (found {found})")
    conf = None if probs is None else np.asarray(probs)[masks[val]]
    return fit_reference(emb[masks[train]], emb[masks[val]], conf, **options)


@dataclass(frozen=True)
class OODResult:
    """OOD evidence per scored image (arrays of shape (n,)).

    Attributes
    ----------
    distance : mean cosine distance to the ``k`` nearest training images
    distance_rank : percentage of validation images closer to the training set (0..100);
        the screening score, higher = farther outside
    far : ``distance`` above the reference's distance threshold
    confidence : top-1 probability (NaN when not given)
    confidence_rank : percentage of validation images at least as confident (0..100)
    unsure : ``confidence`` below the reference's confidence threshold
    flagged : ``far | unsure``
    reference : the :class:`OODReference` used
    """

    distance: np.ndarray
    distance_rank: np.ndarray
    far: np.ndarray
    confidence: np.ndarray
    confidence_rank: np.ndarray
    unsure: np.ndarray
    flagged: np.ndarray
    reference: OODReference

    def __len__(self) -> int:
        return len(self.distance)

    def messages(self) -> list[str]:
        """One sentence per image naming the evidence (empty string when nothing is wrong)."""
        ref = self.reference
        near = ("any training image" if ref.k == 1
                else f"its {ref.k} nearest training images")
        out = []
        for i in range(len(self)):
            parts = []
            if self.far[i]:
                parts.append(f"farther from {near} than {self.distance_rank[i]:.1f} % of "
                             f"validation images (flagged above the "
                             f"{ref.distance_percentile:g}th percentile)")
            if self.unsure[i]:
                parts.append(f"confidence {self.confidence[i]:.2f} is lower than "
                             f"{self.confidence_rank[i]:.1f} % of validation images (below the "
                             f"{ref.confidence_percentile:g}th percentile, "
                             f"{ref.confidence_threshold:.2f})")
            out.append(("Outside the training distribution: " + "; ".join(parts) + ".")
                       if parts else "")
        return out

    @property
    def message(self) -> str:
        """For one image, its sentence; for many, how many are flagged and why."""
        if len(self) == 1:
            return self.messages()[0]
        n_far, n_unsure = int(self.far.sum()), int(self.unsure.sum())
        ref = self.reference
        return (f"{int(self.flagged.sum())} of {len(self)} images outside the training "
                f"distribution: {n_far} farther from the training images than "
                f"{ref.distance_percentile:g} % of validation images, {n_unsure} less "
                f"confident than the validation split's {ref.confidence_percentile:g}th "
                "percentile.")

    def to_frame(self) -> pd.DataFrame:
        """The evidence as a table, one row per scored image, in input order."""
        return pd.DataFrame({"distance": self.distance, "distance_rank": self.distance_rank,
                             "far": self.far, "confidence": self.confidence,
                             "confidence_rank": self.confidence_rank, "unsure": self.unsure,
                             "flagged": self.flagged, "message": self.messages()})


def score(reference: OODReference, emb: np.ndarray, confidence=None) -> OODResult:
    """Score images (one or a whole run) against a run's :class:`OODReference`.

    Parameters
    ----------
    reference : OODReference
    emb : ndarray, shape (n, D) or (D,)
        Embeddings of the images to screen (a single image as a 1-D vector).
    confidence : array-like, shape (n,) or (n, C), optional
        Their top-1 probabilities or probability rows; without it only distance is judged.

    Returns
    -------
    OODResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> train = rng.normal(size=(300, 8)) + np.r_[5, np.zeros(7)]
    >>> ref = fit_reference(train, rng.normal(size=(100, 8)) + np.r_[5, np.zeros(7)], k=1)
    >>> far_away = np.r_[np.zeros(7), 5.0]
    >>> r = score(ref, far_away)
    >>> bool(r.far[0]), r.message.startswith("Outside the training distribution: farther")
    (True, True)
    """
    emb = np.asarray(emb)
    if emb.ndim == 1:
        emb = emb[None, :]
    dist = _distances(reference.train, emb, reference.k, "emb")
    n = len(dist)
    d_rank = 100.0 * np.searchsorted(reference.val_distance, dist, side="left") \
        / len(reference.val_distance)
    far = dist > reference.distance_threshold
    if confidence is None or len(reference.val_confidence) == 0:
        conf = np.full(n, np.nan)
        c_rank = np.full(n, np.nan)
        unsure = np.zeros(n, dtype=bool)
    else:
        confidence = np.atleast_1d(np.asarray(confidence, dtype=np.float64))
        if n == 1 and confidence.ndim == 1 and confidence.size > 1:
            confidence = confidence[None, :]  # one image's probability row
        conf = _confidence(confidence, "confidence")
        if len(conf) != n:
            raise OODError(f"confidence: {len(conf)} rows for {n} embeddings")
        vc = reference.val_confidence
        c_rank = 100.0 * (len(vc) - np.searchsorted(vc, conf, side="right")) / len(vc)
        unsure = conf < reference.confidence_threshold
    return OODResult(distance=dist, distance_rank=d_rank, far=far, confidence=conf,
                     confidence_rank=c_rank, unsure=unsure, flagged=far | unsure,
                     reference=reference)


def run_reference(run, **options) -> OODReference:
    """:func:`reference_from_run` of a loaded run (``data.runs.Run``): its stored embedding,
    split and probabilities. Raises :class:`OODError` naming the run when it stored no
    embedding (predict without ``--embeddings``)."""
    if run.embedding is None:
        raise OODError(f"{run.path}: the run stored no embeddings (predict it with "
                       "--embeddings to screen images against it)")
    return reference_from_run(run.embedding, run.split, run.probs, **options)


def screen_run(run, *, reference: OODReference | None = None, **options) -> pd.DataFrame:
    """The OOD evidence for every image of a run, most outside first.

    Scored against ``reference`` (default: the run's own training and validation images,
    :func:`run_reference`), so a run predicted on a new site can be screened for images the
    model has no business answering.

    Returns
    -------
    DataFrame
        ``image_id``, ``split`` and the columns of :meth:`OODResult.to_frame`, sorted by
        ``distance_rank`` then ``distance`` (descending).
    """
    ref = run_reference(run, **options) if reference is None else reference
    res = score(ref, run.embedding, run.probs)
    table = res.to_frame()
    table.insert(0, "split", np.asarray(run.split).astype(str))
    table.insert(0, "image_id", np.asarray(run.image_ids).astype(str))
    return table.sort_values(["distance_rank", "distance"], ascending=False,
                             kind="stable").reset_index(drop=True)


def score_new_image(reference: OODReference, embedding: np.ndarray, probs=None, *,
                    reduction=None) -> OODResult:
    """Score one new image (an upload) given its full penultimate-layer embedding.

    ``reduction`` is the run's stored PCA (``data.embeddings.load_pca``; None when the run
    stored full embeddings): the image is placed in the same space as the run's embeddings
    before :func:`score`. Caution: a PCA fitted on the run's own images discards the
    directions in which a foreign image differs most; on a demo-trained run a real Serengeti
    photo sits at the 100th percentile of validation distances in the full 1280-D space but
    near the 50th after PCA to 64-D. Store full embeddings where OOD screening matters.
    """
    emb = np.asarray(embedding, dtype=np.float32).reshape(1, -1)
    if reduction is not None:
        if emb.shape[1] != reduction.mean.shape[0]:
            raise OODError(f"embedding: {emb.shape[1]} dimensions, the run's reduction expects "
                           f"{reduction.mean.shape[0]}")
        emb = reduction.transform(emb)
    return score(reference, emb, None if probs is None else np.asarray(probs)[None, :])
