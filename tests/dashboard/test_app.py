"""dashboard/app.py and ``python -m dashboard``: launch, navigation, friendly error pages."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from dashboard import __main__ as launcher
from tests.dashboard.conftest import APP, TIMEOUT

MY_PAGES = ("overview", "per_class", "confusion", "top_losses")


def test_launcher_sets_env_and_execs_streamlit(monkeypatch, tmp_path):
    calls = {}
    monkeypatch.setattr(os, "execve", lambda exe, argv, env: calls.update(exe=exe, argv=argv,
                                                                           env=env))
    (tmp_path / "runs").mkdir()
    launcher.main(["--dataset", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                   "--images", str(tmp_path), "--runs", str(tmp_path / "runs"), "--port", "8765"])
    argv, env = calls["argv"], calls["env"]
    assert calls["exe"] == sys.executable
    assert argv[1:4] == ["-m", "streamlit", "run"] and argv[4].endswith("dashboard/app.py")
    opts = dict(zip(argv[5::2], argv[6::2]))
    assert opts["--server.address"] == "127.0.0.1" and opts["--server.port"] == "8765"
    assert opts["--server.headless"] == "true"
    assert opts["--browser.gatherUsageStats"] == "false"
    assert opts["--server.fileWatcherType"] == "none"
    assert env["TRAPLENS_DATASET"].split(os.pathsep) == [str(tmp_path / "a.json"),
                                                         str(tmp_path / "b.json")]
    assert env["TRAPLENS_IMAGES"] == str(tmp_path)
    assert env["TRAPLENS_RUNS"] == str(tmp_path / "runs")


def test_launcher_requires_its_options(capsys):
    with pytest.raises(SystemExit) as info:
        launcher.main(["--images", "x"])
    assert info.value.code == 2
    assert "--dataset" in capsys.readouterr().err


def test_app_opens_on_the_overview(app, no_exception, texts):
    at = app()
    no_exception(at)
    assert not at.error
    shown = texts(at)
    assert "Macro F1" in shown and "synthetic" in shown
    assert at.query_params["run"] == "synthetic"


@pytest.mark.parametrize("page", MY_PAGES[1:])
def test_each_page_runs(app, no_exception, page):
    at = app(page)
    no_exception(at)
    assert not at.error
    assert at.title, f"{page} shows no title"


def _run_app(monkeypatch, **env):
    from streamlit.testing.v1 import AppTest

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()


@pytest.mark.parametrize("setting, value, message", [
    ("TRAPLENS_RUNS", "{tmp}/no-such-folder", "does not exist"),
    ("TRAPLENS_RUNS", "{tmp}", "No run folders"),
    ("TRAPLENS_DATASET", "{tmp}/SnapshotSerengetiS09.json", "Dataset file not found"),
])
def test_friendly_error_page(monkeypatch, dashboard_env, tmp_path, no_exception, setting, value,
                             message):
    at = _run_app(monkeypatch, **{setting: value.format(tmp=tmp_path)})
    no_exception(at)
    assert at.error and message in at.error[0].value
    assert at.info, "the page must say how to fix it"


def test_broken_run_shows_error_and_keeps_the_sidebar(monkeypatch, dashboard_env, tmp_path,
                                                      no_exception):
    runs = tmp_path / "runs"
    shutil.copytree(Path(dashboard_env["TRAPLENS_RUNS"]) / "synthetic", runs / "a_broken")
    (runs / "a_broken" / "predictions.parquet").write_bytes(b"not parquet at all")
    shutil.copytree(Path(dashboard_env["TRAPLENS_RUNS"]) / "synthetic", runs / "b_good")
    at = _run_app(monkeypatch, TRAPLENS_RUNS=str(runs))
    no_exception(at)
    assert at.error and "a_broken" in at.error[0].value
    assert at.selectbox(key="sb_run").options == ["a_broken", "b_good"]
    at.selectbox(key="sb_run").set_value("b_good").run()
    no_exception(at)
    assert not at.error and "Macro F1" in " ".join(m.label for m in at.metric)


def test_dataset_that_does_not_match_the_run(monkeypatch, dashboard_env, demo_small,
                                             no_exception):
    # Only season 1: the run's season-2 ids are unknown, which the page must say plainly.
    at = _run_app(monkeypatch, TRAPLENS_DATASET=str(demo_small.json_paths[0]))
    no_exception(at)
    assert at.error and "not in the dataset" in at.error[0].value


def test_navigation_lists_existing_pages_in_order():
    import importlib

    app_module = importlib.import_module("dashboard.app")  # main() runs only as a script
    stems = [s for s, _, _ in app_module.PAGES]
    assert stems[:4] == list(MY_PAGES)
    assert stems[4:] == ["cooccurrence", "sequences", "calibration", "generalisation",
                         "ecology", "compare", "empty_filter", "embedding_map", "try_model",
                         "relabel", "story"]
