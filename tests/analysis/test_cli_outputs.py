"""Issue 17: ``python -m analysis`` never writes over its inputs or a file of another kind."""
from __future__ import annotations

import json
import os
import stat

import pytest

import data.cct
from analysis.__main__ import main


@pytest.fixture
def no_work(monkeypatch):
    """Loading the dataset counts as work: a refused output must stop before it."""
    def boom(*args, **kwargs):
        raise AssertionError("work started before the output was checked")

    monkeypatch.setattr(data.cct, "load_dataset", boom)


def _report(demo, run, *extra):
    return ["report", "-q", "--dataset", *map(str, demo.json_paths), "--run", str(run),
            "--resamples", "5", *extra]


@pytest.mark.parametrize("flag, target, message", [
    ("--json", "dataset", "refusing to write the JSON report over an input of this command"),
    ("--json", "manifest", "refusing to write the JSON report inside the input folder"),
    ("--html", "predictions", "refusing to write the HTML report inside the input folder"),
    ("--html", "folder", "is a folder; give a file path for the HTML report"),
    ("--json", "parquet", "exists and holds parquet data, not a previous JSON report"),
    ("--html", "json", "exists and holds json data, not a previous HTML report"),
])
def test_report_refuses_outputs_before_any_work(demo_small, synthetic_run, tmp_path, capsys,
                                                no_work, flag, target, message):
    path = {"dataset": demo_small.json_paths[1], "manifest": synthetic_run / "manifest.json",
            "predictions": synthetic_run / "predictions.parquet", "folder": tmp_path,
            "parquet": tmp_path / "table.parquet", "json": tmp_path / "notes.json"}[target]
    if target == "parquet":
        path.write_bytes(b"PAR1....PAR1")
    if target == "json":
        path.write_text('{"mine": 1}')
    before = path.read_bytes() if path.is_file() else None
    assert main(_report(demo_small, synthetic_run, flag, str(path))) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and f"{flag} {path}" in err, err
    assert "Errno" not in err
    if before is not None:
        assert path.read_bytes() == before


def test_report_overwrites_its_own_previous_output_with_the_umask(demo_small, synthetic_run,
                                                                  tmp_path):
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    args = _report(demo_small, synthetic_run, "--json", str(out_json), "--html", str(out_html))
    old = os.umask(0o027)
    try:
        assert main(args) == 0
        first = json.loads(out_json.read_text())
        assert main(args) == 0  # a previous report of the same kind may be replaced
    finally:
        os.umask(old)
    assert json.loads(out_json.read_text())["run"] == first["run"]
    for p in (out_json, out_html):
        assert stat.S_IMODE(p.stat().st_mode) == 0o640


@pytest.mark.parametrize("target, message", [
    ("dataset", "refusing to write the issues table over an input"),
    ("predictions", "refusing to write the issues table inside the input folder"),
    ("sqlite", "exists and holds sqlite data, not a previous issues table"),
])
def test_issues_refuses_outputs_before_any_work(demo_small, synthetic_run, tmp_path, capsys,
                                                no_work, target, message):
    path = {"dataset": demo_small.json_paths[0],
            "predictions": synthetic_run / "predictions.parquet",
            "sqlite": tmp_path / "curation.csv"}[target]
    if target == "sqlite":
        path.write_bytes(b"SQLite format 3\x00")
    if target == "dataset":  # a .json dataset given as a .csv name cannot happen: copy it
        path = tmp_path / "in.csv"
        path.write_text(demo_small.json_paths[0].read_text())
        dataset = [str(path)]
    else:
        dataset = list(map(str, demo_small.json_paths))
    before = path.read_bytes()
    assert main(["issues", "-q", "--dataset", *dataset, "--run", str(synthetic_run), "--out",
                 str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert path.read_bytes() == before
