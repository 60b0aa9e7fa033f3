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
