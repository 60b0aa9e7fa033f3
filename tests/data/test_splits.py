"""data.splits: no site or capture in two splits, for any seed and fractions."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data.cct import load_dataset
from data.splits import find_overlaps, split_images


def _images(n_sites: int, n_seq: int, frames: int = 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    seq_site = rng.integers(0, n_sites, n_seq)
    rows = [(f"img{s}_{f}", f"SER_S1#L{seq_site[s]}#1#{s}", f"L{seq_site[s]}")
            for s in range(n_seq) for f in range(1 + int(rng.integers(0, frames)))]
    df = pd.DataFrame(rows, columns=["image_id", "seq_id", "location"])
    df["seq_id"] = df["seq_id"].astype("category")
    df["location"] = df["location"].astype("category")
    return df


fractions = st.lists(st.floats(0.0, 1.0), min_size=2, max_size=3).filter(
    lambda f: sum(f) > 0.05).map(lambda f: tuple(x / sum(f) for x in f))


@settings(max_examples=60, deadline=None)
@given(n_sites=st.integers(1, 12), n_seq=st.integers(1, 80), seed=st.integers(0, 2**31),
       frac=fractions, by=st.sampled_from(["location", "sequence"]))
def test_no_leaks_any_seed_and_fractions(n_sites, n_seq, seed, frac, by):
    imgs = _images(n_sites, n_seq, seed=seed % 1000)
    split = split_images(imgs, by=by, fractions=frac, seed=seed)
    assert list(split.index) == list(imgs["image_id"])              # every image, in order
    assert set(split) <= set(["train", "val", "test"][: len(frac)])
    overlaps = find_overlaps(imgs, split)
    assert overlaps["seq_id"] == []                                 # captures never leak
    if by == "location":
        assert overlaps["location"] == []
    per_group = pd.DataFrame({"g": imgs["location" if by == "location" else "seq_id"],
                              "s": split.to_numpy()}).groupby("g", observed=True)["s"]
    assert (per_group.nunique() == 1).all()
    pd.testing.assert_series_equal(split, split_images(imgs, by=by, fractions=frac, seed=seed))


@pytest.mark.parametrize("by", ["location", "sequence"])
def test_fractions_approached_with_many_groups(by):
    imgs = _images(n_sites=200, n_seq=3000, seed=1)
    share = split_images(imgs, by=by, fractions=(0.7, 0.2, 0.1), seed=3) \
        .value_counts(normalize=True)
    assert share["train"] == pytest.approx(0.7, abs=0.03)
    assert share["val"] == pytest.approx(0.2, abs=0.03)
    assert share["test"] == pytest.approx(0.1, abs=0.03)


def test_seed_changes_assignment():
    imgs = _images(n_sites=50, n_seq=400)
    a = split_images(imgs, by="location", seed=0)
    b = split_images(imgs, by="location", seed=1)
    assert (a != b).any()


def test_find_overlaps_reports_leaks():
    imgs = pd.DataFrame({"image_id": ["a", "b", "c", "d"], "seq_id": ["s1", "s1", "s2", "s3"],
                         "location": ["L1", "L1", "L1", "L2"]})
    split = pd.Series({"a": "train", "b": "test", "c": "train", "d": "val"})
    assert find_overlaps(imgs, split) == {"location": ["L1"], "seq_id": ["s1"]}
    split2 = pd.Series({"a": "train", "b": "train", "c": "val"})    # d absent: ignored
    assert find_overlaps(imgs, split2) == {"location": ["L1"], "seq_id": []}
    ok = split_images(imgs, by="location", fractions=(0.5, 0.5), seed=0)
    assert find_overlaps(imgs, ok) == {"location": [], "seq_id": []}


def test_unknown_location_is_one_group():
    imgs = pd.DataFrame({"image_id": list("abcd"), "seq_id": list("wxyz"),
                         "location": pd.Categorical([None, None, "L1", "L2"])})
    for seed in range(10):
        s = split_images(imgs, by="location", fractions=(0.4, 0.3, 0.3), seed=seed)
        assert s["a"] == s["b"]


@pytest.mark.parametrize("kwargs, match", [
    ({"by": "site"}, "by must be one of"),
    ({"fractions": (0.5, 0.6)}, "sum to 1"),
    ({"fractions": (1.2, -0.2)}, ">= 0"),
    ({"fractions": (0.25,) * 4}, "1 to 3 values"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        split_images(_images(3, 10), **kwargs)


def test_duplicate_split_ids_refused():
    imgs = _images(2, 4)
    bad = pd.Series(["train", "val"], index=[imgs["image_id"][0]] * 2)
    with pytest.raises(ValueError, match="duplicate image ids"):
        find_overlaps(imgs, bad)


def test_split_on_the_real_slice(serengeti_slice):
    ds = load_dataset([serengeti_slice])
    split = split_images(ds.images, by="sequence", fractions=(0.5, 0.25, 0.25), seed=0)
    assert find_overlaps(ds.images, split)["seq_id"] == []
    assert split.groupby(ds.images["seq_id"].to_numpy(), observed=True).nunique().max() == 1


def test_random_image_split_leaks_sites_and_captures_as_the_original_project_did():
    """``by="image"`` (the demo's leaky run): shares near the fractions, every image once,
    and sites and captures on both sides (what the location split prevents)."""
    imgs = _images(n_sites=6, n_seq=400, frames=3, seed=1)
    split = split_images(imgs, by="image", fractions=(0.7, 0.15, 0.15), seed=0)
    assert list(split.index) == list(imgs["image_id"])
    share = split.value_counts(normalize=True)
    assert share["train"] == pytest.approx(0.7, abs=0.05)
    overlaps = find_overlaps(imgs, split)
    assert len(overlaps["location"]) == 6           # every site in more than one split
    assert len(overlaps["seq_id"]) > 50             # multi-frame captures split apart
    assert split_images(imgs, by="image", seed=0).equals(split_images(imgs, by="image",
                                                                      seed=0))
