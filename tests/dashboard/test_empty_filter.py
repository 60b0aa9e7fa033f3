"""AppTest of the Empty filter page; Try the model leaves the menu for runs without a checkpoint;
the calibration page's note on partial (imported top-k) probabilities."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from analysis.empty_filter import animal_score, filter_at, truth
from analysis.evalset import build_evalset
from data.cct import load_dataset
from data.imports.common import DETECTOR_FILE
from data.runs import load_run


@pytest.fixture(scope="module")
def ev(demo_small, synthetic_run):
    return build_evalset(load_dataset(demo_small.json_paths), load_run(synthetic_run))


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_any_run_filters_on_one_minus_p_empty(app, no_exception, texts, ev):
    at = app("empty_filter")
    no_exception(at)
    score = animal_score(ev.probs, ev.classes)
    animal = truth(ev.labels, ev.classes)
    seq = ev.meta["seq_id"].astype(str).to_numpy()
    img = filter_at(score, animal, seq, threshold=0.5, n_resamples=0)
    cap = filter_at(score, animal, seq, threshold=0.5, level="capture", n_resamples=0)
    assert _metric(at, "Empty images removed") == f"{img['empty_removed']:.3f}"
    assert _metric(at, "Animal images lost") == f"{img['animal_lost']:.3f}"
    assert _metric(at, "Animal captures lost") == f"{cap['animal_lost']:.3f}"
    assert "1 - p(empty)" in texts(at)
    assert len(at.get("plotly_chart")) == 1
    species = at.dataframe[0].value
    assert set(species.columns) >= {"value", "n_animal", "n_lost", "lost_rate", "share_of_lost"}
    n_lost = int(((score < 0.5) & animal).sum())
    assert f"{n_lost:,} image(s)" in texts(at) if n_lost else "No animal image is lost" in texts(at)


@pytest.fixture
def detector_run(tmp_path, dashboard_runs, monkeypatch, ev):
    """The synthetic run with a detector-scores file: confidence = image index share."""
    run = tmp_path / "runs" / "detector"
    shutil.copytree(dashboard_runs / "synthetic", run)
    ids = load_run(run).image_ids
    conf = np.linspace(0.0, 1.0, len(ids))
    pd.DataFrame({"image_id": ids, "detector_conf": conf.astype("float32")}).to_parquet(
        run / DETECTOR_FILE)
    monkeypatch.setenv("TRAPLENS_RUNS", str(run.parent))
    return run, pd.Series(conf.astype("float32"), index=ids)


def test_detector_runs_filter_on_detector_confidence(app, no_exception, texts, ev, detector_run):
    _, conf = detector_run
    at = app("empty_filter", run="detector", ef_t="0.30")
    no_exception(at)
    assert "detector confidence" in texts(at)
    score = conf.reindex(ev.image_ids).to_numpy(np.float64)
    r = filter_at(score, truth(ev.labels, ev.classes), ev.meta["seq_id"].astype(str).to_numpy(),
                  threshold=0.3, n_resamples=0)
    assert _metric(at, "Empty images removed") == f"{r['empty_removed']:.3f}"
    assert "Animals lost at 0.30" in texts(at)


def test_try_model_leaves_the_menu_without_a_checkpoint(dashboard_runs, tmp_path):
    import importlib

    app = importlib.import_module("dashboard.app")
    assert not app.has_checkpoint(dashboard_runs / "synthetic")
    run = tmp_path / "withckpt"
    shutil.copytree(dashboard_runs / "synthetic", run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["model"]["checkpoint"] = "checkpoint_best.pt"
    (run / "manifest.json").write_text(json.dumps(manifest))
    assert not app.has_checkpoint(run)                 # named but absent
    (run / "checkpoint_best.pt").write_bytes(b"x")
    assert app.has_checkpoint(run)


def test_calibration_page_says_when_probabilities_are_partial(app, no_exception, texts,
                                                              tmp_path, dashboard_runs,
                                                              monkeypatch):
    run = tmp_path / "runs" / "imported"
    shutil.copytree(dashboard_runs / "synthetic", run)
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "partial_probabilities": True}))
    monkeypatch.setenv("TRAPLENS_RUNS", str(run.parent))
    at = app("calibration", run="imported")
    no_exception(at)
    assert "only its top classes' scores" in texts(at)
