"""data.files: the one atomic writer."""
from __future__ import annotations

import os
import stat

import pytest

from data import files
from data.files import atomic_write, atomic_write_path


@pytest.mark.parametrize("data", ["héllo\n", b"\x00\xffbytes"])
def test_round_trip_and_ordinary_mode(tmp_path, data):
    path = atomic_write(tmp_path / "sub" / "f", data)
    assert (path.read_text(encoding="utf-8") if isinstance(data, str)
            else path.read_bytes()) == data
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask  # not mkstemp's 0600
    assert [p.name for p in path.parent.iterdir()] == ["f"]


def test_data_and_write_are_exclusive(tmp_path):
    with pytest.raises(TypeError, match="either data or write="):
        atomic_write(tmp_path / "f", "x", write=lambda fh: None)
    with pytest.raises(TypeError, match="either data or write="):
        atomic_write(tmp_path / "f")


def test_failure_keeps_the_previous_file(tmp_path):
    target = atomic_write(tmp_path / "f.txt", "old")

    def broken(fh):
        fh.write("half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(target, write=broken, text=True)
    def broken_path(p):
        with p.open("w") as fh:
            broken(fh)

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write_path(target, broken_path)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_durable_false_skips_fsync_only(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(files, "fsync_file", lambda fh: calls.append(fh))
    atomic_write(tmp_path / "a", b"1")
    assert len(calls) == 1
    atomic_write(tmp_path / "b", b"2", durable=False)
    assert len(calls) == 1 and (tmp_path / "b").read_bytes() == b"2"


def test_atomic_write_path_for_path_writers(tmp_path):
    out = atomic_write_path(tmp_path / "t.bin", lambda p: p.write_bytes(b"abc"))
    assert out.read_bytes() == b"abc"
    assert [p.name for p in tmp_path.iterdir()] == ["t.bin"]


# -- outputs that must not clobber inputs (issue 17) ---------------------------------------
@pytest.mark.parametrize("value, expected", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@A1", "'@A1"), ("\tx", "'\tx"),
    ("\rx", "'\rx"), ("zebra", "zebra"), ("a=b", "a=b"), ("", ""), (-1, -1), (None, None),
])
def test_neutralise_csv_cell(value, expected):
    assert files.neutralise_csv_cell(value) == expected


@pytest.mark.parametrize("content, kind", [
    (b"SQLite format 3\x00...", "sqlite"), (b"PAR1....", "parquet"), (b"\x89PNG\r\n", "png"),
    (b'{"info": {}, "images": [{"id": 1}]}', "cct-json"),
    (b'{"annotations" : [], "x": 1}', "cct-json"),
    (b'{"run": {"images": 3, "annotations": 4}}', "json"),  # a report counts, a dataset lists
    (b"<!DOCTYPE html><html>", "html"), (b"a,b\n1,2\n", "text"), (b"\x00\x01", "binary"),
])
def test_sniff(tmp_path, content, kind):
    path = tmp_path / "f"
    path.write_bytes(content)
    assert files.sniff(path) == kind


def test_check_output_rules(tmp_path):
    data, run = tmp_path / "d.json", tmp_path / "run"
    data.write_text('{"images": []}')
    run.mkdir()
    (run / "manifest.json").write_text("{}")
    with pytest.raises(files.OutputError, match="over an input of this command"):
        files.check_output(data, inputs=[data], kinds={"cct-json"})
    link = tmp_path / "alias.json"
    link.symlink_to(data)
    with pytest.raises(files.OutputError, match="over an input of this command"):
        files.check_output(link, inputs=[data], kinds={"json"})
    with pytest.raises(files.OutputError, match="inside the input folder"):
        files.check_output(run / "report.json", inputs=[run], kinds={"json"})
    with pytest.raises(files.OutputError, match="is a folder"):
        files.check_output(run, kinds={"json"})
    with pytest.raises(files.OutputError, match="holds cct-json data, not a previous report"):
        files.check_output(data, kinds={"json"}, what="report")
    with pytest.raises(files.OutputError, match="is a file .* but the run folder is a folder"):
        files.check_output(data, folder=True, what="run folder")
    assert files.check_output(run, folder=True) == run
    (tmp_path / "empty.csv").touch()  # nothing to lose
    assert files.check_output(tmp_path / "empty.csv", kinds={"sqlite"}).name == "empty.csv"
    assert files.check_output(tmp_path / "new.json", inputs=[data, None, run], kinds={"json"})
