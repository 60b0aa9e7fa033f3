"""Real-browser fixtures: the dashboard server (``python -m dashboard``) and Debian's Chromium.

Everything here is marked ``browser`` and skips cleanly when /usr/bin/chromium is missing
(``make browser`` installs it). Reusable pieces for every page's browser test:

- ``server`` (session): base URL of a live server over ``demo_small`` and two synthetic runs.
- ``page``: a fresh 1400x900 Playwright page; ``open_page(page, path_and_query)`` loads a URL
  and waits until the script run has finished.
- ``screenshot(page, name)``: writes ``<name>.png`` to a temporary folder, or to
  ``$TRAPLENS_SCREENSHOTS`` when set (``make screenshots`` sets it to ``docs/screenshots``, so
  tests never write into the source tree on their own).
- ``wait_idle(page)``: waits for Streamlit to finish the current rerun.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic"]
VIEWPORT = {"width": 1400, "height": 900}
BUSY = ("initial", "running", "rerunRequested")


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def browser_runs(demo_small, synthetic_run) -> Path:
    """The runs folder: ``synthetic`` and a weaker ``synthetic_b`` (seed 1) for comparisons."""
    from tests.synth import make_synthetic_run

    runs = Path(synthetic_run).parent
    if not (runs / "synthetic_b" / "predictions.parquet").exists():
        make_synthetic_run(demo_small, runs / "synthetic_b", seed=1, accuracy=0.6)
    return runs


@pytest.fixture(scope="session")
def server(demo_small, browser_runs, tmp_path_factory) -> Iterator[str]:
    """Start ``python -m dashboard`` on a free localhost port; yield its base URL."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (`make browser` installs Debian's chromium)")
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {**os.environ, "TRAPLENS_HOME": str(tmp_path_factory.mktemp("home")),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "dashboard", "--dataset", *map(str, demo_small.json_paths),
           "--images", str(demo_small.images_root), "--runs", str(browser_runs),
           "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dashboard server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # only the group this fixture started
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture(scope="session")
def browser(server):
    """A headless Debian Chromium driven by Playwright's sync API."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    """A fresh 1400x900 page (own context: no state shared between tests)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


def _wait_idle(pg, *, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished the current script run (and painted its result)."""
    pg.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    idle = ("busy => { const a = document.querySelector(\"[data-testid='stApp']\");"
            " return a && !busy.includes(a.getAttribute('data-test-script-state'))"
            " && a.getAttribute('data-test-connection-state') === 'CONNECTED'; }")
    # A rerun starts a moment after the click or page load that causes it: idle twice in a
    # row, half a second apart, means the run is really over.
    for _ in range(20):
        pg.wait_for_timeout(500)
        pg.wait_for_function(idle, arg=list(BUSY), timeout=timeout)
        pg.wait_for_timeout(500)
        if pg.evaluate(f"({idle})({list(BUSY)!r})"):
            break


@pytest.fixture
def wait_idle() -> Callable[..., None]:
    """``wait_idle(page)``: block until the app's rerun is done."""
    return _wait_idle


@pytest.fixture
def open_page(server) -> Callable[..., None]:
    """``open_page(page, "confusion?cm_cell=a|b")``: load a dashboard URL and wait for it."""
    def go(pg, path: str = "") -> None:
        pg.goto(f"{server}/{path.lstrip('/')}")
        pg.locator("h1").first.wait_for()  # every page has a title once its run has begun
        _wait_idle(pg)

    return go


@pytest.fixture(scope="session")
def screenshots_dir(tmp_path_factory) -> Path:
    """Where screenshots go: ``$TRAPLENS_SCREENSHOTS`` (``make screenshots``) or a temp folder."""
    chosen = os.environ.get("TRAPLENS_SCREENSHOTS")
    return Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def screenshot(screenshots_dir) -> Callable[..., Path]:
    """``screenshot(page, name)``: save the visible page as ``<name>.png`` (see the module doc)."""
    def shoot(pg, name: str, *, full_page: bool = False) -> Path:
        screenshots_dir.mkdir(parents=True, exist_ok=True)
        path = screenshots_dir / f"{name}.png"
        pg.mouse.move(1, 1)  # no stray hover tooltip in the picture
        # Charts, tables and thumbnails paint after the script run: wait for all of them.
        pg.wait_for_function(
            "() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
            ".every(p => p.querySelector('.main-svg'))"
            " && Array.from(document.images).every(i => i.complete)"
            " && Array.from(document.querySelectorAll(\"[data-testid='stDataFrame']\"))"
            ".every(d => d.querySelector('canvas'))")
        pg.wait_for_timeout(800)
        pg.screenshot(path=str(path), full_page=full_page)
        return path

    return shoot
