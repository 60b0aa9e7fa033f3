"""`python -m analysis report` on the real fixture slice (hand-made predictions) and the
synthetic demo run: JSON keys and shapes, the mongoose capture's inherited labels, one
self-contained HTML file, one-line errors with exit status 2."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.__main__ import main
from analysis.evalset import EvalSet, evalset_from_arrays
from analysis.report import slice_scores
from data.runs import write_run
from tests.conftest import SERENGETI

ROOT = Path(__file__).resolve().parents[2]
MONGOOSE = "SER_S1#D04#6#43"
# What the model "says" on each fixture frame (PICT number -> class); frames 2-3 of the
# mongoose capture are empty, as the fixture README describes.
SAYS = {"0020": "elephant", "0021": "elephant", "0022": "elephant", "0128": "mongoose",
        "0129": "empty", "0130": "empty", "0221": "monkeyvervet", "0222": "monkeyvervet",
        "0223": "baboon", "0275": "empty"}
REPORT_KEYS = {"run", "policy", "image_level", "sequence_level", "most_confused",
               "cooccurrence", "sequence_suspects", "label_issues", "calibration", "coverage",
               "slices"}
SLICE_ROW = {"value", "n", "accuracy", "balanced_accuracy", "macro_f1", "weighted_f1"}


def _classes(slice_json: Path) -> list[str]:
    cats = json.loads(slice_json.read_text())["categories"]
    return [c["name"] for c in sorted(cats, key=lambda c: c["id"])]


def _manifest(classes, images_root) -> dict:
    return {"classes": classes,
            "dataset": {"paths": [], "sha256": [], "images_root": str(images_root)},
            "model": {"arch": "hand-made", "checkpoint": None, "input_size": 224},
            "training": {}, "software": {}}


def _handmade_run(run_dir: Path, slice_json: Path, images_root: Path, *, says=SAYS,
                  confidence: float = 0.95) -> Path:
    classes = _classes(slice_json)
    ids, probs = [], []
    for im in json.loads(slice_json.read_text())["images"]:
        key = im["id"][-4:]
        if key not in says:  # frames 2-3 of the empty capture have no file: no prediction
            continue
        p = np.full(len(classes), (1 - confidence) / (len(classes) - 1), np.float32)
        p[classes.index(says[key])] = confidence
        ids.append(im["id"])
        probs.append(p)
    return write_run(run_dir, manifest=_manifest(classes, images_root), image_ids=ids,
                     probs=np.array(probs), split="test")


@pytest.fixture(scope="module")
def fixture_report(tmp_path_factory):
    """The report of hand-made predictions over the real slice (built once per module)."""
    slice_json = SERENGETI / "SnapshotSerengetiS01-slice.json"
    if not slice_json.exists() or not (SERENGETI / "S1").is_dir():
        pytest.skip(f"real fixtures absent under {SERENGETI}")
    tmp = tmp_path_factory.mktemp("report")
    run = _handmade_run(tmp / "run", slice_json, SERENGETI)
    out_json, out_html = tmp / "report.json", tmp / "report.html"
    with pytest.MonkeyPatch.context() as mp:  # module scope: isolate the work folder here
        mp.setenv("TRAPLENS_HOME", str(tmp / "home"))
        rc = main(["report", "-q", "--dataset", str(slice_json), "--run", str(run),
                   "--json", str(out_json), "--html", str(out_html), "--resamples", "20"])
    assert rc == 0
    return json.loads(out_json.read_text(), parse_constant=_no_nan), out_html


def _no_nan(token):
    raise AssertionError(f"non-standard JSON token {token}")


def test_report_json_keys_and_shapes(fixture_report):
    rep, _ = fixture_report
    assert REPORT_KEYS <= set(rep)
    assert rep["policy"] == "set"
    run = rep["run"]
    assert run["n_evaluated"] == 10 and run["n_classes"] == 61
    assert run["missing_predictions"]["count"] == 2  # reported, not fatal
    for level in ("image_level", "sequence_level"):
        block = rep[level]
        assert {"n", "accuracy", "macro_f1", "macro_f1_ci", "per_class"} <= set(block)
        assert len(block["macro_f1_ci"]) == 2 and len(block["per_class"]) == 61
        assert set(block["per_class"][0]) >= {"class", "precision", "recall", "f1", "f1_ci",
                                              "support"}
    assert rep["sequence_level"]["aggregation"] == "mean"
    assert rep["sequence_level"]["n"] == 4  # four captures
    assert rep["image_level"]["accuracy"] == pytest.approx(7 / 10)
    assert rep["most_confused"][0] == {**rep["most_confused"][0], "actual": "mongoose",
                                       "predicted": "empty", "count": 2}
    assert isinstance(rep["cooccurrence"]["pairs"], list)
    assert set(rep["calibration"]) >= {"ece", "per_class"}
    assert set(rep["calibration"]["per_class"][0]) >= {"class", "ece"}
    assert set(rep["coverage"][0]) >= {"threshold", "coverage", "accuracy"}
    assert "comparison" not in rep


def test_slices_of_the_fixture_report(fixture_report):
    rep, out_html = fixture_report
    block = rep["slices"]
    assert set(block) == {"site", "season", "day_night", "frame_num", "split"}
    assert all(set(row) == SLICE_ROW for rows in block.values() for row in rows)
    # One site, one season, one split: each single slice is the whole evaluation.
    img = rep["image_level"]
    for key, value in (("site", "D04"), ("season", "S1"), ("split", "test")):
        (row,) = block[key]
        assert row["value"] == value and row["n"] == 10
        assert row["accuracy"] == pytest.approx(img["accuracy"])
        assert row["macro_f1"] == pytest.approx(img["macro_f1"])
    # Frame positions agree with the independently computed frame-accuracy curve.
    by_frame = {r["frame_num"]: r for r in rep["frame_accuracy"]}
    assert {r["value"] for r in block["frame_num"]} == set(by_frame)
    for row in block["frame_num"]:
        assert row["n"] == by_frame[row["value"]]["n"]
        assert row["accuracy"] == pytest.approx(by_frame[row["value"]]["accuracy"])
    f1 = [r["macro_f1"] for r in block["frame_num"]]
    assert f1 == sorted(f1)  # worst first
    assert sum(r["n"] for r in block["day_night"]) == 10
    page = out_html.read_text(encoding="utf-8")
    assert "<h2>Slices</h2>" in page and "<h3>Sites</h3>" in page and "<td>D04</td>" in page


def _sliced_evalset() -> EvalSet:
    """Site C: all wrong; B: half right; A: all right under `set`, one miss under `primary`
    (its image 0 is annotated {c0, c1} and predicted c1)."""
    pred = np.array([1, 1, 2, 0, 0, 1, 2, 2, 0, 1])
    truth = np.array([0, 1, 2, 0, 0, 2, 2, 1, 1, 2])
    labels = np.eye(3, dtype=bool)[truth]
    labels[0, 1] = True
    probs = np.full((10, 3), 0.1)
    probs[np.arange(10), pred] = 0.8
    meta = pd.DataFrame({"image_id": [f"i{k}" for k in range(10)],
                         "seq_id": [f"i{k}" for k in range(10)],
                         "location": list("AAAABBBBCC"),
                         "season": ["S1"] * 5 + ["S2"] * 5,
                         "split": ["test"] * 10})
    return evalset_from_arrays(probs, labels, meta=meta, primary=truth,
                               image_ids=meta["image_id"].to_numpy())


@pytest.mark.parametrize("policy, acc_a, acc_b", [("set", 1.0, 0.5), ("primary", 0.75, 0.5)])
def test_slice_scores_worst_site_first(policy, acc_a, acc_b):
    block = slice_scores(_sliced_evalset(), policy=policy)
    sites = block["site"]
    assert [r["value"] for r in sites] == ["C", "B", "A"]
    assert [r["n"] for r in sites] == [2, 4, 4]
    assert sites[0]["accuracy"] == 0 and sites[0]["macro_f1"] == 0
    assert sites[1]["accuracy"] == acc_b and sites[2]["accuracy"] == acc_a
    assert [r["n"] for r in sorted(block["season"], key=lambda r: r["value"])] == [5, 5]
    assert block["day_night"] == [] and block["frame_num"] == []  # columns absent
    assert [r["value"] for r in block["split"]] == ["test"]
    assert "split" not in slice_scores(_sliced_evalset(), policy=policy, split="test")


def test_mongoose_empty_frames_are_inherited_label_suspects(fixture_report):
    rep, _ = fixture_report
    sus = {s["image_id"][-4:]: s for s in rep["sequence_suspects"]}
    assert set(sus) == {"0129", "0130"}
    for key, frame in (("0129", 2), ("0130", 3)):
        s = sus[key]
        assert s["kind"] == "inherited_label" and s["seq_id"] == MONGOOSE
        assert s["suggested"] == "empty"
        assert s["reason"] == (f"frame {frame} of 3: model says empty (0.95) but labelled "
                               f"mongoose; frame 1 shows mongoose (0.95)")
    issues = rep["label_issues"]
    assert {i["image_id"][-4:] for i in issues[:3]} >= {"0129", "0130"}
    top = next(i for i in issues if i["image_id"].endswith("0129"))
    assert top["given"] == ["mongoose"] and top["suggested"] == "empty"
    assert "inherited_label" in top["kinds"]


def test_html_is_one_self_contained_file(fixture_report):
    _, out_html = fixture_report
    page = out_html.read_text(encoding="utf-8")
    # No external script, stylesheet or image: every src/href is inline or a fragment.
    for attr in re.findall(r'<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*"([^"]*)"',
                           page):
        assert attr.startswith(("data:", "#")), attr
    assert not re.search(r'<script[^>]+src=', page)
    assert page.count("<script") >= 2 and "Plotly.newPlot" in page
    assert len(page) > 3_000_000  # the plotly.js bundle itself is embedded
    # Thumbnails of the suspects (and top losses) are embedded JPEGs.
    assert page.count('src="data:image/jpeg;base64,') >= 2
    assert "frame 2 of 3: model says empty (0.95) but labelled mongoose" in page


def test_policy_primary_and_split_and_compare(tmp_path, serengeti_slice, serengeti_images):
    base = _handmade_run(tmp_path / "base", serengeti_slice, serengeti_images,
                         says={**SAYS, "0223": "monkeyvervet", "0129": "mongoose"})
    run = _handmade_run(tmp_path / "run", serengeti_slice, serengeti_images)
    out = tmp_path / "r.json"
    rc = main(["report", "-q", "--dataset", str(serengeti_slice), "--run", str(run),
               "--compare", str(base), "--split", "test", "--policy", "primary",
               "--resamples", "0", "--json", str(out)])
    assert rc == 0
    rep = json.loads(out.read_text())
    assert rep["policy"] == "primary" and rep["run"]["split"] == "test"
    assert "split" not in rep["slices"]  # restricted to one split
    (site,) = rep["slices"]["site"]
    assert site["accuracy"] == pytest.approx(rep["image_level"]["accuracy"])
    cmp_ = rep["comparison"]
    assert cmp_["n_fixed"] == 0 and cmp_["n_broken"] == 2  # 0129 and 0223 broke
    assert {d["class"] for d in cmp_["per_class"]} == set(_classes(serengeti_slice))


def test_cli_bad_run_folder_one_line_exit_2(tmp_path, serengeti_slice):
    """The real entry point: one line naming the file, status 2, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "analysis", "report", "-q", "--dataset",
                           str(serengeti_slice), "--run", str(tmp_path / "nowhere")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert str(tmp_path / "nowhere" / "manifest.json") in lines[0]


@pytest.mark.parametrize("case,expect", [
    ("bad_json", "broken.json"), ("no_class_in_common", "no class in common"),
    ("unknown_split", "holdout")])
def test_bad_input_messages_name_the_problem(case, expect, tmp_path, serengeti_slice,
                                             serengeti_images, capsys):
    run = _handmade_run(tmp_path / "run", serengeti_slice, serengeti_images)
    dataset, extra = serengeti_slice, []
    if case == "bad_json":
        dataset = tmp_path / "broken.json"
        dataset.write_text('{"images": [')
    if case == "no_class_in_common":  # (classes that merely differ are scored: label spaces)
        man = json.loads((run / "manifest.json").read_text())
        man["classes"] = [f"unicorn{i}" for i in range(len(man["classes"]))]
        (run / "manifest.json").write_text(json.dumps(man))
    if case == "unknown_split":
        extra = ["--split", "holdout"]
    rc = main(["report", "-q", "--dataset", str(dataset), "--run", str(run), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("analysis report: error: ")
    assert expect in err[0]


def test_report_on_the_synthetic_demo_run(synthetic_run, demo_small, tmp_path):
    out_json, out_html = tmp_path / "demo.json", tmp_path / "demo.html"
    rc = main(["report", "-q", "--dataset", *map(str, demo_small.json_paths), "--run",
               str(synthetic_run), "--split", "test", "--resamples", "20",
               "--json", str(out_json), "--html", str(out_html)])
    assert rc == 0
    rep = json.loads(out_json.read_text())
    assert REPORT_KEYS <= set(rep)
    kinds = {s["kind"] for s in rep["sequence_suspects"]}
    assert "inherited_label" in kinds
    pairs = {(p["a"], p["b"]) for p in rep["cooccurrence"]["pairs"]}
    assert pairs & {("zebra", "wildebeest"), ("wildebeest", "zebra")}
    assert all(len(i["given"]) >= 1 and i["suggested"] for i in rep["label_issues"])
    assert 'src="data:image/jpeg;base64,' in out_html.read_text()
