"""analysis.ood: a far-away image is flagged, an in-distribution one is not, evidence named."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.ood import OODError, fit_reference, reference_from_run, score


def world(seed=0, dim=16):
    """Training/validation/test images around three class directions, plus far ones."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:3] * 10

    def draw(n):
        return centres[rng.integers(0, 3, n)] + rng.normal(size=(n, dim))

    far = np.zeros((20, dim))
    far[:, 8:] = rng.normal(size=(20, dim - 8)) * 10  # directions no class occupies
    val_conf = np.clip(rng.beta(8, 2, size=300), 0, 1)
    return draw(1000), draw(300), val_conf, draw(200), far


def test_far_images_flagged_in_distribution_not():
    train, val, val_conf, test, far = world()
    ref = fit_reference(train, val, val_conf, k=5)
    inside = score(ref, test)
    outside = score(ref, far)
    assert outside.far.all() and (outside.distance_rank == 100).all()
    # ~1 % of in-distribution images exceed the validation 99th percentile, by definition.
    assert inside.far.mean() < 0.05
    assert inside.distance.max() < outside.distance.min()


def test_distance_rank_is_the_validation_percentile():
    train, val, val_conf, _, _ = world()
    ref = fit_reference(train, val, val_conf, k=3)
    r = score(ref, val)
    # Scoring the validation images themselves: ranks spread evenly over 0..100.
    np.testing.assert_allclose(np.sort(r.distance_rank), np.arange(len(val)) / len(val) * 100)
    assert r.far.sum() == pytest.approx(0.01 * len(val), abs=1)
    np.testing.assert_allclose(np.percentile(r.distance, 99), ref.distance_threshold)


def test_single_image_message_names_the_evidence():
    train, val, val_conf, test, far = world()
    ref = fit_reference(train, val, val_conf, k=1)
    r = score(ref, far[0], confidence=0.2)
    assert r.flagged.tolist() == [True]
    assert "farther from any training image than 100.0 % of validation images" in r.message
    assert "99th percentile" in r.message
    assert "confidence 0.20 is lower than" in r.message and "5th percentile" in r.message
    ok = score(ref, test[0], confidence=0.95)
    assert not ok.flagged[0] and ok.message == ""


def test_low_confidence_alone_flags():
    train, val, val_conf, test, _ = world()
    ref = fit_reference(train, val, val_conf)
    probs = np.array([[0.34, 0.33, 0.33], [0.9, 0.05, 0.05]])
    r = score(ref, test[:2], confidence=probs)
    assert r.unsure.tolist() == [True, False]
    assert r.confidence.tolist() == [0.34, 0.9]
    assert r.confidence_rank[0] > 95
    assert not r.far.any()


def test_whole_run_screening_and_table():
    train, val, val_conf, test, far = world()
    ref = fit_reference(train, val, val_conf)
    new_site = np.vstack([test[:50], far[:5]])
    r = score(ref, new_site)
    assert r.far[50:].all()
    df = r.to_frame()
    assert len(df) == 55 and df["message"].str.startswith("Outside").sum() == r.flagged.sum()
    assert r.message.startswith(f"{int(r.flagged.sum())} of 55 images outside")


def test_reference_from_run_arrays():
    train, val, val_conf, _, far = world()
    emb = np.vstack([train, val]).astype(np.float16)
    split = np.r_[["train"] * len(train), ["val"] * len(val)]
    probs = np.c_[val_conf, 1 - val_conf]
    probs = np.vstack([np.tile([0.5, 0.5], (len(train), 1)), probs])
    ref = reference_from_run(emb, split, probs, k=2)
    assert len(ref.val_distance) == len(val) and ref.k == 2
    assert score(ref, far).far.all()
    with pytest.raises(OODError, match="no rows with split 'val'"):
        reference_from_run(emb, np.full(len(emb), "train"))


@pytest.mark.parametrize("kwargs,match", [
    ({"distance_percentile": 100}, "distance_percentile=100"),
    ({"k": 0}, "k=0"),
])
def test_fit_reference_rejects_bad_options(kwargs, match):
    train, val, val_conf, _, _ = world()
    with pytest.raises(OODError, match=match):
        fit_reference(train, val, val_conf, **kwargs)


def test_bad_inputs_named():
    train, val, val_conf, test, _ = world()
    bad = val_conf.copy()
    bad[4] = 1.5
    with pytest.raises(OODError, match="val_confidence: row 4 has confidence 1.5"):
        fit_reference(train, val, bad)
    ref = fit_reference(train, val, val_conf)
    with pytest.raises(OODError, match=r"emb: expected shape \(n, 16\)"):
        score(ref, test[:, :8])
    nan = test[:3].copy()
    nan[2, 0] = np.nan
    with pytest.raises(OODError, match="emb: row 2"):
        score(ref, nan)
