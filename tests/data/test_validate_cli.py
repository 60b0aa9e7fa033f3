"""``python -m data validate``: summary, every problem with its id, exit codes, --json."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from data.__main__ import build_parser, main
from data.cct import validate
from tests.conftest import ROOT
from tests.data.cct_helpers import annotation, image, small_season, write_cct

MISSING = {"S1/D04/D04_R6/S1_D04_R6_PICT0276", "S1/D04/D04_R6/S1_D04_R6_PICT0277"}


def test_slice_human_output(serengeti_slice, serengeti_images, capsys):
    assert main(["validate", str(serengeti_slice), "--images", str(serengeti_images)]) == 0
    out = capsys.readouterr().out
    rows = {" ".join(line.split()[:-1]): line.split()[-1] for line in out.splitlines()
            if line.startswith("  ") and ":" not in line}
    assert {k: rows[k] for k in ("images", "annotations", "sequences", "categories",
                                 "multi species images", "empty fraction")} == {
        "images": "12", "annotations": "12", "sequences": "4", "categories": "61",
        "multi species images": "0", "empty fraction": "25.0%"}
    assert "images per season: S1 12" in out and "images per site: D04 12" in out
    assert out.count("missing_file") == 3          # the count line and two problem lines
    for iid in MISSING:
        assert iid in out


def test_slice_json(serengeti_slice, serengeti_images, capsys):
    assert main(["validate", str(serengeti_slice), "--images", str(serengeti_images),
                 "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert {k: rep[k] for k in ("images", "annotations", "sequences", "categories",
                                "multi_species_images", "empty_fraction", "usable")} == {
        "images": 12, "annotations": 12, "sequences": 4, "categories": 61,
        "multi_species_images": 0, "empty_fraction": 0.25, "usable": True}
    assert rep["per_season"] == {"S1": 12} and rep["per_site"] == {"D04": 12}
    assert {(p["kind"], p["id"]) for p in rep["problems"]} == {("missing_file", i)
                                                               for i in MISSING}


def test_slice_without_images_root_has_no_problems(serengeti_slice, capsys):
    assert main(["validate", str(serengeti_slice), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["problems"] == []


def test_every_problem_kind_with_its_id(tmp_path, bad_images):
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.JPG").write_bytes((bad_images / "african_elephants.jpg").read_bytes())
    (root / "cut.JPG").write_bytes(
        (bad_images / "african_elephants_truncated_file.jpg").read_bytes())
    (root / "txt.JPG").write_text("hello")
    imgs = [dict(image("ok", seq="SER_S1#A#1#1", frame=1, n=2)),
            dict(image("cut", seq="SER_S1#A#1#1", frame=3, n=2)),     # frame 3 of 2
            dict(image("txt", seq="SER_S1#A#1#2", frame=1, n=1)),
            dict(image("gone", seq="SER_S1#A#1#3", frame=0, n=1)),    # frame 0
            dict(image("esc", seq="SER_S1#A#1#4", frame=1, n=1), file_name="../../etc/passwd"),
            dict(image("abs", seq="SER_S1#A#1#5", frame=1, n=1), file_name="/etc/passwd"),
            dict(image("ok", seq="SER_S1#A#1#1", frame=1, n=2))]      # duplicate id
    anns = [annotation("a1", "ok", 5), annotation("a2", "cut", 5), annotation("a3", "txt", 0),
            annotation("a4", "esc", 0), annotation("a5", "abs", 0),
            annotation("a6", "ghost", 5), annotation("a7", "ok", 77)]
    path = write_cct(tmp_path / "d.json", imgs, anns)
    rep = validate([path], images_root=root)
    assert rep.usable
    got = {(p.kind, p.id) for p in rep.problems}
    assert got == {("duplicate_image_id", "ok"), ("unknown_image", "a6"),
                   ("unknown_category", "a7"), ("no_annotation", "gone"),
                   ("frame_out_of_range", "cut"), ("frame_out_of_range", "gone"),
                   ("unsafe_path", "esc"), ("unsafe_path", "abs"),
                   ("missing_file", "gone"), ("truncated_file", "cut"),
                   ("unreadable_file", "txt")}
    detail = {p.kind + p.id: p.detail for p in rep.problems}
    assert "frame_num 3 outside 1..2" in detail["frame_out_of_rangecut"]
    assert "'..' component" in detail["unsafe_pathesc"]
    assert rep.summary["problem_counts"]["unsafe_path"] == 2


def test_summary_multi_species_and_seasons(tmp_path, capsys):
    a = small_season(tmp_path / "s1.json", "S1")
    b = small_season(tmp_path / "s2.json", "S2")
    assert main(["validate", str(a), str(b), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["images"] == 6 and rep["annotations"] == 8 and rep["sequences"] == 4
    assert rep["multi_species_images"] == 2
    assert rep["empty_fraction"] == pytest.approx(2 / 6)
    assert rep["per_season"] == {"S1": 3, "S2": 3}
    assert rep["per_site"] == {"A01": 4, "B02": 2}


@pytest.mark.parametrize("text, reason", [
    ('{"images": [', "unexpected end of file"),
    ('{"images": [{"id": "a"}], "annotations": []}', "missing top-level key(s) 'categories'"),
    ('{"images": [], "annotations": [], "categories": []}', "no images"),
    ("not json at all", "the top level is not a JSON object"),
    ('{"images": [{"id": "a"}], "annotations": [], 1: []}', "key is not a string"),
])
def test_unusable_exit_2_one_line(tmp_path, capsys, text, reason):
    path = tmp_path / "broken.json"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and reason in lines[0], captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_bad_images_root_exit_2(tmp_path, capsys):
    path = small_season(tmp_path / "s.json")
    assert main(["validate", str(path), "--images", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "image root is not a directory" in err[0]


def test_subprocess_entry_point(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"images": [{"id": 1}')
    proc = subprocess.run([sys.executable, "-m", "data", "validate", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "broken.json" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_parser_lists_validate_and_optional_modules():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert "validate" in sub.choices
    args = parser.parse_args(["validate", "x.json", "--images", "r", "--json"])
    assert args.files == ["x.json"] and args.images == "r" and args.json
