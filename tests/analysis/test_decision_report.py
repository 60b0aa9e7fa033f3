"""The report's decision-grade sections: keys present, values equal to the analysis
functions' output; the train-sites file; calibration.json beside the run."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from analysis.certify import certify_for
from analysis.decision import (TrainSitesError, calibrated, ecology_for, fit_run_temperature,
                               generalisation_report, parse_train_sites, read_train_sites,
                               run_train_sites, train_sites_from_split)
from analysis.evalset import build_evalset, select_split
from analysis.report import build_report, plain, render_html
from data.cct import load_dataset
from data.runs import CALIBRATION, load_run, read_calibration

KEYS = {"generalisation": {"seen", "unseen", "per_site"},
        "certified_automation": {"target_precision", "per_class"},
        "calibration_fit": {"temperature", "ece_before", "ece_after"},
        "ecology": {"per_species"}}


@pytest.fixture(scope="module")
def run_copy(synthetic_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("decision") / "run"
    shutil.copytree(synthetic_run, out, ignore=shutil.ignore_patterns(CALIBRATION))
    return out


@pytest.fixture(scope="module")
def setup(demo_small, run_copy):
    dataset = load_dataset([str(p) for p in demo_small.json_paths])
    run = load_run(run_copy)
    rep = build_report(dataset, run, split="test", n_resamples=50, k=5)
    return dataset, run, rep


def test_sections_hold_the_documented_keys(setup):
    _, _, rep = setup
    for key, inner in KEYS.items():
        assert inner <= set(rep[key]), key
    assert {"site", "seen", "n", "accuracy", "macro_f1", "macro_f1_ci"} <= set(
        rep["generalisation"]["per_site"][0])
    assert {"class", "threshold", "precision_lower_bound", "coverage", "n_accepted"} <= set(
        rep["certified_automation"]["per_class"][0])
    assert {"species", "captures_labels", "captures_model", "occupancy_labels",
            "occupancy_model", "overlap", "overlap_ci"} <= set(rep["ecology"]["per_species"][0])


def test_values_equal_the_analysis_functions(setup):
    dataset, run, rep = setup
    full = build_evalset(dataset, run)
    ev = select_split(full, "test")
    sites, source = run_train_sites(run, dataset)
    assert source == "split.parquet" or source.startswith("predictions.parquet")
    assert rep["generalisation"] == plain(generalisation_report(
        ev, train_sites=sites, source=source, n_resamples=50))
    cert = certify_for(ev, target=0.95)
    got = rep["certified_automation"]
    assert {k: v for k, v in got.items() if k != "capture_level"} == plain(cert)
    assert got["capture_level"] == plain(certify_for(ev, target=0.95, level="capture"))
    fit = fit_run_temperature(full, ev, run_dir=None)
    assert rep["calibration_fit"]["temperature"] == pytest.approx(fit["temperature"])
    assert rep["calibration_fit"]["ece_after"] == pytest.approx(fit["ece_after"])
    eco = plain(ecology_for(ev, n_resamples=50))
    assert rep["ecology"]["per_species"] == eco["per_species"]


def test_temperature_is_stored_beside_the_run_and_reused(setup, run_copy):
    _, _, rep = setup
    stored = read_calibration(run_copy)
    assert stored["temperature"] == pytest.approx(rep["calibration_fit"]["temperature"])
    assert rep["calibration_fit"]["stored"] == str(run_copy / CALIBRATION)
    # A stored temperature for the same predictions is used as is (no refit).
    stored["temperature"] = 1.5
    (run_copy / CALIBRATION).write_text(json.dumps(stored))
    dataset, run, _ = setup
    full = build_evalset(dataset, run)
    again = fit_run_temperature(full, full, run_dir=run_copy)
    assert again["temperature"] == 1.5


def test_calibrated_probabilities_keep_the_argmax(setup):
    dataset, run, _ = setup
    ev = build_evalset(dataset, run)
    cal = calibrated(ev, 2.0)
    assert (cal.pred == ev.pred).all()
    assert cal.probs.max(axis=1).mean() < ev.probs.max(axis=1).mean()


def test_html_draws_the_four_sections(setup):
    _, _, rep = setup
    page = render_html(rep, max_thumbnails=0)
    for title in ("Seen and unseen camera sites", "Certified automation", "Fitted calibration",
                  "Ecology impact"):
        assert f"<h2>{title}</h2>" in page


@pytest.mark.parametrize("text, expected", [
    ("A01\nB02\n\nA01\n", ["A01", "B02"]),
    ("site\nX\nY\n", ["X", "Y"]),
    ("season,location\nS1,L2\nS2,L1\n", ["L1", "L2"]),
    ("id\tsite\n1\tK\n", ["K"]),
])
def test_train_sites_file_formats(text, expected):
    assert parse_train_sites(text) == expected


def test_bad_train_sites_file_names_file_and_row(tmp_path):
    bad = tmp_path / "s.csv"
    bad.write_text("season,camera\nS1,A\n")
    with pytest.raises(TrainSitesError, match=r"s\.csv: row 1: no 'site' or 'location'"):
        read_train_sites(bad)
    with pytest.raises(TrainSitesError, match="no site listed"):
        parse_train_sites("\n\n", name="x")


def test_seen_unseen_on_a_fixture_with_known_training_sites():
    import pandas as pd

    images = pd.DataFrame({"image_id": list("abcdef"),
                           "location": ["L1", "L1", "L2", "L3", "L3", None]})
    split = pd.Series({"a": "train", "b": "train", "c": "val", "d": "test", "f": "train"})
    assert train_sites_from_split(images, split) == ["L1"]


def test_cli_train_sites_flag(demo_small, run_copy, tmp_path):
    sites = tmp_path / "sites.txt"
    sites.write_text("nowhere\n")
    out = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "analysis", "report", "--dataset",
           *map(str, demo_small.json_paths), "--run", str(run_copy), "--resamples", "0",
           "--suspects", "3", "--train-sites", str(sites), "--json", str(out), "-q"]
    subprocess.run(cmd, check=True, capture_output=True)
    gen = json.loads(out.read_text())["generalisation"]
    assert gen["all_unseen"] and gen["n_train_sites"] == 1
    assert gen["train_sites_source"] == str(sites)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    res = subprocess.run(cmd[:-5] + ["--train-sites", str(bad), "--json", str(out), "-q"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "bad.csv: row 1" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_generalisation_leaves_out_the_training_images(setup):
    dataset, run, _ = setup
    full = build_evalset(dataset, run)
    sites, source = run_train_sites(run, dataset)
    got = generalisation_report(full, train_sites=sites, source=source, n_resamples=0)
    is_train = full.meta["split"].astype(str).to_numpy() == "train"
    assert got["n_train_excluded"] == int(is_train.sum()) > 0
    held = generalisation_report(full.subset(~is_train), train_sites=sites, source=source,
                                 n_resamples=0)
    assert got["seen"] == held["seen"] and got["per_site"] == held["per_site"]
    assert got["seen"]["n"] + got["unseen"]["n"] + got["n_unknown_site"] == int((~is_train).sum())
