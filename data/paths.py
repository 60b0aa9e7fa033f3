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


def resolve_images_root(manifest_images_root: str | os.PathLike | None, *,
                        override: str | os.PathLike | None = None) -> str | None:
    """The image folder to show a run's images from: ``override`` (``--images``,
    ``TRAPLENS_IMAGES``) when given, else the ``dataset.images_root`` its manifest records,
    else None (no thumbnails). Used by the dashboard and the HTML report alike.

    >>> resolve_images_root("/data/S1", override="/mnt/S1")
    '/mnt/S1'
    >>> resolve_images_root("/data/S1"), resolve_images_root(None)
    ('/data/S1', None)
    """
    for root in (override, manifest_images_root):
        if root:
            return str(root)
    return None
