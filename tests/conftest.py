"""Shared fixtures: the real Snapshot Serengeti files in ../shared/fixtures (skip when absent)."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
SERENGETI = FIXTURES / "serengeti-s1"
BAD_IMAGES = FIXTURES / "bad-images"


@pytest.fixture(scope="session", autouse=True)
def _session_home(tmp_path_factory):
    """Session fixtures (built before any test's own home) write under a session home too."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRAPLENS_HOME", str(tmp_path_factory.mktemp("session-home")))
        yield


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


# --- Shared, session-scoped data for every package's tests -------------------------------
# A small demo dataset (data.demo), a synthetic run over it (tests/synth.py: predictions that
# imitate a model from demo_truth.json, no torch), and a genuinely trained small run
# (tests/trained_run.py; slow). Built once per test session.

@pytest.fixture(scope="session")
def demo_small(tmp_path_factory):
    """``data.demo.DemoPaths`` of a 400-image demo dataset."""
    from data.demo import make_demo

    return make_demo(tmp_path_factory.mktemp("demo"), n_images=400, seed=0)


@pytest.fixture(scope="session")
def synthetic_run(demo_small, tmp_path_factory):
    """Run folder (Path) with synthetic predictions over ``demo_small``."""
    from tests.synth import make_synthetic_run

    return make_synthetic_run(demo_small, tmp_path_factory.mktemp("runs") / "synthetic", seed=0)


@pytest.fixture(scope="session")
def trained_demo_run(tmp_path_factory):
    """``tests.trained_run.TrainedRun``: a small demo dataset and a real (CPU) trained run."""
    from tests.trained_run import build_trained_demo_run

    return build_trained_demo_run(tmp_path_factory.mktemp("trained"))
