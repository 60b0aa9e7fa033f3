"""analysis.coverage: threshold curve and per-class thresholds against brute force."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.coverage import (VOLUNTEER_ACCURACY, automation_summary, class_thresholds,
                               coverage_curve)
from analysis.evalset import evalset_from_arrays
from tests.synth import make_arrays


@pytest.fixture
def ev():
    probs, y, _ = make_arrays(4000, 6, seed=4, accuracy=0.75)
    return evalset_from_arrays(probs, y)


def test_curve_matches_brute_force(ev):
    curve = coverage_curve(ev)
    conf = ev.probs.max(1)
    right = ev.probs.argmax(1) == ev.primary
    for _, row in curve.iloc[::7].iterrows():
        acc = conf >= row["threshold"]
        assert row["n_accepted"] == acc.sum()
        assert row["coverage"] == pytest.approx(acc.mean())
        if acc.any():
            assert row["accuracy"] == pytest.approx(right[acc].mean())
        else:
            assert np.isnan(row["accuracy"])
    assert curve["coverage"].iloc[0] == 1.0
    assert curve["coverage"].is_monotonic_decreasing


def test_class_thresholds_match_brute_force(ev):
    table = class_thresholds(ev, target_precision=0.95)
    conf, pred = ev.probs.max(1), ev.probs.argmax(1)
    right = pred == ev.primary
    for c in range(ev.n_classes):
        sel = pred == c
        best = 0
        for t in np.unique(conf[sel]):
            acc = sel & (conf >= t)
            if right[acc].mean() >= 0.95:
                best = max(best, acc.sum())
        assert table["n_accepted"][c] == best
        if best:
            assert table["precision"][c] >= 0.95
            assert (sel & (conf >= table["threshold"][c])).sum() == best
    attrs = table.attrs
    assert attrs["n_accepted"] + attrs["n_left"] == len(ev)
    assert attrs["accuracy_accepted"] >= 0.95


def test_stricter_target_leaves_more_for_people(ev):
    a, b = automation_summary(ev)
    assert b["target_precision"] == VOLUNTEER_ACCURACY
    assert b["n_left"] >= a["n_left"]


def test_unreachable_target_gives_nan_threshold():
    probs = np.array([[0.6, 0.4]] * 10, np.float32)
    ev = evalset_from_arrays(probs, np.array([0] * 5 + [1] * 5))
    row = class_thresholds(ev, target_precision=0.9).iloc[0]
    assert np.isnan(row["threshold"]) and row["n_accepted"] == 0 and row["n_left"] == 10
