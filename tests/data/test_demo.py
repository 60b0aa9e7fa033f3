"""The demo dataset: published format, planted phenomena, determinism, round trip via data.cct."""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data import cct
from data.demo.generate import CATEGORIES, DemoError, make_demo, register_cli

IMAGE_KEYS = {"id", "file_name", "frame_num", "seq_id", "width", "height", "corrupt",
              "location", "seq_num_frames", "datetime"}
ANNOTATION_KEYS = {"sequence_level_annotation", "id", "image_id", "category_id", "seq_id",
                   "season", "datetime", "subject_id", "count", "standing", "resting", "moving",
                   "interacting", "young_present", "location"}
BEHAVIOUR = ("standing", "resting", "moving", "interacting", "young_present")
COUNT_BINS = {str(i) for i in range(1, 11)} | {"11-50", "51+"}
FILE_RE = re.compile(r"^(S\d)/([A-Z]\d\d)/\2_R(\d+)/\1_\2_R\3_IMAG\d{4}\.JPG$")
SEQ_RE = re.compile(r"^SER_(S\d)#([A-Z]\d\d)#(\d+)#(\d+)$")
DT_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


# --- helpers -------------------------------------------------------------------------------

def _load(paths) -> tuple[list[dict], list[dict], list[dict]]:
    images, annotations, categories = [], [], None
    for p in paths.json_paths:
        doc = json.loads(p.read_text())
        images += doc["images"]
        annotations += doc["annotations"]
        categories = doc["categories"]
    return images, annotations, categories


@pytest.fixture(scope="module")
def demo(demo_small):
    images, annotations, categories = _load(demo_small)
    truth = json.loads(demo_small.truth.read_text())
    return dict(paths=demo_small, images=images, annotations=annotations,
                categories=categories, truth=truth["images"], truth_doc=truth)


def _labels_by_image(demo) -> dict[str, list[str]]:
    names = {c["id"]: c["name"] for c in demo["categories"]}
    out = defaultdict(list)
    for a in demo["annotations"]:
        out[a["image_id"]].append(names[a["category_id"]])
    return out


def _with(demo, phenomenon: str) -> list[str]:
    return [i for i, r in demo["truth"].items() if phenomenon in r["phenomena"]]


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


# --- format --------------------------------------------------------------------------------

def test_files_and_layout(demo):
    paths = demo["paths"]
    assert [p.name for p in paths.json_paths] == ["SnapshotSerengetiS01.json",
                                                  "SnapshotSerengetiS02.json"]
    assert paths.images_root == paths.root / "images" and paths.truth.name == "demo_truth.json"
    assert len(demo["images"]) == 400
    for p in paths.json_paths:
        doc = json.loads(p.read_text())
        assert list(doc) == ["info", "categories", "images", "annotations"]
        season = {i["file_name"][:2] for i in doc["images"]}
        assert season == {f"S{int(p.stem[-2:])}"}, p.name


def test_image_records_as_published(demo):
    by_seq = defaultdict(list)
    for rec in demo["images"]:
        assert set(rec) == IMAGE_KEYS
        m = FILE_RE.match(rec["file_name"])
        assert m, rec["file_name"]
        assert rec["id"] == rec["file_name"][:-4]
        s = SEQ_RE.match(rec["seq_id"])
        assert s and (s[1], s[2], s[3]) == (m[1], m[2], m[3]) and rec["location"] == m[2]
        assert 1 <= rec["frame_num"] <= rec["seq_num_frames"] <= 3
        assert DT_RE.match(rec["datetime"]) and rec["corrupt"] is False
        assert (rec["width"], rec["height"]) in {(512, 384), (-1, -1)}
        by_seq[rec["seq_id"]].append(rec)
    for seq, recs in by_seq.items():
        frames = sorted(r["frame_num"] for r in recs)
        assert frames == list(range(1, recs[0]["seq_num_frames"] + 1)), seq
        times = [r["datetime"] for r in sorted(recs, key=lambda r: r["frame_num"])]
        assert times == sorted(times), seq


def test_annotations_as_published(demo):
    ids = {i["id"]: i for i in demo["images"]}
    names = {c["id"]: c["name"] for c in demo["categories"]}
    assert len({a["id"] for a in demo["annotations"]}) == len(demo["annotations"])
    per_seq = defaultdict(set)
    for a in demo["annotations"]:
        assert set(a) == ANNOTATION_KEYS
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}",
                            a["id"])
        img = ids[a["image_id"]]
        assert a["sequence_level_annotation"] is True
        assert (a["seq_id"], a["datetime"], a["location"]) == \
            (img["seq_id"], img["datetime"], img["location"])
        assert a["season"] == img["file_name"][:2]
        assert re.fullmatch(r"ASG[0-9a-z]{7}", a["subject_id"])
        if names[a["category_id"]] == "empty":
            assert math.isnan(a["count"]) and all(math.isnan(a[k]) for k in BEHAVIOUR)
        else:
            assert a["count"] in COUNT_BINS
            assert all(0.0 <= a[k] <= 1.0 for k in BEHAVIOUR)
        per_seq[a["seq_id"]].add((a["image_id"], a["category_id"]))
    # every frame carries its capture's annotations, one per (frame, species)
    labelled = _labels_by_image(demo)
    assert set(labelled) == set(ids)
    for seq, pairs in per_seq.items():
        cats_per_frame = defaultdict(set)
        for image_id, cat in pairs:
            cats_per_frame[image_id].add(cat)
        assert len({frozenset(c) for c in cats_per_frame.values()}) == 1, seq


def test_bare_nan_tokens_written(demo):
    text = demo["paths"].json_paths[0].read_text()
    assert '"count": NaN' in text and '"standing": NaN' in text


def test_categories_use_published_ids(demo):
    cats = {c["name"]: c["id"] for c in demo["categories"]}
    assert cats == CATEGORIES
    assert 12 <= len(cats) <= 15
    published = {"empty": 0, "gazellegrants": 2, "zebra": 5, "impala": 10, "giraffe": 13,
                 "warthog": 43, "wildebeest": 47}
    assert {k: cats[k] for k in published} == published
    ids = [c["id"] for c in demo["categories"]]
    assert ids == sorted(ids)


def test_categories_match_real_slice(serengeti_slice):
    real = {c["name"]: c["id"] for c in json.loads(serengeti_slice.read_text())["categories"]}
    assert all(real[name] == cid for name, cid in CATEGORIES.items())


def test_keys_match_real_slice(serengeti_slice, demo):
    real = json.loads(serengeti_slice.read_text())
    assert set(real["images"][0]) == set(demo["images"][0])
    assert set(real["annotations"][0]) == set(demo["annotations"][0])
    assert list(real) == ["info", "categories", "images", "annotations"]


# --- content -------------------------------------------------------------------------------

def test_class_proportions_long_tail(demo):
    labelled = _labels_by_image(demo)
    n = len(labelled)
    per_class = Counter(c for cats in labelled.values() for c in set(cats))
    assert 0.60 <= per_class["empty"] / n <= 0.75
    assert per_class.most_common(1)[0][0] == "empty"
    assert set(per_class) == set(CATEGORIES), "every class appears in the small demo"
    animals = {c: k for c, k in per_class.items() if c != "empty"}
    assert min(animals.values()) / n < 0.01, "some classes under 1 %"
    assert max(animals.values()) >= 4 * min(animals.values())


def test_sites_seasons_and_night(demo):
    images = [i for i in demo["images"] if i["width"] > 0]
    assert len({i["location"] for i in images}) >= 6
    assert {i["file_name"][:2] for i in images} == {"S1", "S2"}
    night = set(_with(demo, "night"))
    assert 0.1 < len(night) / len(demo["truth"]) < 0.5
    for rec in images:
        hour = int(rec["datetime"][11:13])
        assert (rec["id"] in night) == (not 6 <= hour <= 17), rec["id"]


@pytest.mark.parametrize("night", [True, False])
def test_night_frames_are_greyscale(demo, night):
    root = demo["paths"].images_root
    bad = set(_with(demo, "missing")) | set(_with(demo, "truncated"))
    ids = [i for i, r in demo["truth"].items()
           if ("night" in r["phenomena"]) == night and i not in bad][:5]
    for image_id in ids:
        arr = np.asarray(Image.open(root / f"{image_id}.JPG").convert("RGB"), np.int16)
        assert arr.shape == (384, 512, 3)
        spread = np.abs(arr[..., 0] - arr[..., 2]).mean()
        assert (spread < 3) if night else (spread > 8), (image_id, spread)


def test_truth_matches_annotations(demo):
    labelled = _labels_by_image(demo)
    assert demo["truth_doc"]["version"] == 1 and demo["truth_doc"]["seed"] == 0
    assert set(demo["truth"]) == set(labelled)
    for image_id, rec in demo["truth"].items():
        assert set(rec) == {"visible", "labelled", "phenomena"}
        assert rec["labelled"] == [c for c in labelled[image_id] if c != "empty"]
        assert set(rec["visible"]) <= set(CATEGORIES) - {"empty"}


def test_multi_species_images(demo):
    multi = [i for i, cats in _labels_by_image(demo).items() if len(cats) == 2]
    assert len(multi) >= 3
    for image_id in multi:
        assert set(demo["truth"][image_id]["labelled"]) == {"zebra", "wildebeest"}


def test_inherited_label_frames(demo):
    frames = {i["id"]: i for i in demo["images"]}
    ids = _with(demo, "inherited_label")
    assert len(ids) >= 2
    for image_id in ids:
        rec = demo["truth"][image_id]
        assert rec["visible"] == [] and rec["labelled"]
        assert frames[image_id]["frame_num"] > 1, "the animal leaves after the first frame"
    seqs = {frames[i]["seq_id"] for i in ids}
    first = [i for i, f in frames.items() if f["seq_id"] in seqs and f["frame_num"] == 1]
    assert all(demo["truth"][i]["visible"] for i in first)


def _pixels(demo, image_id) -> np.ndarray:
    path = demo["paths"].images_root / f"{image_id}.JPG"
    # above the foreground grass (it sways in the wind) and the time bar
    return np.asarray(Image.open(path).convert("L"), np.float32)[:300]


def test_pixels_follow_truth(demo):
    """An animal that walks out changes the frame far more than wind on an empty capture."""
    frames = defaultdict(dict)
    for rec in demo["images"]:
        if not {"missing", "truncated"} & set(demo["truth"][rec["id"]]["phenomena"]):
            frames[rec["seq_id"]][rec["frame_num"]] = rec["id"]

    def change(seq_frames, a, b):  # share of pixels that changed a lot (not sensor noise)
        return (np.abs(_pixels(demo, seq_frames[a]) - _pixels(demo, seq_frames[b])) > 40).mean()

    left, empty = [], []
    for seq, fr in frames.items():
        if len(fr) < 2 or 1 not in fr:
            continue
        last = max(fr)
        first, final = demo["truth"][fr[1]], demo["truth"][fr[last]]
        if first["visible"] and "inherited_label" in final["phenomena"]:
            left.append(change(fr, 1, last))
        elif not first["labelled"] and not first["visible"]:
            empty.append(change(fr, 1, last))
    assert left and empty
    assert min(left) > 0.005 > max(empty), (sorted(left)[:3], sorted(empty)[-3:])


def test_missed_species_frames(demo):
    ids = _with(demo, "missed_species")
    assert len(ids) >= 3
    for image_id in ids:
        rec = demo["truth"][image_id]
        assert set(rec["visible"]) == {"zebra", "wildebeest"} and len(rec["labelled"]) == 1


def test_lookalike_pair(demo):
    ids = _with(demo, "lookalike")
    gazelles = {"gazellethomsons", "gazellegrants"}
    assert {c for i in ids for c in demo["truth"][i]["visible"]} == gazelles
    swapped = [i for i in ids if demo["truth"][i]["visible"] != demo["truth"][i]["labelled"]]
    assert swapped, "a planted confusion within the look-alike pair"
    for i in swapped:
        assert set(demo["truth"][i]["visible"]) | set(demo["truth"][i]["labelled"]) == gazelles


def test_missing_and_truncated_files(demo):
    root = demo["paths"].images_root
    sizes = {i["id"]: (i["width"], i["height"]) for i in demo["images"]}
    missing, truncated = _with(demo, "missing"), _with(demo, "truncated")
    assert missing and truncated
    for image_id in missing:
        assert not (root / f"{image_id}.JPG").exists() and sizes[image_id] == (-1, -1)
    for image_id in truncated:
        path = root / f"{image_id}.JPG"
        assert path.exists() and sizes[image_id] == (512, 384)
        with pytest.raises(OSError, match="truncated|broken|image file"):
            with Image.open(path) as im:
                im.load()
    present = [i for i in sizes if i not in missing]
    assert sum(1 for _ in root.rglob("*.JPG")) == len(present)


# --- round trip through the loader ------------------------------------------------------------

def test_loads_with_data_cct(demo):
    ds = cct.load_dataset(demo["paths"].json_paths, cache=False)
    assert len(ds.images) == 400
    assert ds.classes == [n for n, _ in sorted(CATEGORIES.items(), key=lambda kv: kv[1])]
    assert ds.images["frame_num"].min() == 1
    sets = ds.label_sets()
    assert sum(len(s) == 2 for s in sets) == sum(
        len(r["labelled"]) == 2 for r in demo["truth"].values())


def test_validate_reports_only_planted_problems(demo):
    paths = demo["paths"]
    report = cct.validate(paths.json_paths, images_root=paths.images_root, cache=False)
    assert report.usable
    found = defaultdict(set)
    for p in report.problems:
        found[p.kind].add(p.id)
    assert set(found) <= {"missing_file", "truncated_file"}, dict(found)
    assert found["missing_file"] == set(_with(demo, "missing"))
    assert found["truncated_file"] == set(_with(demo, "truncated"))


# --- determinism, arguments, CLI -----------------------------------------------------------

def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = make_demo(tmp_path / "a", n_images=30, seed=3)
    b = make_demo(tmp_path / "b", n_images=30, seed=3)
    c = make_demo(tmp_path / "c", n_images=30, seed=4)
    assert _tree_digest(a.root) == _tree_digest(b.root)
    assert _tree_digest(a.root) != _tree_digest(c.root)
    assert len(json.loads(a.truth.read_text())["images"]) == 30


def test_workers_do_not_change_bytes(tmp_path):
    one = make_demo(tmp_path / "one", n_images=30, seed=1, workers=1)
    two = make_demo(tmp_path / "two", n_images=30, seed=1, workers=2)
    assert _tree_digest(one.root) == _tree_digest(two.root)


def test_rerun_replaces_previous_demo(tmp_path):
    make_demo(tmp_path / "d", n_images=30, seed=0)
    paths = make_demo(tmp_path / "d", n_images=12, seed=0)
    assert sum(1 for _ in paths.images_root.rglob("*.JPG")) <= 12
    assert len(json.loads(paths.truth.read_text())["images"]) == 12


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_images=5), "n_images"), (dict(n_images=10**7), "n_images"),
    (dict(n_images=2.5), "n_images"), (dict(seed=-1), "seed"),
])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(DemoError, match=match):
        make_demo(tmp_path / "x", **kwargs)


def test_refuses_to_overwrite_foreign_images_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "keep.txt").write_text("mine")
    with pytest.raises(DemoError, match="not a demo dataset"):
        make_demo(tmp_path, n_images=20)
    assert (tmp_path / "images" / "keep.txt").exists()


def _parser():
    parser = argparse.ArgumentParser(prog="data")
    register_cli(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_writes_demo_and_prints_one_line(tmp_path, capsys):
    args = _parser().parse_args(["demo", "--out", str(tmp_path / "cli"), "--images", "20",
                                 "--seed", "2"])
    assert args.func(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("demo: 20 images")
    assert (tmp_path / "cli" / "SnapshotSerengetiS02.json").exists()


def test_cli_default_out_is_work_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TRAPLENS_HOME", str(tmp_path / "home"))
    args = _parser().parse_args(["demo", "--images", "12"])
    assert args.func(args) == 0
    assert (tmp_path / "home" / "demo" / "demo_truth.json").exists()


def test_cli_bad_input_exits_2(tmp_path, capsys):
    args = _parser().parse_args(["demo", "--out", str(tmp_path / "x"), "--images", "3"])
    assert args.func(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "n_images" in err[0] and "got 3" in err[0]


@pytest.mark.slow
def test_default_size_builds(tmp_path):
    # How long it takes is make demo's business, not a unit test's (speed is measured by
    # make bench, never by timed unit tests).
    paths = make_demo(tmp_path / "big", n_images=3000, seed=0)
    assert len(json.loads(paths.truth.read_text())["images"]) == 3000
