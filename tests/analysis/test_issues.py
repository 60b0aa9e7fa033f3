"""The full issue list (`python -m analysis issues`), the relabel queue's source and pace."""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from analysis.__main__ import main
from analysis.evalset import build_evalset
from data.runs import load_run
from analysis.issues import (ISSUE_FILE_COLUMNS, issue_queue, issue_table, queue_progress,
                             write_issues)
from analysis.ranking import label_issues
from bench.bench_ranking import planted
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def demo_ev(demo_small, synthetic_run):
    from data.cct import load_dataset

    return build_evalset(load_dataset(demo_small.json_paths), load_run(synthetic_run))


def _args(demo_small, synthetic_run, out, *extra):
    return ["issues", "-q", "--dataset", *map(str, demo_small.json_paths), "--run",
            str(synthetic_run), "--out", str(out), *extra]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_full_issue_list_equals_the_library_ranking(demo_small, synthetic_run, demo_ev,
                                                    tmp_path, suffix):
    out = tmp_path / f"issues{suffix}"
    assert main(_args(demo_small, synthetic_run, out)) == 0
    got = pd.read_csv(out) if suffix == ".csv" else pq.read_table(out).to_pandas()
    want = label_issues(demo_ev, k_losses=None)
    assert list(got.columns) == ISSUE_FILE_COLUMNS
    assert len(got) == len(want) > 0
    assert got["image_id"].astype(str).tolist() == want["image_id"].tolist()
    np.testing.assert_allclose(got["score"], want["score"])
    assert got["given"].tolist() == [",".join(g) for g in want["given"]]
    meta = demo_ev.meta.set_index("image_id")
    first = got.iloc[0]
    assert first["file_name"] == meta.loc[first["image_id"], "file_name"]
    assert first["capture"] == str(meta.loc[first["image_id"], "seq_id"])
    assert first["site"] == str(meta.loc[first["image_id"], "location"])


def test_kind_top_and_split(demo_small, synthetic_run, demo_ev, tmp_path):
    out = tmp_path / "inh.csv"
    assert main(_args(demo_small, synthetic_run, out, "--kind", "inherited_label,label_issue",
                      "--top", "5")) == 0
    got = pd.read_csv(out)
    full = label_issues(demo_ev, k_losses=None)
    keep = full["kinds"].map(lambda k: bool({"inherited_label", "confident_learning"} & set(k)))
    assert got["image_id"].tolist() == full[keep]["image_id"].head(5).tolist()
    assert all(("inherited_label" in k) or ("confident_learning" in k) for k in got["kind"])
    out = tmp_path / "test.parquet"
    assert main(_args(demo_small, synthetic_run, out, "--split", "test", "--top", "all")) == 0
    got = pq.read_table(out).to_pandas()
    split = demo_ev.meta.set_index("image_id")["split"]
    assert len(got) and (split.loc[got["image_id"]].astype(str) == "test").all()


@pytest.mark.parametrize("extra,expect", [
    (["--top", "0"], "positive integer"), (["--top", "many"], "positive integer"),
    (["--kind", "magic"], "unknown kind 'magic'"), (["--split", "holdout"], "holdout")])
def test_bad_arguments_one_line_exit_2(demo_small, synthetic_run, tmp_path, extra, expect):
    proc = subprocess.run([sys.executable, "-m", "analysis",
                           *_args(demo_small, synthetic_run, tmp_path / "x.csv", *extra)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    # -q leaves warnings (e.g. dataset images without prediction); the error is one line.
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and
             not ln.startswith("WARNING ")]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and expect in lines[0], lines
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("target", ["dataset", "manifest", "predictions", "txt"])
def test_refuses_to_write_over_an_input(demo_small, synthetic_run, tmp_path, capsys, target):
    out = {"dataset": demo_small.json_paths[0], "manifest": synthetic_run / "manifest.json",
           "predictions": synthetic_run / "predictions.parquet",
           "txt": tmp_path / "issues.txt"}[target]
    before = out.read_bytes() if out.exists() else None
    assert main(_args(demo_small, synthetic_run, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("analysis issues: error: --out")
    assert (out.read_bytes() if out.exists() else None) == before


def test_report_suspects_all_keeps_every_suspect(demo_small, synthetic_run, demo_ev, tmp_path):
    import json

    out = tmp_path / "r.json"
    assert main(["report", "-q", "--dataset", *map(str, demo_small.json_paths), "--run",
                 str(synthetic_run), "--resamples", "5", "--suspects", "all",
                 "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert len(rep["label_issues"]) == len(label_issues(demo_ev, k_losses=None)) > 3
    out3 = tmp_path / "r3.json"
    assert main(["report", "-q", "--dataset", *map(str, demo_small.json_paths), "--run",
                 str(synthetic_run), "--resamples", "5", "--suspects", "3",
                 "--json", str(out3)]) == 0
    assert len(json.loads(out3.read_text())["label_issues"]) == 3


def test_write_issues_streams_in_batches(tmp_path):
    ev, _ = planted(2000, seed=1)
    table = issue_table(ev)
    n = write_issues(table, tmp_path / "a.parquet", batch_rows=17)
    got = pq.read_table(tmp_path / "a.parquet")
    assert n == len(table) == got.num_rows and got.to_batches()  # written 17 rows at a time
    assert pq.ParquetFile(tmp_path / "a.parquet").metadata.num_row_groups == -(-n // 17)
    assert got.column("image_id").to_pylist() == table["image_id"].tolist()
    assert write_issues(table.head(0), tmp_path / "empty.csv") == 0
    assert list(pd.read_csv(tmp_path / "empty.csv").columns) == ISSUE_FILE_COLUMNS


# --- the relabel queue -------------------------------------------------------------------

@pytest.fixture(scope="module")
def planted_table():
    ev, _ = planted(3000, seed=2)
    ev.meta["split"] = np.where(np.arange(len(ev)) % 2, "test", "val")
    return ev, issue_table(ev)


def test_queue_filters_are_masks_over_the_one_ranking(planted_table):
    ev, table = planted_table
    meta = ev.meta
    assert issue_queue(ev, issues=table)["image_id"].tolist() == table["image_id"].tolist()
    inh = issue_queue(ev, kinds=["inherited_label"], issues=table)
    assert len(inh) and all("inherited_label" in k for k in inh["kinds"])
    assert inh["image_id"].tolist() == [i for i, k in zip(table["image_id"], table["kinds"])
                                        if "inherited_label" in k]
    cl = issue_queue(ev, kinds=["label_issue"], issues=table)
    assert len(cl) and all("confident_learning" in k for k in cl["kinds"])
    sp = issue_queue(ev, classes=["sp01"], issues=table)
    assert len(sp) and all("sp01" in g or "sp01" in s.split(",")
                           for g, s in zip(sp["given"], sp["suggested"]))
    site = issue_queue(ev, sites=["L03", "L07"], issues=table)
    assert set(meta["location"].iloc[site["row"]]) == {"L03", "L07"}
    assert len(site) == table["row"].map(meta["location"]).isin(["L03", "L07"]).sum()
    both = issue_queue(ev, kinds=["missed_species"], sites=["L03"], split="test", issues=table)
    rows = both["row"].to_numpy()
    assert (meta["split"].iloc[rows] == "test").all() and (meta["location"].iloc[rows] == "L03").all()
    assert all("missed_species" in k for k in both["kinds"])
    # Order is the ranking's, scores unchanged by filtering.
    assert (np.diff(both["score"].to_numpy()) <= 0).all()
    with pytest.raises(ValueError, match="unknown kind"):
        issue_queue(ev, kinds=["magic"], issues=table)
    with pytest.raises(ValueError, match="unknown class 'unicorn'"):
        issue_queue(ev, classes=["unicorn"], issues=table)


def test_queue_progress_pace_and_eta():
    t0 = datetime(2024, 1, 1, 9, 0)
    # 30 s per decision, then a lunch break, then 60 s per decision: the recent pace counts.
    times = [t0 + timedelta(seconds=30 * i) for i in range(10)]
    times += [times[-1] + timedelta(hours=1) + timedelta(seconds=60 * i) for i in range(5)]
    got = queue_progress(15, 120, times, window=5)
    assert got == {"decided": 15, "remaining": 120, "pace_per_hour": pytest.approx(60.0),
                   "eta_seconds": pytest.approx(7200.0)}
    mixed = queue_progress(15, 120, times, window=15)  # the break is not working time
    assert mixed["pace_per_hour"] == pytest.approx(13 / (9 * 30 + 4 * 60) * 3600)
    assert queue_progress(0, 50, []) == {"decided": 0, "remaining": 50,
                                          "pace_per_hour": None, "eta_seconds": None}
    assert queue_progress(1, 50, [0.0])["eta_seconds"] is None
    assert queue_progress(3, 90, [60.0, 0.0, 30.0])["eta_seconds"] == pytest.approx(2700.0)
    with pytest.raises(ValueError, match="counts"):
        queue_progress(-1, 3, [])
