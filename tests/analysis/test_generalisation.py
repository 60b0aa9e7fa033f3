"""analysis.generalisation: seen vs unseen sites on a fixture with known training sites."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from analysis.evalset import evalset_from_arrays
from analysis.generalisation import GeneralisationError, generalisation, generalisation_for


def _fixture(seed: int = 0):
    """Sites S0-S5; S0-S2 were trained on (accuracy 0.9), S3-S5 are new (accuracy 0.6)."""
    rng = np.random.default_rng(seed)
    n = 3000
    site = rng.integers(0, 6, n)
    y = rng.integers(0, 4, n)
    good = rng.random(n) < np.where(site < 3, 0.9, 0.6)
    pred = np.where(good, y, (y + rng.integers(1, 4, n)) % 4)
    caps = np.arange(n) // 2
    return y, pred, np.array([f"S{s}" for s in site], dtype=object), caps


def test_seen_and_unseen_equal_sklearn_on_each_part():
    y, pred, sites, caps = _fixture()
    out = generalisation(y, pred, sites=sites, train_sites={"S0", "S1", "S2"}, captures=caps,
                         classes=list("abcd"), n_resamples=100)
    seen = np.isin(sites, ["S0", "S1", "S2"])
    for name, mask in (("seen", seen), ("unseen", ~seen)):
        block = out[name]
        assert block["n"] == mask.sum()
        assert block["accuracy"] == pytest.approx(accuracy_score(y[mask], pred[mask]))
        assert block["macro_f1"] == pytest.approx(f1_score(y[mask], pred[mask],
                                                           average="macro"))
        lo, hi = block["macro_f1_ci"]
        assert lo <= block["macro_f1"] <= hi
    assert out["seen"]["accuracy"] > out["unseen"]["accuracy"] + 0.2
    assert not out["all_unseen"]
    assert all(r["gap"] > 0.1 for r in out["per_class_gap"])
    per_site = out["per_site"]
    assert [r["seen"] for r in per_site[:3]] == [False] * 3  # unseen sites are the worst
    assert [r["macro_f1"] for r in per_site] == sorted(r["macro_f1"] for r in per_site)
    s4 = next(r for r in per_site if r["site"] == "S4")
    m = sites == "S4"
    assert s4["n"] == m.sum()
    assert s4["accuracy"] == pytest.approx(accuracy_score(y[m], pred[m]))


def test_all_unseen_is_flagged_and_spread_reported():
    y, pred, sites, caps = _fixture(1)
    out = generalisation(y, pred, sites=sites, train_sites=["X9"], captures=caps,
                         classes=list("abcd"), n_resamples=0)
    assert out["all_unseen"] and out["seen"]["n"] == 0 and out["seen"]["accuracy"] is None
    assert out["site_spread"]["n_sites"] == 6
    assert out["site_spread"]["min"] <= out["site_spread"]["median"] <= out["site_spread"]["max"]
    assert all(r["gap"] is None for r in out["per_class_gap"])


def test_unknown_sites_and_evalset_entry_point():
    y, pred, sites, caps = _fixture(2)
    sites = sites.copy()
    sites[:10] = None
    probs = np.full((len(y), 4), 0.1, np.float32)
    probs[np.arange(len(y)), pred] = 0.7
    meta = pd.DataFrame({"image_id": np.arange(len(y)).astype(str), "seq_id": caps,
                         "location": sites})
    ev = evalset_from_arrays(probs, y, classes=list("abcd"), meta=meta)
    out = generalisation_for(ev, train_sites={"S0"}, n_resamples=0)
    assert out["n_unknown_site"] == 10
    assert out["seen"]["n"] + out["unseen"]["n"] == len(y) - 10
    assert any(r["site"] is None and r["seen"] is None for r in out["per_site"])


def test_bad_inputs():
    with pytest.raises(GeneralisationError, match="sites has 2 rows"):
        generalisation(np.zeros(3, int), np.zeros(3, int), sites=["a", "b"], train_sites=[],
                       captures=None, classes=["x"])
    with pytest.raises(GeneralisationError, match="row 1: class index"):
        generalisation(np.array([0, 5]), np.zeros(2, int), sites=["a", "b"], train_sites=[],
                       captures=None, classes=["x"])
