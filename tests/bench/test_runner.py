"""``python -m bench``: figures gathered into --json, a missed target fails the run."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import figures

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value,op,target,met", [(1.0, "<", 2.0, True), (2.0, "<", 2.0, False),
                                                 (2.0, "<=", 2.0, True), (25, ">=", 20, True),
                                                 (19, ">=", 20, False)])
def test_figure_met(value, op, target, met):
    assert figures.Figure("b", "x", value, "s", target, op).met is met


def test_record_appends_json_lines(tmp_path, monkeypatch):
    part = tmp_path / "f.jsonl"
    monkeypatch.setenv(figures.ENV, str(part))
    figures.record("b", "one", 0.5, "s", target=1.0)
    figures.record("b", "two", 3.0, "x", target=2.0, op=">=", baseline="naive", baseline_value=1)
    got = figures.read(part)
    assert [f.name for f in got] == ["one", "two"]
    assert got[1].baseline == "naive" and got[1].met is True
    with pytest.raises(ValueError, match="op must be"):
        figures.record("b", "bad", 1, "s", op="!=")


def _run_bench(tmp_path: Path, body: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``python -m bench`` over a throw-away package holding one bench module."""
    pkg = tmp_path / "bench"
    pkg.mkdir()
    for name in ("__init__.py", "__main__.py", "figures.py"):
        (pkg / name).write_text((ROOT / "bench" / name).read_text())
    (pkg / "bench_toy.py").write_text(
        "from bench import figures\n\ndef main():\n" + body)
    return subprocess.run([sys.executable, "-m", "bench", "toy", *args], cwd=tmp_path,
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})


def test_json_written_and_exit_zero_when_targets_met(tmp_path):
    out = tmp_path / "figs.json"
    r = _run_bench(tmp_path, "    figures.record('toy', 'fast', 0.1, 's', target=1.0)\n",
                   "--json", str(out))
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["figures"] == [{"bench": "toy", "name": "fast", "value": 0.1, "unit": "s",
                                "target": 1.0, "op": "<", "baseline": None,
                                "baseline_value": None, "met": True}]


def test_missed_target_exits_non_zero(tmp_path):
    r = _run_bench(tmp_path, "    figures.record('toy', 'slow', 3.0, 's', target=1.0)\n")
    assert r.returncode == 1
    assert "target missed: toy / slow: 3 s (target < 1)" in r.stderr
