"""Every benchmark figure recorded once: value, unit, target and baseline, machine-readable.

A bench calls ``record(...)`` for each figure it prints. ``python -m bench`` gives each bench
process a file (``TRAPLENS_BENCH_FIGURES``) to which its figures are appended as JSON lines, then
gathers them into ``--json FILE`` and exits non-zero when any figure misses its target.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

ENV = "TRAPLENS_BENCH_FIGURES"
#: The comparison a target makes: value < target, value <= target, value >= target.
OPS = {"<": float.__lt__, "<=": float.__le__, ">=": float.__ge__, ">": float.__gt__}


@dataclass(frozen=True)
class Figure:
    bench: str
    name: str
    value: float
    unit: str
    target: float | None = None
    op: str = "<"
    baseline: str | None = None          # what the figure is measured against, by name
    baseline_value: float | None = None  # the baseline's own figure in the same run

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return OPS[self.op](float(self.value), float(self.target))


def record(bench: str, name: str, value: float, unit: str, *, target: float | None = None,
           op: str = "<", baseline: str | None = None,
           baseline_value: float | None = None) -> Figure:
    """Record one figure (and return it); a no-op apart from the return outside ``python -m bench``."""
    if op not in OPS:
        raise ValueError(f"op must be one of {sorted(OPS)}, got {op!r}")
    fig = Figure(bench, name, float(value), unit, None if target is None else float(target), op,
                 baseline, None if baseline_value is None else float(baseline_value))
    path = os.environ.get(ENV)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(fig)) + "\n")
    return fig


def read(path: str | Path) -> list[Figure]:
    """The figures appended to ``path`` (empty when the bench recorded none)."""
    p = Path(path)
    if not p.exists():
        return []
    return [Figure(**json.loads(line)) for line in p.read_text().splitlines() if line.strip()]


def misses(figures: list[Figure]) -> list[Figure]:
    return [f for f in figures if f.met is False]
