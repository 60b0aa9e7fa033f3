"""analysis.prepare: once-per-run tables memoised on the EvalSet, equal to fresh computations."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.calibration import reliability
from analysis.evalset import aggregate_sequences, capture_codes, evalset_from_arrays, targets
from analysis.prepare import prepare
from analysis.ranking import top_losses
from tests.synth import make_arrays


def _ev(seed: int = 0):
    probs, y, cap = make_arrays(400, 6, seed=seed)
    labels = np.zeros(probs.shape, bool)
    labels[np.arange(len(y)), y] = True
    ids = np.array([f"img{i:04d}" for i in range(len(y))], dtype=object)
    meta = pd.DataFrame({"image_id": ids, "seq_id": pd.Categorical([f"c{c}" for c in cap])})
    return evalset_from_arrays(probs, labels, primary=y, meta=meta, image_ids=ids)


def test_prepare_memoises_and_equals_fresh_computation():
    ev, fresh = _ev(), _ev()
    seen = []
    assert prepare(ev, progress=lambda f, step: seen.append((f, step))) is ev
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0 and seen[-1] == (1.0, "ready")
    for key in ("pred", "pred_prob", "targets:set", "targets:primary", "groups",
                "ranking:loss", "aggregate:mean", "capture_index"):
        assert any(k == key or str(k).startswith(key) for k in ev._cache), key
    # what the pages then read equals the same computation on an unprepared set
    for policy in ("set", "primary"):
        for a, b in zip(targets(ev, policy=policy), targets(fresh, policy=policy)):
            np.testing.assert_array_equal(a, b)
    pd.testing.assert_frame_equal(top_losses(ev, k=50), top_losses(fresh, k=50))
    pd.testing.assert_frame_equal(reliability(ev), reliability(fresh))
    np.testing.assert_array_equal(capture_codes(ev)[0], capture_codes(fresh)[0])
    agg = aggregate_sequences(ev, how="mean")
    assert agg is aggregate_sequences(ev, how="mean")              # memoised: the same set
    ref = aggregate_sequences(fresh, how="mean")
    np.testing.assert_allclose(agg.probs, ref.probs)
    np.testing.assert_array_equal(agg.pred, ref.pred)
    assert "pred" in agg._cache                                     # prepared too
    # a subset of a prepared set slices the per-row memo and keeps no capture-level set
    sub = ev.subset(np.arange(len(ev)) % 2 == 0)
    assert "aggregate:mean" not in sub._cache
    np.testing.assert_array_equal(sub.pred, fresh.subset(np.arange(len(ev)) % 2 == 0).pred)


def test_prepare_fits_the_temperature_and_the_capture_layout_once(tmp_path):
    """With the run folder, the whole run's temperature fit (what the Calibration page asks
    first) and the ecology's capture layout are prepared: the page's call then returns the
    memo, equal to a fresh fit, and stores calibration.json beside the run."""
    from analysis.decision import fit_run_temperature, layout_for

    def ev_with_meta():
        ev = _ev(1)
        n = len(ev)
        ev.meta["split"] = np.where(np.arange(n) % 3 == 0, "val", "test")
        ev.meta["location"] = pd.Categorical(np.where(np.arange(n) % 2 == 0, "A", "B"))
        ev.meta["datetime"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(
            np.arange(n) * 3600, unit="s")
        return ev

    ev, fresh = ev_with_meta(), ev_with_meta()
    run = tmp_path / "run"
    run.mkdir()
    steps = []
    prepare(ev, run_dir=str(run), progress=lambda f, step: steps.append(step))
    assert "fitted temperature, ECE before and after" in steps
    assert "capture layout (ecology)" in steps
    assert "capture_layout" in ev._cache and (run / "calibration.json").is_file()
    memo = next(k for k in ev._cache if k.startswith("calibration_fit:"))
    got = fit_run_temperature(ev, ev, run_dir=str(run))
    assert got == ev._cache[memo] and got is not ev._cache[memo]  # a copy: callers may edit
    want = fit_run_temperature(fresh, fresh, run_dir=None)
    assert np.isclose(got["temperature"], want["temperature"])
    assert np.isclose(got["ece_after"], want["ece_after"])
    assert layout_for(ev) is ev._cache["capture_layout"]
