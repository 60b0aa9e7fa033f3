"""Leak-free train/val/test splits: whole sites or whole captures go to one split.

Frames of one capture are near-duplicates and one site's background recurs in all its images,
so a random image split over-states accuracy. ``split_images`` assigns whole groups
(``location`` or ``seq_id``) to splits; ``find_overlaps`` checks any given split for leaks.
``by="image"`` is the original project's random image split (Norouzzadeh et al. 2018): it
leaks on purpose, so the Generalisation page can show how much such a split flatters a model.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SPLIT_NAMES = ("train", "val", "test")
GROUP_COLUMNS = {"location": "location", "sequence": "seq_id", "image": "image_id"}
_NO_GROUP = "\x00unknown"  # images without a site/capture form one group of their own


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    frac = np.asarray(fractions, dtype=float)
    if frac.ndim != 1 or not 1 <= frac.size <= len(SPLIT_NAMES):
        raise ValueError(f"fractions must hold 1 to {len(SPLIT_NAMES)} values, got {fractions}")
    if (frac < 0).any() or not np.isfinite(frac).all() or abs(frac.sum() - 1.0) > 1e-6:
        raise ValueError(f"fractions must be >= 0 and sum to 1, got {list(fractions)}")
    return frac


def _groups(images: pd.DataFrame, column: str) -> pd.Series:
    if column not in images.columns:
        raise ValueError(f"images has no {column!r} column")
    return images[column].astype("object").where(images[column].notna(), _NO_GROUP)


def split_images(images: pd.DataFrame, *, by: str = "location",
                 fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> pd.Series:
    """Assign every image to "train"/"val"/"test" so that no group spans two splits.

    Parameters
    ----------
    images : DataFrame
        ``Dataset.images`` (needs ``image_id`` and ``location`` or ``seq_id``).
    by : {"location", "sequence", "image"}
        Keep whole camera sites, or whole captures, in one split; ``image``: every image on
        its own (a random image split: frames of one capture and every site land on both
        sides, the leak the other two prevent).
    fractions : sequence of float
        Target share of *images* per split (train, val[, test]); sums to 1.
    seed : int
        Groups are shuffled with this seed; the same inputs give the same split.

    Returns
    -------
    Series
        Index ``image_id``, values split names, in the order of ``images``.

    Notes
    -----
    Groups are shuffled, laid end to end, and each goes to the split in whose share the middle
    of its image span falls, so image shares approach ``fractions`` as groups get small. With
    few large groups (a handful of sites) shares are coarse; a split may then be empty.

    Examples
    --------
    >>> imgs = pd.DataFrame({"image_id": list("abcd"), "location": ["s1", "s1", "s2", "s3"]})
    >>> s = split_images(imgs, by="location", fractions=(0.5, 0.5), seed=0)
    >>> s["a"] == s["b"]
    True
    >>> split_images(imgs, by="image", fractions=(0.5, 0.5), seed=0).value_counts().to_dict()
    {'train': 2, 'val': 2}
    """
    if by not in GROUP_COLUMNS:
        raise ValueError(f"by must be one of {sorted(GROUP_COLUMNS)}, got {by!r}")
    frac = _check_fractions(fractions)
    groups = _groups(images, GROUP_COLUMNS[by])
    codes, uniques = pd.factorize(groups, sort=True)
    sizes = np.bincount(codes, minlength=len(uniques)).astype(float)
    order = np.random.default_rng(seed).permutation(len(uniques))
    cum = np.cumsum(sizes[order])
    mid = (cum - sizes[order] / 2) / max(cum[-1] if cum.size else 1.0, 1.0)
    bounds = np.cumsum(frac)[:-1]
    assigned = np.empty(len(uniques), dtype=np.int64)
    assigned[order] = np.searchsorted(bounds, mid, side="right")
    names = np.asarray(SPLIT_NAMES[:frac.size], dtype=object)
    return pd.Series(names[assigned[codes]], index=pd.Index(images["image_id"], name="image_id"),
                     name="split", dtype="str")


def find_overlaps(images: pd.DataFrame, split: pd.Series) -> dict[str, list[str]]:
    """Sites and captures whose images fall in more than one split.

    Parameters
    ----------
    images : DataFrame
        ``Dataset.images`` (``image_id``, ``location``, ``seq_id``).
    split : Series
        image_id -> split name (images absent from ``split`` are ignored).

    Returns
    -------
    dict
        ``{"location": [...], "seq_id": [...]}``, each sorted; empty lists mean no leak.
    """
    s = pd.Series(split)
    if not s.index.is_unique:
        raise ValueError("split has duplicate image ids, e.g. "
                         f"{s.index[s.index.duplicated()][0]!r}")
    which = pd.Series(images["image_id"]).map(s).to_numpy()
    known = pd.notna(which)
    out: dict[str, list[str]] = {}
    for column in ("location", "seq_id"):
        if column not in images.columns:
            out[column] = []
            continue
        g = pd.DataFrame({"g": images[column].astype("object").to_numpy()[known],
                          "s": which[known]}).dropna()
        n = g.groupby("g", sort=True)["s"].nunique()
        out[column] = [str(k) for k in n.index[n > 1]]
    return out
