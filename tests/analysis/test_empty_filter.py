"""analysis.empty_filter on known numbers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.empty_filter import (animal_score, filter_at, filter_curve, lost_breakdown,
                                   lost_images, truth)

CLASSES = ["empty", "zebra", "lion"]
# 3 captures: a (2 empty frames), b (zebra, 3 frames), c (lion 1 frame + an empty frame).
SEQ = np.array(["a", "a", "b", "b", "b", "c", "c"])
LABELS = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1],
                   [1, 0, 0]], bool)
SCORE = np.array([0.05, 0.4, 0.9, 0.3, 0.1, 0.2, 0.6])
META = pd.DataFrame({"seq_id": SEQ, "day_night": ["day"] * 5 + ["night"] * 2,
                     "frame_num": [1, 2, 1, 2, 3, 1, 2],
                     "location": ["X"] * 5 + ["Y"] * 2})


def test_truth_and_score():
    assert truth(LABELS, CLASSES).tolist() == [False, False, True, True, True, True, False]
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert animal_score(probs, CLASSES) == pytest.approx([0.3, 0.9])
    with pytest.raises(ValueError, match="no 'empty' class"):
        animal_score(probs, ["a", "b", "c"])


def test_curve_image_and_capture_level():
    animal = truth(LABELS, CLASSES)
    c = filter_curve(SCORE, animal, seq_id=SEQ, thresholds=[0.0, 0.25, 0.5, 1.0])
    # empties 0.05, 0.4, 0.6 ; animals 0.9, 0.3, 0.1, 0.2
    assert c["empty_removed"].tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert c["animal_lost"].tolist() == pytest.approx([0, 2 / 4, 3 / 4, 1])
    assert c["removed"].tolist() == pytest.approx([0, 3 / 7, 5 / 7, 1])
    # captures: a empty max 0.4; b animal max 0.9; c animal max 0.6
    cc = filter_curve(SCORE, animal, seq_id=SEQ, level="capture", thresholds=[0.5, 0.7, 0.95])
    assert cc["n_empty"].iat[0] == 1 and cc["n_animal"].iat[0] == 2
    assert cc["empty_removed"].tolist() == [1.0, 1.0, 1.0]
    assert cc["animal_lost"].tolist() == [0.0, 0.5, 1.0]
    with pytest.raises(ValueError, match="capture level needs seq_id"):
        filter_curve(SCORE, animal, level="capture")


def test_filter_at_intervals_bracket_the_estimate():
    rng = np.random.default_rng(0)
    n_caps, frames = 300, 3
    seq = np.repeat(np.arange(n_caps), frames)
    animal = np.repeat(rng.random(n_caps) < 0.3, frames)
    score = np.clip(np.where(animal, 0.7, 0.2) + rng.normal(0, 0.2, len(seq)), 0, 1)
    r = filter_at(score, animal, seq, threshold=0.45, n_resamples=300)
    assert r["n_animal"] == animal.sum() and r["n_empty"] == (~animal).sum()
    assert r["animal_lost"] == pytest.approx(((score < 0.45) & animal).sum() / animal.sum())
    for key in ("empty_removed", "animal_lost"):
        lo, hi = r[f"{key}_ci"]
        assert lo <= r[key] <= hi and hi - lo < 0.2
    rc = filter_at(score, animal, seq, threshold=0.45, level="capture", n_resamples=100)
    assert rc["n"] == n_caps


def test_breakdown_species_and_conditions():
    t = lost_breakdown(SCORE, LABELS, CLASSES, META, threshold=0.25, n_resamples=50)
    sp = t[t["dimension"] == "species"].set_index("value")
    # zebra frames 0.9, 0.3, 0.1 -> one lost; lion 0.2 -> lost
    assert sp.loc["zebra", "n_animal"] == 3 and sp.loc["zebra", "n_lost"] == 1
    assert sp.loc["lion", "n_lost"] == 1 and sp.loc["lion", "lost_rate"] == 1.0
    assert sp["share_of_lost"].sum() == pytest.approx(1.0)
    frame = t[t["dimension"] == "frame"].set_index("value")
    assert frame.loc["3", "n_lost"] == 1 and frame.loc["2", "n_lost"] == 0
    assert frame.loc["1", "n_lost"] == 1 and frame.loc["1", "n_animal"] == 2
    dn = t[t["dimension"] == "day_night"].set_index("value")
    assert dn.loc["night", "lost_rate"] == 1.0 and dn.loc["day", "lost_rate"] == pytest.approx(1 / 3)
    lo, hi = dn.loc["day", ["lost_rate_lo", "lost_rate_hi"]]
    assert 0.0 <= lo <= 1 / 3 <= hi <= 1.0
    assert list(t["dimension"].unique()) == ["species", "day_night", "frame", "site"]


def test_lost_images_order():
    assert lost_images(SCORE, LABELS, CLASSES, threshold=0.25).tolist() == [4, 5]
