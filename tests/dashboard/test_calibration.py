"""AppTest of the calibration & automation page."""
from __future__ import annotations

import pytest

from analysis.calibration import ece
from analysis.coverage import VOLUNTEER_ACCURACY, class_thresholds
from analysis.evalset import build_evalset
from data.cct import load_dataset
from data.runs import load_run


@pytest.fixture(scope="module")
def ev(demo_small, synthetic_run):
    return build_evalset(load_dataset(demo_small.json_paths), load_run(synthetic_run))


def _metric(at, prefix: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(prefix))


def test_shows_ece_thresholds_and_people_left_at_default_target(app, no_exception, texts, ev):
    at = app("calibration")
    no_exception(at)
    assert _metric(at, "Expected calibration error") == f"{ece(ev, n_bins=15):.3f}"
    expected = class_thresholds(ev, target_precision=0.95).attrs
    assert _metric(at, "Images that still need a person") == f"{expected['n_left']:,}"
    assert "95 % precision" in texts(at)
    assert len(at.get("plotly_chart")) == 2
    assert len(at.dataframe[0].value) > 0


@pytest.mark.parametrize("target, label", [(str(VOLUNTEER_ACCURACY), "96.6 % (volunteers)"),
                                           ("0.9", "90 %"), ("0.99", "99 %")])
def test_target_precision_changes_the_people_left(app, no_exception, texts, ev, target, label):
    at = app("calibration")
    at.segmented_control(key="w:cal_target").set_value(target).run()
    no_exception(at)
    expected = class_thresholds(ev, target_precision=float(target)).attrs
    after = _metric(at, "Images that still need a person")
    assert after == f"{expected['n_left']:,}"
    assert f"Per-class thresholds for {label} precision" in texts(at)
    assert at.query_params["cal_target"] in (target, [target])


def test_bins_and_sequence_level(app, no_exception, ev):
    at = app("calibration", level="sequence")
    no_exception(at)
    assert any(m.label.startswith("Captures that still need") for m in at.metric)
    at = app("calibration")
    at.select_slider(key="cal_bins").set_value(5).run()
    no_exception(at)
    assert _metric(at, "Expected calibration error") == f"{ece(ev, n_bins=5):.3f}"
