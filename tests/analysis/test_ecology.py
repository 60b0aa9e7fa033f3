"""analysis.ecology: overlap against numerical integration, hand counts on a tiny fixture."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, special, stats

from analysis.ecology import (EcologyError, capture_layout, capture_table, concentration,
                              density_overlap, ecology, kde_on_grid, overlap_estimate,
                              time_bins)

TWO_PI = 2 * np.pi


def _vm(mu, kappa):
    return lambda x: stats.vonmises.pdf(x, kappa, loc=mu)


@pytest.mark.parametrize("mu1,k1,mu2,k2", [(1.0, 2.0, 2.5, 1.0), (0.5, 4.0, 5.5, 3.0),
                                           (3.0, 0.5, 3.2, 8.0)])
def test_overlap_of_known_densities_equals_numerical_integral(mu1, k1, mu2, k2):
    f, g = _vm(mu1, k1), _vm(mu2, k2)
    exact, _ = integrate.quad(lambda x: min(f(x), g(x)), 0, TWO_PI, limit=200)
    grid = np.linspace(0, TWO_PI, 2048, endpoint=False)
    assert float(density_overlap(f(grid), g(grid))) == pytest.approx(exact, abs=0.01)
    # The estimator approaches it on large samples (Δ4 above 75 captures).
    rng = np.random.default_rng(0)
    a = rng.vonmises(mu1, k1, 20_000) % TWO_PI
    b = rng.vonmises(mu2, k2, 20_000) % TWO_PI
    est, kind = overlap_estimate(a, b)
    assert kind == "dhat4" and est == pytest.approx(exact, abs=0.03)
    small, kind_small = overlap_estimate(a[:60], b[:60])
    assert kind_small == "dhat1" and small == pytest.approx(exact, abs=0.2)


def test_concentration_matches_the_overlap_package_formula_on_raw_times():
    rng = np.random.default_rng(1)
    x = rng.vonmises(2.0, 3.0, 400) % TWO_PI
    # getBandWidth: largest root over k = 1..3 of I_k/I_0 = trig moment k, then Taylor (2008).
    mean = np.arctan2(np.sin(x).sum(), np.cos(x).sum())
    roots = []
    for k in (1, 2, 3):
        rho = np.hypot(np.sin(k * (x - mean)).mean(), np.cos(k * (x - mean)).mean())
        roots.append(optimize.brentq(
            lambda kap: special.iv(k, kap) / special.iv(0, kap) - rho, 1e-4, 500))
    kh = max(roots)
    nu = (3 * len(x) * kh ** 2 * special.iv(2, 2 * kh)
          / (4 * np.sqrt(np.pi) * special.iv(0, kh) ** 2)) ** 0.4
    hist = np.bincount(time_bins(x, 512), minlength=512)
    assert float(concentration(hist)) == pytest.approx(nu, rel=0.01)
    dens = kde_on_grid(hist, concentration(hist))
    assert dens.mean() * TWO_PI == pytest.approx(1.0, abs=1e-6)


def _fixture():
    """Three sites, six captures (capture 2 has two frames), classes empty/zebra/lion.

    site A: days 0..10 (span 10 d): c1 zebra (model zebra), c2 zebra x2 frames (model: lion,
            zebra -> capture has both), c3 empty (model zebra)
    site B: days 0..4: c4 lion (model lion), c5 zebra (model empty)
    site C: one capture only (span 0 d): c6 empty (model empty)
    """
    t0 = pd.Timestamp("2024-01-01 06:00")
    rows = [  # capture, site, day offset, label, model
        (1, "A", 0, 1, 1), (2, "A", 5, 1, 2), (2, "A", 5, 1, 1), (3, "A", 10, 0, 1),
        (4, "B", 0, 2, 2), (5, "B", 4, 1, 0), (6, "C", 1, 0, 0)]
    cap, site, day, lab, mod = map(np.array, zip(*rows))
    times = t0 + pd.to_timedelta(day, unit="D")
    return dict(captures=cap, sites=site, times=times, labels=lab, model=mod,
                classes=["empty", "zebra", "lion"])


def test_occupancy_and_abundance_equal_hand_counts():
    out = ecology(**_fixture(), n_resamples=50, site_species="zebra")
    rows = {r["species"]: r for r in out["per_species"]}
    assert set(rows) == {"zebra", "lion"}  # "empty" is not a species
    z, lion = rows["zebra"], rows["lion"]
    # zebra: labels in c1, c2, c5 (3 captures, sites A, B); model in c1, c2, c3 (site A)
    assert (z["captures_labels"], z["captures_model"]) == (3, 3)
    assert z["occupancy_labels"] == pytest.approx(2 / 3)
    assert z["occupancy_model"] == pytest.approx(1 / 3)
    assert z["occupancy_diff"] == pytest.approx(-1 / 3)
    # lion: labels c4 (B); model c2, c4 (A, B)
    assert (lion["captures_labels"], lion["captures_model"]) == (1, 2)
    assert lion["captures_bias"] == pytest.approx(1.0)
    assert lion["occupancy_model"] == pytest.approx(2 / 3)
    assert out["camera_days"] == pytest.approx(14.0)
    assert z["rai_labels"] == pytest.approx(3 / 14 * 100)
    sites = {r["site"]: r for r in out["per_site"]["rows"]}
    assert sites["A"]["rai_labels"] == pytest.approx(2 / 10 * 100)
    assert sites["A"]["rai_model"] == pytest.approx(3 / 10 * 100)
    assert sites["B"]["rai_diff"] == pytest.approx(-1 / 4 * 100)
    assert sites["C"]["rai_labels"] is None  # a one-capture site has no effort
    assert z["flagged"] and lion["flagged"]
    lo, hi = z["occupancy_diff_ci"]
    assert lo <= z["occupancy_diff"] <= hi


def test_people_elsewhere_variant_and_agreement():
    fx = _fixture()
    nobody = ecology(**fx, accept=np.zeros(7, bool), n_resamples=20)
    for r in nobody["per_species"]:  # model accepted nowhere: the labels themselves
        assert r["captures_labels"] == r["captures_model"] and not r["flagged"]
        assert r["overlap"] == pytest.approx(1.0)
    everyone = ecology(**fx, accept=np.ones(7, bool), n_resamples=0)
    plain = ecology(**fx, n_resamples=0)
    assert everyone["per_species"] == plain["per_species"]
    some = np.array([True, False, False, True, True, True, True])  # c2 back to people
    rows = {r["species"]: r for r in ecology(**fx, accept=some, n_resamples=0)["per_species"]}
    assert rows["lion"]["captures_model"] == 1
    # c2: frame 1 (lion, accepted) and frame 2 (zebra label, not accepted) both count once
    mixed = np.array([True, True, False, True, True, True, True])
    rows = {r["species"]: r for r in ecology(**fx, accept=mixed, n_resamples=0)["per_species"]}
    assert (rows["lion"]["captures_model"], rows["zebra"]["captures_model"]) == (2, 3)


def test_overlap_uses_capture_start_times_and_bootstrap_interval():
    rng = np.random.default_rng(3)
    n = 4000
    hours = rng.vonmises(np.pi, 2.0, n) % TWO_PI / TWO_PI * 24
    times = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 60, n), unit="D") \
        + pd.to_timedelta(hours, unit="h")
    lab = rng.integers(1, 3, n)
    mod = np.where(rng.random(n) < 0.9, lab, 3 - lab)
    out = ecology(captures=np.arange(n), sites=rng.choice(["A", "B", "C"], n), times=times,
                  labels=lab, model=mod, classes=["empty", "zebra", "lion"], n_resamples=100)
    for r in out["per_species"]:
        assert r["overlap_estimator"] == "dhat4"
        assert 0.9 < r["overlap"] <= 1.0
        lo, hi = r["overlap_ci"]
        # basic interval: bias-corrected upwards; the two samples share one density (Δ = 1)
        assert 0.9 < lo <= hi <= 1.0 and hi >= 0.995


def test_bad_inputs():
    fx = _fixture()
    with pytest.raises(EcologyError, match="model has 6 rows, labels 7"):
        ecology(**{**fx, "model": fx["model"][:6]})
    with pytest.raises(EcologyError, match="labels row 0: class index 7"):
        ecology(**{**fx, "labels": np.r_[7, fx["labels"][1:]]})
    with pytest.raises(EcologyError, match="unknown species 'griffin'"):
        ecology(**fx, species=["griffin"])


def test_capture_table_marks_kinds():
    tab = capture_table(**_fixture())
    assert len(tab) == 6
    pairs = {(int(g), int(k)): int(t) for g, k, t in
             zip(tab.pair_capture, tab.pair_class, tab.pair_kind)}
    assert {k: t for (g, k), t in pairs.items() if g == 1} == {1: 2, 2: 1}  # capture 2:
    # zebra by both, lion by the model only
    assert pairs[(2, 0)] == 0 and pairs[(2, 1)] == 1  # capture 3: empty vs zebra


def test_layout_is_shared_and_gives_the_same_table():
    """One capture layout (computed once per run) serves the arg-max and the "model where
    certified" tables; each equals the table built from scratch. Frames out of capture order
    (string capture ids) take the sorting path."""
    rng = np.random.default_rng(3)
    n, c = 400, 5
    caps = rng.integers(0, 120, n).astype(str)  # not contiguous, not integers
    kw = dict(captures=caps, sites=rng.choice(["A", "B", None], n),
              times=pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**7, n),
                                                                 unit="s"),
              labels=rng.random((n, c)) < 0.3)
    classes = [f"k{i}" for i in range(c)]
    layout = capture_layout(**kw, n_classes=c)
    for accept in (None, rng.random(n) < 0.5):
        model = rng.integers(0, c, n)
        a = capture_table(**kw, model=model, classes=classes, accept=accept)
        b = capture_table(model=model, classes=classes, accept=accept, layout=layout)
        key = lambda t: sorted(zip(t.pair_capture.tolist(), t.pair_class.tolist(),  # noqa: E731
                                   t.pair_kind.tolist()))
        assert key(a) == key(b) and len(key(a)) > n // 4
        np.testing.assert_array_equal(a.site, b.site)
        np.testing.assert_array_equal(a.time_bin, b.time_bin)
        np.testing.assert_array_equal(a.camera_days, b.camera_days)
    with pytest.raises(EcologyError, match="layout has 5 classes, the model 4"):
        capture_table(model=np.zeros(n, int), classes=classes[:4], layout=layout)
    with pytest.raises(EcologyError, match="or a layout"):
        capture_table(model=np.zeros(n, int), classes=classes)
    with pytest.raises(EcologyError, match="accept has 3 rows, labels 400"):
        capture_table(model=np.zeros(n, int), classes=classes, layout=layout,
                      accept=np.ones(3, bool))
