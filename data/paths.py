"""The one git-ignored work folder for everything TrapLens generates."""
from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "TRAPLENS_HOME"


def work_dir() -> Path:
    """``$TRAPLENS_HOME`` or ``./workspace``; created on first use."""
    path = Path(os.environ.get(ENV_VAR) or "workspace").expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sub(name: str) -> Path:
    path = work_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    return _sub("cache")


def runs_dir() -> Path:
    return _sub("runs")


def demo_dir() -> Path:
    return _sub("demo")


def curation_db() -> Path:
    return work_dir() / "curation.sqlite"


def thumbnail_dir() -> Path:
    """Thumbnails shared by the dashboard and the HTML report."""
    return _sub("cache/thumbnails")
