"""The empty-image filter: what a threshold on "is there an animal?" removes and loses.

On Snapshot Serengeti three images in four are empty, and filtering them out is the first thing
a project does with a detector. Any run can act as one: an image's *animal score* is a
detector's largest confidence (imported MegaDetector or SpeciesNet runs carry it) or, for any
classifier, ``1 - p(empty)`` (every non-empty class counts as "animal"). At threshold ``t`` an
image is **removed** when its score is below ``t``. For each threshold:

- *empty removed*: the share of truly empty images (label set exactly ``{empty}``) removed;
- *animals lost*: the share of images labelled with anything else that are removed.

At capture level a capture is removed when every frame is removed, empty when every frame is
empty, and lost when it holds an animal and is removed. :func:`lost_breakdown` says which
species and conditions (day/night, frame position, site) the lost animals come from.
Intervals resample whole captures (``analysis.metrics.resampled_counts``).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.metrics import percentile_interval, resampled_counts

EMPTY = "empty"
#: Breakdown dimensions: name -> meta column (``species`` comes from the label sets).
DIMENSIONS = {"species": None, "day_night": "day_night", "frame": "frame_num", "site": "location"}
THRESHOLDS = np.round(np.linspace(0.0, 1.0, 101), 2)


def animal_score(probs: np.ndarray, classes: Sequence[str], *, empty: str = EMPTY) -> np.ndarray:
    """``1 - p(empty)`` per image: every class but ``empty`` counts as "animal".

    Parameters
    ----------
    probs : ndarray, shape (n, C)
    classes : sequence of str, length C

    Returns
    -------
    ndarray of float64, shape (n,)

    >>> animal_score(np.array([[0.9, 0.1], [0.2, 0.8]]), ["empty", "zebra"]).round(2).tolist()
    [0.1, 0.8]
    """
    classes = list(classes)
    if empty not in classes:
        raise ValueError(f"the run has no {empty!r} class, so it cannot say an image is empty: "
                         f"{classes[:6]}")
    return 1.0 - np.asarray(probs, np.float64)[:, classes.index(empty)]


def truth(labels: np.ndarray, classes: Sequence[str], *, empty: str = EMPTY) -> np.ndarray:
    """Bool (n,): the image is labelled with something other than ``empty`` ("animal").

    >>> truth(np.array([[1, 0], [1, 1], [0, 1]], bool), ["empty", "zebra"]).tolist()
    [False, True, True]
    """
    labels = np.asarray(labels, bool)
    keep = np.array([c != empty for c in classes])
    return labels[:, keep].any(axis=1)


def _captures(score: np.ndarray, animal: np.ndarray, seq_id: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(max score, any animal, capture code) per capture."""
    code, uniques = pd.factorize(np.asarray(seq_id))
    n = len(uniques)
    best = np.full(n, -np.inf)
    np.maximum.at(best, code, score)
    anim = np.zeros(n, bool)
    np.logical_or.at(anim, code, animal)
    return best, anim, np.arange(n)


def _level(score, animal, seq_id, level):
    score = np.asarray(score, np.float64)
    animal = np.asarray(animal, bool)
    if score.shape != animal.shape or score.ndim != 1:
        raise ValueError(f"score {score.shape} and animal {animal.shape} must be two (n,) arrays")
    if level == "image":
        return score, animal, seq_id
    if level != "capture":
        raise ValueError(f"level must be 'image' or 'capture', got {level!r}")
    if seq_id is None:
        raise ValueError("capture level needs seq_id")
    return _captures(score, animal, seq_id)


def filter_curve(score: np.ndarray, animal: np.ndarray, *, seq_id: np.ndarray | None = None,
                 level: str = "image", thresholds: Sequence[float] = THRESHOLDS) -> pd.DataFrame:
    """Share of empty images removed and of animal images lost at each threshold.

    Parameters
    ----------
    score : ndarray of float, shape (n,)
        Animal score per image (higher = more likely an animal).
    animal : ndarray of bool, shape (n,)
        True for an image labelled with an animal (:func:`truth`).
    seq_id : ndarray, shape (n,), optional
        Capture of each image; needed for ``level="capture"``.
    level : {"image", "capture"}
    thresholds : sequence of float

    Returns
    -------
    DataFrame
        One row per threshold: ``threshold``, ``n_empty``, ``n_animal``, ``empty_removed``,
        ``animal_lost`` (shares; NaN without images of that kind), ``removed`` (share of all).

    >>> s = np.array([0.1, 0.3, 0.6, 0.9]); a = np.array([False, False, True, True])
    >>> filter_curve(s, a, thresholds=[0.5, 0.7])[["empty_removed", "animal_lost"]].values.tolist()
    [[1.0, 0.0], [1.0, 0.5]]
    """
    score, animal, _ = _level(score, animal, seq_id, level)
    t = np.asarray(thresholds, np.float64)
    emp = np.sort(score[~animal])
    ani = np.sort(score[animal])
    gone_e = np.searchsorted(emp, t, side="left")     # scores < t are removed
    gone_a = np.searchsorted(ani, t, side="left")
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame({
            "threshold": t, "n_empty": len(emp), "n_animal": len(ani),
            "empty_removed": gone_e / len(emp) if len(emp) else np.nan,
            "animal_lost": gone_a / len(ani) if len(ani) else np.nan,
            "removed": (gone_e + gone_a) / max(len(score), 1)})


def filter_at(score: np.ndarray, animal: np.ndarray, seq_id: np.ndarray, *, threshold: float,
              level: str = "image", n_resamples: int = 200, seed: int = 0) -> dict:
    """The filter at one threshold with capture-bootstrap intervals.

    Parameters
    ----------
    score, animal, seq_id : ndarray, shape (n,)
        See :func:`filter_curve`; ``seq_id`` groups the resampling.
    threshold : float
    level : {"image", "capture"}
    n_resamples : int
        0 gives ``[nan, nan]`` intervals.

    Returns
    -------
    dict
        ``threshold, level, n, n_empty, n_animal, n_empty_removed, n_animal_lost,
        empty_removed, animal_lost`` and ``empty_removed_ci``, ``animal_lost_ci`` ([lo, hi]).

    >>> r = filter_at(np.array([0.1, 0.6]), np.array([False, True]), np.array(["a", "b"]),
    ...               threshold=0.5, n_resamples=0)
    >>> r["empty_removed"], r["animal_lost"]
    (1.0, 0.0)
    """
    score, animal, groups = _level(score, animal, seq_id, level)
    kept = score >= threshold
    n_e, n_a = int((~animal).sum()), int(animal.sum())
    e_rm, a_lost = int((~animal & ~kept).sum()), int((animal & ~kept).sum())
    out = {"threshold": float(threshold), "level": level, "n": int(len(score)),
           "n_empty": n_e, "n_animal": n_a, "n_empty_removed": e_rm, "n_animal_lost": a_lost,
           "empty_removed": e_rm / n_e if n_e else float("nan"),
           "animal_lost": a_lost / n_a if n_a else float("nan"),
           "empty_removed_ci": [float("nan")] * 2, "animal_lost_ci": [float("nan")] * 2}
    if n_resamples > 0 and len(score):
        # Two "classes": 0 = empty, 1 = animal; predicted 0 = removed, 1 = kept.
        (tp, _, true), = resampled_counts([(animal.astype(np.int64), kept.astype(np.int64))],
                                          groups, 2, n_resamples=n_resamples, seed=seed)
        with np.errstate(invalid="ignore", divide="ignore"):
            removed_e = tp[:, 0] / true[:, 0]            # empty and removed
            lost_a = 1.0 - tp[:, 1] / true[:, 1]         # animal and not kept
        if n_e:
            out["empty_removed_ci"] = percentile_interval(removed_e[np.isfinite(removed_e)]).tolist()
        if n_a:
            out["animal_lost_ci"] = percentile_interval(lost_a[np.isfinite(lost_a)]).tolist()
    return out


def lost_breakdown(score: np.ndarray, labels: np.ndarray, classes: Sequence[str],
                   meta: pd.DataFrame, *, threshold: float,
                   dimensions: Sequence[str] = tuple(DIMENSIONS), n_resamples: int = 200,
                   seed: int = 0, empty: str = EMPTY) -> pd.DataFrame:
    """Where the animal images lost at ``threshold`` come from, per species and condition.

    Parameters
    ----------
    score : ndarray of float, shape (n,)
    labels : ndarray of bool, shape (n, C)
    classes : sequence of str, length C
    meta : DataFrame, n rows
        ``seq_id`` and the columns of :data:`DIMENSIONS` used (``day_night``, ``frame_num``,
        ``location``); a missing value is its own group (``"?"``).
    threshold : float
    dimensions : sequence of str
        Keys of :data:`DIMENSIONS`.
    n_resamples : int
    seed : int

    Returns
    -------
    DataFrame
        One row per (dimension, value) with animal images: ``dimension``, ``value``,
        ``n_animal``, ``n_lost``, ``lost_rate`` (share of the group's animal images removed),
        ``lost_rate_lo``, ``lost_rate_hi`` (capture-bootstrap interval), ``share_of_lost``
        (the group's part of all lost animal images; a multi-species image counts for each
        species). Sorted by dimension, then ``n_lost`` descending.

    >>> meta = pd.DataFrame({"seq_id": ["a", "b", "c"], "day_night": ["day", "night", "night"],
    ...                      "frame_num": [1, 2, 1], "location": ["X", "X", "Y"]})
    >>> y = np.array([[0, 1], [0, 1], [1, 0]], bool)
    >>> t = lost_breakdown(np.array([0.9, 0.2, 0.1]), y, ["empty", "zebra"], meta,
    ...                    threshold=0.5, n_resamples=0)
    >>> t[["dimension", "value", "n_animal", "n_lost"]].values.tolist()[:3]
    [['species', 'zebra', 2, 1], ['day_night', 'night', 1, 1], ['day_night', 'day', 1, 0]]
    """
    labels = np.asarray(labels, bool)
    classes = list(classes)
    animal = truth(labels, classes, empty=empty)
    lost = animal & (np.asarray(score, np.float64) < threshold)
    seq = np.asarray(meta["seq_id"].astype(str))
    rows = []
    for dim in dimensions:
        if dim not in DIMENSIONS:
            raise ValueError(f"unknown dimension {dim!r}; choose from {list(DIMENSIONS)}")
        if dim == "species":
            img, cls = np.nonzero(labels & animal[:, None])
            keep = np.array([c != empty for c in classes])[cls]
            img, values = img[keep], np.asarray(classes, dtype=object)[cls[keep]]
        else:
            col = DIMENSIONS[dim]
            if col not in meta.columns:
                continue
            img = np.flatnonzero(animal)
            values = meta[col].astype(object).to_numpy()[img]
            values = np.array(["?" if pd.isna(v) else str(v) for v in values], dtype=object)
        code, names = pd.factorize(values, sort=True)
        g = len(names)
        if not g:
            continue
        n_animal = np.bincount(code, minlength=g)
        n_lost = np.bincount(code, weights=lost[img], minlength=g).astype(int)
        lo = hi = np.full(g, np.nan)
        if n_resamples > 0:
            # y_true = group, y_pred = group when lost else an extra class g.
            pred = np.where(lost[img], code, g)
            (tp, _, true), = resampled_counts([(code, pred)], seq[img], g + 1,
                                              n_resamples=n_resamples, seed=seed)
            with np.errstate(invalid="ignore", divide="ignore"):
                rate = tp[:, :g] / true[:, :g]
            ci = np.array([percentile_interval(r[np.isfinite(r)]) if np.isfinite(r).any()
                           else [np.nan, np.nan] for r in rate.T])
            lo, hi = ci[:, 0], ci[:, 1]
        total = max(int(n_lost.sum()), 1)
        for k in range(g):
            rows.append({"dimension": dim, "value": str(names[k]), "n_animal": int(n_animal[k]),
                         "n_lost": int(n_lost[k]), "lost_rate": n_lost[k] / n_animal[k],
                         "lost_rate_lo": float(lo[k]), "lost_rate_hi": float(hi[k]),
                         "share_of_lost": n_lost[k] / total})
    out = pd.DataFrame(rows, columns=["dimension", "value", "n_animal", "n_lost", "lost_rate",
                                      "lost_rate_lo", "lost_rate_hi", "share_of_lost"])
    order = {d: i for i, d in enumerate(dimensions)}
    out["_d"] = out["dimension"].map(order)
    return (out.sort_values(["_d", "n_lost", "n_animal", "value"],
                            ascending=[True, False, False, True], kind="stable")
            .drop(columns="_d").reset_index(drop=True))


def lost_images(score: np.ndarray, labels: np.ndarray, classes: Sequence[str], *,
                threshold: float, empty: str = EMPTY) -> np.ndarray:
    """Row indices of the animal images removed at ``threshold``, most confident miss last
    (lowest score first: the clearest losses lead the gallery).

    >>> lost_images(np.array([0.3, 0.1, 0.9]), np.array([[0, 1], [0, 1], [0, 1]], bool),
    ...             ["empty", "zebra"], threshold=0.5).tolist()
    [1, 0]
    """
    score = np.asarray(score, np.float64)
    rows = np.flatnonzero(truth(labels, classes, empty=empty) & (score < threshold))
    return rows[np.argsort(score[rows], kind="stable")]


def run_scores(ev, *, detector: pd.Series | None = None) -> tuple[np.ndarray, str]:
    """Animal score of each row of an ``EvalSet`` and what it is.

    A detector's largest confidence (``detector``: image_id -> confidence, e.g.
    ``data.imports.read_detector_scores``) where it covers every image, else
    ``1 - p(empty)`` (:func:`animal_score`).
    """
    if detector is not None:
        conf = detector.reindex(np.asarray(ev.image_ids, dtype=object)).to_numpy(np.float64)
        if len(conf) and np.isfinite(conf).all():
            return conf, "detector confidence"
    return animal_score(ev.probs, ev.classes), "1 - p(empty)"


def lost_items(ev, score: np.ndarray, *, threshold: float, limit: int = 500) -> pd.DataFrame:
    """Gallery rows of the animal images lost at ``threshold`` (lowest score first):
    ``image_id, file_name, seq_id, caption``."""
    rows = lost_images(score, ev.labels, ev.classes, threshold=threshold)[:limit]
    meta = ev.meta.iloc[rows]
    names = np.asarray(ev.classes, dtype=object)
    captions = [f"score {score[r]:.2f} · labelled {'+'.join(names[ev.labels[r]])} · "
                f"frame {f} · {dn if isinstance(dn, str) else '?'}"
                for r, f, dn in zip(rows, meta["frame_num"], meta["day_night"])]
    return pd.DataFrame({"image_id": meta["image_id"].astype(str).to_numpy(),
                         "file_name": meta["file_name"].astype(str).to_numpy(),
                         "seq_id": meta["seq_id"].astype(str).to_numpy(), "caption": captions})
