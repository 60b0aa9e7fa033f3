"""Issue 17: ``python -m data`` commands never lose a user's file; hostile text stays inert."""
from __future__ import annotations

import csv
import os

import pytest

from data.__main__ import main
from data.cct import load_dataset, validate
from data.curation import DecisionError, DecisionStore, export
from data.curation.store import MAX_CURATOR_LEN, check_curator
from tests.data.cct_helpers import annotation, image, write_cct
from tests.data.test_curation import image_id
from tests.data.test_curation import write_cct as write_season


@pytest.fixture
def season(tmp_path):
    (tmp_path / "in").mkdir()
    path = write_season(tmp_path / "in" / "S1.json", n_captures=4, season="S1", seed=1)
    store = DecisionStore(tmp_path / "curation.sqlite")
    dataset = load_dataset([path], cache=False)
    store.record(dataset, curator="ann", item_id=image_id(1, 1), action="set", labels=["zebra"])
    return path, store, dataset


def _export(path, db, out, fmt):
    return main(["export", "--dataset", str(path), "--decisions", str(db), "--out", str(out),
                 "--format", fmt])


@pytest.mark.parametrize("fmt", ["csv", "coco", "camtrapdp"])
@pytest.mark.parametrize("target, message", [
    ("db", "over an input of this command"),
    ("dataset", "over an input of this command"),
])
def test_export_never_overwrites_its_inputs(season, capsys, fmt, target, message):
    # Issue 17 case 2: csv and Camtrap DP used to replace the decisions database / dataset.
    path, store, _ = season
    out = {"db": store.path, "dataset": path}[target]
    before = out.read_bytes()
    assert _export(path, store.path, out, fmt) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Errno" not in err, err
    assert out.read_bytes() == before
    assert len(DecisionStore(store.path).decisions()) == 1  # still a usable database


def test_export_into_the_dataset_folder_would_replace_it(season, capsys):
    path, store, _ = season
    before = path.read_bytes()
    # coco into a folder writes <folder>/S1.json: the input itself.
    assert _export(path, store.path, path.parent, "coco") == 2
    assert "over an input of this command" in capsys.readouterr().err
    assert path.read_bytes() == before


@pytest.mark.parametrize("fmt", ["coco", "camtrapdp"])
def test_export_out_existing_sqlite_says_why(season, tmp_path, capsys, fmt):
    # Issue 17 case 10: no raw "[Errno 17]" for a folder output that is a file.
    path, store, _ = season
    other = tmp_path / "other.sqlite"
    other.write_bytes(b"SQLite format 3\x00")
    assert _export(path, store.path, other, fmt) == 2
    err = capsys.readouterr().err
    assert "Errno" not in err and "exists and is a file (sqlite data)" in err, err
    assert other.read_bytes() == b"SQLite format 3\x00"


def test_export_csv_over_a_file_of_another_kind_but_not_its_own(season, tmp_path, capsys):
    path, store, _ = season
    out = tmp_path / "decisions.csv"
    out.write_bytes(b"\x89PNG\r\n\x1a\n")
    assert _export(path, store.path, out, "csv") == 2
    assert "holds png data, not a previous csv export" in capsys.readouterr().err
    out.unlink()
    old = os.umask(0o077)
    try:
        assert _export(path, store.path, out, "csv") == 0
        assert _export(path, store.path, out, "csv") == 0  # a previous export is replaced
    finally:
        os.umask(old)
    assert oct(out.stat().st_mode & 0o777) == oct(0o600)  # the umask, nothing else


# (A leading tab or CR does not survive the store's strip(); data.files tests cover them.)
HOSTILE = ["=HYPERLINK(\"https://evil.example\",\"x\")", "=cmd|' /C calc'!A0", "+1+1", "-2+3",
           "@SUM(A1)"]


def test_decisions_csv_neutralises_formulas(season, tmp_path):
    # Issue 17 case 4 (OWASP CSV injection): every cell a spreadsheet could run gets a quote.
    path, store, dataset = season
    for n, text in enumerate(HOSTILE):
        store.record(dataset, curator="ann", item_id=image_id(2, 1), action="set",
                     labels=["zebra"], reason=text)
    (out,) = export(dataset, store, tmp_path / "d.csv", format="decisions")
    with out.open(newline="", encoding="utf-8") as fh:
        reasons = [r["reason"] for r in csv.DictReader(fh)][1:]
    assert reasons == ["'" + t for t in HOSTILE]
    # The labelled image table carries the latest reason: neutralised too.
    (out,) = export(dataset, store, tmp_path / "labelled.csv", format="csv")
    with out.open(newline="", encoding="utf-8") as fh:
        cells = [c for r in csv.DictReader(fh) for c in r.values() if c]
    assert "'" + HOSTILE[-1] in cells
    assert not any(c[0] in "=+-@\t\r" for c in cells if not c.lstrip("-").replace(".", "").isdigit())


@pytest.mark.parametrize("name, message", [
    ("ann\nroot", "printable text on one line"),
    ("ann\rx", "printable text on one line"),
    ("ann\x1b[31m", "printable text on one line"),
    ("a" * (MAX_CURATOR_LEN + 1), f"at most {MAX_CURATOR_LEN} characters"),
    ("   ", "non-empty"),
])
def test_curator_names_are_one_printable_bounded_line(season, name, message):
    _, store, dataset = season
    with pytest.raises(DecisionError, match=message):
        store.record(dataset, curator=name, item_id=image_id(1, 2), action="empty")
    assert check_curator(" Ann [x](y) ") == "Ann [x](y)"  # stored as text; pages escape it


def test_decide_refuses_a_db_that_is_the_dataset(season, capsys):
    path, _, _ = season
    before = path.read_bytes()
    assert main(["decide", "--dataset", str(path), "--db", str(path), "--image",
                 image_id(1, 1), "--labels", "zebra", "--curator", "ann"]) == 2
    assert "refusing to write the decisions database over an input" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_import_decisions_refuses_a_db_of_another_kind(season, tmp_path, capsys):
    path, _, _ = season
    rows = tmp_path / "rows.csv"
    rows.write_text(f"image_id,labels\n{image_id(1, 1)},zebra\n")
    assert main(["import-decisions", "--dataset", str(path), "--db", str(rows), "--csv",
                 str(rows), "--curator", "ann"]) == 2
    assert "over an input of this command" in capsys.readouterr().err
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    assert main(["import-decisions", "--dataset", str(path), "--db", str(notes), "--csv",
                 str(rows), "--curator", "ann"]) == 2
    assert "holds text data, not a previous decisions database" in capsys.readouterr().err
    assert notes.read_text() == "my notes"


def test_demo_refuses_a_file_and_foreign_files(tmp_path, capsys):
    out = tmp_path / "demo.sqlite"
    out.write_bytes(b"SQLite format 3\x00")
    assert main(["demo", "--out", str(out), "--images", "5"]) == 2
    assert "exists and is a file (sqlite data), but the demo folder is a folder" in \
        capsys.readouterr().err
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "SnapshotSerengetiS01.json").write_text('{"my": "notes"}')
    assert main(["demo", "--out", str(folder), "--images", "5"]) == 2
    assert "holds json data, not a previous demo dataset" in capsys.readouterr().err
    assert (folder / "SnapshotSerengetiS01.json").read_text() == '{"my": "notes"}'


def test_validate_a_folder_says_it_is_a_folder(tmp_path, capsys):
    # Issue 17 case 10: not "no such file".
    assert main(["validate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a folder" in err and "no such file" not in err, err


def test_validate_reports_symlinks_that_leave_the_root(tmp_path, bad_images):
    # Issue 17 case 7: the opener refuses them; the user is now told, as its own kind.
    root = tmp_path / "root"
    (root / "S1").mkdir(parents=True)
    (root / "S1" / "ok.JPG").write_bytes((bad_images / "african_elephants.jpg").read_bytes())
    os.symlink(bad_images / "african_elephants.jpg", root / "S1" / "out.JPG")
    os.symlink(bad_images, root / "away")
    os.symlink(root / "S1" / "ok.JPG", root / "S1" / "in.JPG")  # stays inside: fine
    imgs = [dict(image(i, seq=f"SER_S1#A#1#{n}", frame=1, n=1), file_name=f)
            for n, (i, f) in enumerate([("ok", "S1/ok.JPG"), ("out", "S1/out.JPG"),
                                        ("away", "away/african_elephants.jpg"),
                                        ("in", "S1/in.JPG")])]
    anns = [annotation(f"a{n}", i, 5) for n, i in enumerate(["ok", "out", "away", "in"])]
    rep = validate([write_cct(tmp_path / "d.json", imgs, anns)], images_root=root)
    got = {(p.kind, p.id) for p in rep.problems}
    assert got == {("symlink_outside_root", "out"), ("symlink_outside_root", "away")}
    assert rep.summary["problem_counts"] == {"symlink_outside_root": 2}
    assert all("outside the image root" in p.detail for p in rep.problems)
