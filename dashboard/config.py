"""The dashboard's settings: where the dataset, images and runs live (the bottom of dashboard/).

Read from the environment (``python -m dashboard`` sets it from its flags):
``TRAPLENS_DATASET`` (COCO Camera Traps JSON files joined with ``os.pathsep``),
``TRAPLENS_IMAGES`` (the image root) and ``TRAPLENS_RUNS`` (a folder of run folders, default
``data.paths.runs_dir()``). Imports nothing from the rest of the dashboard.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

ENV_DATASET = "TRAPLENS_DATASET"
ENV_IMAGES = "TRAPLENS_IMAGES"
ENV_RUNS = "TRAPLENS_RUNS"


class ConfigError(ValueError):
    """The dashboard cannot start on these settings; ``fix`` says what to do about it."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


@dataclass(frozen=True)
class Config:
    """Where the data lives, from ``TRAPLENS_DATASET`` / ``TRAPLENS_IMAGES`` / ``TRAPLENS_RUNS``."""

    dataset_paths: tuple[str, ...]
    images_root: str | None
    runs_dir: str


def config() -> Config:
    """Read the three environment variables (runs default to ``data.paths.runs_dir()``)."""
    from data.paths import runs_dir

    raw = os.environ.get(ENV_DATASET, "")
    paths = tuple(p for p in raw.split(os.pathsep) if p.strip())
    images = os.environ.get(ENV_IMAGES) or None
    runs = os.environ.get(ENV_RUNS) or str(runs_dir())
    return Config(dataset_paths=paths, images_root=images, runs_dir=runs)
