"""Shared fixtures: the real Snapshot Serengeti files in ../shared/fixtures (skip when absent)."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
SERENGETI = FIXTURES / "serengeti-s1"
BAD_IMAGES = FIXTURES / "bad-images"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test writes generated files under its own TRAPLENS_HOME, never ./workspace."""
    monkeypatch.setenv("TRAPLENS_HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture
def serengeti_slice() -> Path:
    path = SERENGETI / "SnapshotSerengetiS01-slice.json"
    if not path.exists():
        pytest.skip(f"real fixtures absent: {path} (see ../shared/fixtures/README.md)")
    return path


@pytest.fixture
def serengeti_images() -> Path:
    if not (SERENGETI / "S1").is_dir():
        pytest.skip(f"real fixture images absent under {SERENGETI}")
    return SERENGETI


@pytest.fixture
def bad_images() -> Path:
    if not BAD_IMAGES.is_dir():
        pytest.skip(f"bad-image fixtures absent: {BAD_IMAGES}")
    return BAD_IMAGES
