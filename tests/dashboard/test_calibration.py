"""AppTest of the calibration & automation page: fitted temperature, certified thresholds by
default, point estimates one click away."""
from __future__ import annotations

import json

import pytest

from analysis.certify import certify_for
from analysis.coverage import VOLUNTEER_ACCURACY, class_thresholds
from analysis.decision import calibrated, fit_run_temperature
from analysis.evalset import build_evalset
from data.cct import load_dataset
from data.runs import CALIBRATION, load_run


@pytest.fixture(scope="module")
def ev(demo_small, synthetic_run):
    return build_evalset(load_dataset(demo_small.json_paths), load_run(synthetic_run))


@pytest.fixture(scope="module")
def fit(ev, synthetic_run):
    return fit_run_temperature(ev, ev, run_dir=None)


def _metric(at, prefix: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(prefix))


def test_fitted_temperature_is_shown_and_stored_beside_the_run(app, no_exception, fit,
                                                               synthetic_run):
    at = app("calibration")
    no_exception(at)
    assert _metric(at, "Fitted temperature") == f"{fit['temperature']:.3f}"
    assert _metric(at, "ECE, images") == f"{fit['ece_before']:.4f} → {fit['ece_after']:.4f}"
    cap = fit["capture_level"]
    assert _metric(at, "ECE, captures") == f"{cap['ece_before']:.4f} → {cap['ece_after']:.4f}"
    stored = json.loads((synthetic_run / CALIBRATION).read_text())
    assert stored["temperature"] == pytest.approx(fit["temperature"])
    assert stored["fitted_on"] == "val"


def test_certified_thresholds_are_the_default(app, no_exception, texts, ev):
    at = app("calibration")
    no_exception(at)
    cert = certify_for(ev, target=0.95)
    assert _metric(at, "Auto-labelled images, certified") == f"{cert['coverage']:.1%}"
    assert _metric(at, "Auto-labelled images, point estimate") == f"{cert['coverage_point']:.1%}"
    assert _metric(at, "Classes that cannot be certified") == str(len(cert["uncertifiable"]))
    shown = at.dataframe[-1].value
    assert list(shown["class"]) == [r["class"] for r in cert["per_class"] if r["n_predicted"]]


def test_point_estimate_view_is_one_click_away(app, no_exception, texts, ev):
    at = app("calibration")
    at.segmented_control(key="w:cal_view").set_value("point").run()
    no_exception(at)
    expected = class_thresholds(ev, target_precision=0.95).attrs
    assert f"**{expected['n_left']:,}** still need a person" in texts(at)


@pytest.mark.parametrize("target", [str(VOLUNTEER_ACCURACY), "0.99"])
def test_target_changes_the_certified_coverage(app, no_exception, ev, target):
    at = app("calibration", cal_target=target)
    no_exception(at)
    cert = certify_for(ev, target=float(target))
    assert _metric(at, "Auto-labelled images, certified") == f"{cert['coverage']:.1%}"


def test_capture_level_and_calibrated_probabilities(app, no_exception, ev, fit):
    at = app("calibration", level="sequence")
    no_exception(at)
    cert = certify_for(ev, target=0.95, level="capture")
    assert _metric(at, "Auto-labelled captures, certified") == f"{cert['coverage']:.1%}"
    at = app("calibration")
    at.toggle(key="cal_use_t").set_value(True).run()
    no_exception(at)
    cert = certify_for(calibrated(ev, fit["temperature"]), target=0.95)
    assert _metric(at, "Auto-labelled images, certified") == f"{cert['coverage']:.1%}"
