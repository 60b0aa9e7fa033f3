"""Dashboard test fixtures: the app pointed at ``demo_small`` and two synthetic runs."""
from __future__ import annotations

import html
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
TIMEOUT = 120  # seconds per AppTest run: the 2-core CI machine is shared


@pytest.fixture(scope="session")
def dashboard_runs(demo_small, synthetic_run) -> Path:
    """The runs folder: ``synthetic`` (accuracy 0.8) and ``synthetic_b`` (seed 1, 0.6)."""
    from tests.synth import make_synthetic_run

    runs = Path(synthetic_run).parent
    second = runs / "synthetic_b"
    if not (second / "predictions.parquet").exists():
        make_synthetic_run(demo_small, second, seed=1, accuracy=0.6)
    return runs


@pytest.fixture
def dashboard_env(monkeypatch, demo_small, dashboard_runs) -> dict[str, str]:
    """TRAPLENS_DATASET / IMAGES / RUNS set for the app; returns them."""
    env = {
        "TRAPLENS_DATASET": os.pathsep.join(str(p) for p in demo_small.json_paths),
        "TRAPLENS_IMAGES": str(demo_small.images_root),
        "TRAPLENS_RUNS": str(dashboard_runs),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def app(dashboard_env) -> Callable[..., AppTest]:
    """``app(page=None, **query)``: an AppTest of ``dashboard/app.py`` run once on ``page``.

    ``page`` is a stem of ``dashboard/app_pages`` (``"confusion"``); ``query`` becomes the URL's
    query params (lists for repeated keys).
    """

    def make(page: str | None = None, **query) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        at.query_params.update({k: v for k, v in query.items() if v is not None})
        if page:
            at.switch_page(f"app_pages/{page}.py")
        return at.run()

    return make


def _texts(at) -> str:
    """Everything an AppTest run shows as text (markdown, captions, titles, metrics, alerts)."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning",
                 "success", "error"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [f"{m.label}={m.value}" for m in at.metric]
    return "\n".join(parts)


def _no_exception(at) -> None:
    """Fail with the app's own traceback text when a run raised."""
    assert not at.exception, "\n".join(str(e.value) + "\n" + "\n".join(e.stack_trace)
                                       for e in at.exception)


@pytest.fixture
def texts() -> Callable[..., str]:
    """``texts(at)``: all text an AppTest run shows, joined by newlines."""
    return _texts


@pytest.fixture
def no_exception() -> Callable[..., None]:
    """``no_exception(at)``: assert the run raised nothing (shows the app's traceback)."""
    return _no_exception


_CARD = re.compile(r"class='tl-caption' data-image-id='([^']*)'[^>]*>(.*?)<br>", re.S)


def _gallery(at) -> list[tuple[str, str]]:
    """``(image_id, caption)`` of every gallery card on the current page, in order."""
    out = []
    for m in at.markdown:
        hit = _CARD.search(str(m.value))
        if hit:
            out.append((html.unescape(hit.group(1)), html.unescape(hit.group(2))))
    return out


@pytest.fixture
def gallery() -> Callable[..., list[tuple[str, str]]]:
    """``gallery(at)``: the shown cards as ``(image_id, caption)``.

    Cards sit in columns, so the order is column-major; compare sets, or sort.
    """
    return _gallery


@pytest.fixture
def view_of(dashboard_env, demo_small, dashboard_runs):
    """``view_of(**fields)``: a ``ViewState`` over the test runs (default run ``synthetic``)."""
    from dashboard.state import ViewState

    def make(**fields) -> ViewState:
        base = dict(runs_dir=str(dashboard_runs), run="synthetic",
                    dataset_paths=tuple(str(p) for p in demo_small.json_paths),
                    images_root=str(demo_small.images_root))
        return ViewState(**{**base, **fields})

    return make
