"""dashboard.loaders: cache keys follow the files, filters and corrections reach the EvalSet."""
from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest

from dashboard import loaders
from dashboard.config import Config, ConfigError
from dashboard.state import ViewState


def _view(demo, runs, run="synthetic", **kw) -> ViewState:
    return ViewState(runs_dir=str(runs), run=run, dataset_paths=tuple(map(str, demo.json_paths)),
                     images_root=str(demo.images_root), **kw)


def test_stamp_follows_mtime_and_size(tmp_path):
    f = tmp_path / "a.json"
    assert loaders.stamp(f)[1:] == (0, 0)
    f.write_text("{}")
    first = loaders.stamp(f)
    os.utime(f, ns=(first[1] + 10**9, first[1] + 10**9))
    assert loaders.stamp(f) != first and loaders.stamp(f)[0] == str(f.resolve())


@pytest.mark.parametrize("make, match", [
    (lambda p: p / "nope", "does not exist"),
    (lambda p: p, "No run folders"),
])
def test_list_runs_explains_what_is_missing(tmp_path, make, match):
    with pytest.raises(ConfigError, match=match) as info:
        loaders.list_runs(make(tmp_path))
    assert "TRAPLENS_RUNS" in info.value.fix or "training.predict" in info.value.fix


def test_list_runs_names(dashboard_runs):
    assert {"synthetic", "synthetic_b"} <= set(loaders.list_runs(dashboard_runs))


def test_resolve_data_falls_back_to_the_manifest(demo_small, dashboard_runs):
    cfg = Config(dataset_paths=(), images_root=None, runs_dir=str(dashboard_runs))
    paths, images = loaders.resolve_data(cfg, dashboard_runs / "synthetic")
    assert sorted(paths) == sorted(str(p) for p in demo_small.json_paths)
    assert images == str(demo_small.images_root)


def test_resolve_data_missing_file(tmp_path, dashboard_runs):
    cfg = Config(dataset_paths=(str(tmp_path / "S9.json"),), images_root=None,
                 runs_dir=str(dashboard_runs))
    with pytest.raises(ConfigError, match="Dataset file not found: .*S9.json"):
        loaders.resolve_data(cfg, dashboard_runs / "synthetic")


def test_split_filter_and_sequence_level(demo_small, dashboard_runs):
    full = loaders.evalset(_view(demo_small, dashboard_runs))
    test = loaders.evalset(_view(demo_small, dashboard_runs, split="test"))
    assert 0 < len(test) < len(full)
    assert set(test.meta["split"].astype(str)) == {"test"}
    assert np.array_equal(np.sort(test.image_ids),
                          np.sort(full.image_ids[full.meta["split"].astype(str) == "test"]))
    seq = loaders.evalset(_view(demo_small, dashboard_runs), level="sequence")
    assert len(seq) == full.meta["seq_id"].nunique()


def test_site_and_frame_filters(demo_small, dashboard_runs):
    full = loaders.evalset(_view(demo_small, dashboard_runs))
    site = str(full.meta["location"].dropna().iloc[0])
    ev = loaders.evalset(_view(demo_small, dashboard_runs, site=(site,), frame=(1,)))
    expected = (full.meta["location"].astype(str) == site) & (full.meta["frame_num"] == 1)
    assert len(ev) == int(expected.sum()) > 0


def test_evaluate_matches_analysis(demo_small, dashboard_runs):
    from analysis.metrics import evaluate

    view = _view(demo_small, dashboard_runs, policy="primary")
    got = loaders.evaluate(view, n_resamples=20)
    want = evaluate(loaders.evalset(view), policy="primary", n_resamples=20)
    assert got["macro_f1"] == pytest.approx(want["macro_f1"])
    assert got["policy"] == "primary"
    cm = loaders.confusion(view)
    assert cm.sum() == len(loaders.evalset(view))


def test_rewritten_run_is_reloaded(demo_small, dashboard_runs, tmp_path):
    from tests.synth import make_synthetic_run

    runs = tmp_path / "runs"
    shutil.copytree(dashboard_runs / "synthetic", runs / "r")
    view = _view(demo_small, runs, run="r")
    before = loaders.evalset(view).probs.copy()
    time.sleep(0.01)
    make_synthetic_run(demo_small, runs / "r", seed=7, accuracy=0.3)
    after = loaders.evalset(view).probs
    assert before.shape == after.shape and not np.allclose(before, after)


def test_corrections_apply_only_when_toggled(demo_small, dashboard_runs):
    from data.curation import DecisionStore
    from data.paths import curation_db

    view = _view(demo_small, dashboard_runs)
    ev = loaders.evalset(view)
    image_id = str(ev.image_ids[0])
    labels = [c for c, on in zip(ev.classes, ev.labels[0]) if on]
    new = next(c for c in ev.classes if c not in labels and c != "empty")
    dataset = loaders.load_dataset(view.dataset_paths)
    DecisionStore(curation_db()).record(dataset, curator="test", item_id=image_id,
                                        action="set", labels=[new])
    fixed = loaders.evalset(view.with_(corrected=True))
    row = int(np.flatnonzero(fixed.image_ids == image_id)[0])
    assert [c for c, on in zip(fixed.classes, fixed.labels[row]) if on] == [new]
    plain = loaders.evalset(view)
    assert [c for c, on in zip(plain.classes, plain.labels[0]) if on] == labels


def _top_rows(probs, *, k):
    """A stand-in derived table: the k rows with the largest first-column probability."""
    return np.argsort(-probs[:, 0], kind="stable")[:k].tolist()


def test_cached_table_keys_on_every_argument(demo_small, dashboard_runs):
    """Two calls that differ only in an argument (positional, keyword, array content or eval
    set) never share a cached result; identical calls do."""
    from analysis.evalset import targets

    view = _view(demo_small, dashboard_runs)
    ev = loaders.evalset(view)
    probs = np.asarray(ev.probs[:50], dtype=np.float64)
    three = loaders.cached_table(view, _top_rows, probs, k=3)
    assert three == _top_rows(probs, k=3)
    assert loaders.cached_table(view, _top_rows, probs, k=5) == _top_rows(probs, k=5)
    flipped = probs[::-1].copy()  # same shape and dtype, other content
    assert loaders.cached_table(view, _top_rows, flipped, k=3) == _top_rows(flipped, k=3) \
        != three
    assert loaders.cached_table(view, _top_rows, probs, k=3) == three
    # eval sets key by what they were built from: the test split is another set
    test = loaders.evalset(view.with_(split="test"))
    assert ev.fingerprint() != test.fingerprint()
    for e in (ev, test):
        got = loaders.cached_table(view, targets, e, policy="primary")
        assert len(got[0]) == len(e)
    assert loaders.call_key(targets, (ev,), {"policy": "set"}) != loaders.call_key(
        targets, (ev,), {"policy": "primary"})


def test_cached_table_refuses_closures(demo_small, dashboard_runs):
    view = _view(demo_small, dashboard_runs)
    k = 3
    with pytest.raises(TypeError, match="lambda or closure"):
        loaders.cached_table(view, lambda: k)
    with pytest.raises(TypeError, match="cannot derive a cache key"):
        loaders.cached_table(view, _top_rows, object(), k=1)


def test_preload_reads_the_run_once_in_the_background(tmp_path, demo_small, monkeypatch):
    """``preload_run`` (the sidebar, before the dataset loads) reads the run on another
    thread; the page's own ``load_run`` then finds it instead of reading it again."""
    import threading

    import data.runs
    from tests.synth import make_synthetic_run

    run_dir = make_synthetic_run(demo_small, tmp_path / "preloaded", seed=3, accuracy=0.7)
    reads, real = [], data.runs.load_run
    monkeypatch.setattr(data.runs, "load_run",
                        lambda d: reads.append(threading.current_thread().name) or real(d))
    loaders.preload_run(run_dir)
    loaders.preload_run(run_dir)                     # once per version of the files
    loaders._PRELOAD_POOL.submit(lambda: None).result(timeout=60)
    run = loaders.load_run(run_dir)
    assert len(run.image_ids) and len(reads) == 1 and reads[0].startswith("traplens-preload")
