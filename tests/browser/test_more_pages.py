"""Real browser: co-occurrence, sequences, calibration, compare and try-the-model pages."""
from __future__ import annotations

import shutil
import urllib.parse

import pytest

from tests.synth import attach_tiny_checkpoint

pytestmark = pytest.mark.browser


def _no_exception(pg) -> None:
    errors = pg.locator("[data-testid='stException']")
    assert errors.count() == 0, errors.first.inner_text()


def _query(pg) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlparse(pg.url).query)


def _main(pg) -> str:
    return pg.locator("[data-testid='stMainBlockContainer']").inner_text()


def test_cooccurrence_grid_click_picks_the_pair(page, open_page, wait_idle, screenshot,
                                                demo_small, browser_runs):
    from analysis.cooccurrence import rank_pairs
    from analysis.evalset import build_evalset
    from data.runs import load_run
    from data.cct import load_dataset

    ev = build_evalset(load_dataset(demo_small.json_paths), load_run(browser_runs / "synthetic"))
    top = rank_pairs(ev, k=1).iloc[0]

    open_page(page, "cooccurrence")
    page.locator(".js-plotly-plot path.point").first.wait_for()
    _no_exception(page)
    gd = page.locator(".js-plotly-plot").first
    xs, ys = gd.evaluate("gd => [Array.from(gd.data[0].x), Array.from(gd.data[0].y)]")
    assert f"labelled {top['a']} were predicted {top['b']}" in _main(page)  # the default
    off = [i for i in range(len(xs)) if xs[i] != ys[i] and (ys[i], xs[i]) != (top.a, top.b)]
    assert off, "the demo has species annotated together beyond the default pair"
    a, b = ys[off[0]], xs[off[0]]
    box = gd.locator("path.point").nth(off[0]).bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.get_by_text(f"labelled {a} were predicted {b}").wait_for()
    wait_idle(page)
    _no_exception(page)
    assert _query(page)["cooc_pair"] == [f"{a}|{b}"]
    assert f"Explained: {b} is there too" in _main(page)
    screenshot(page, "cooccurrence-pair")


def test_sequences_suspects_as_capture_strips(page, open_page, screenshot):
    open_page(page, "sequences?seq_kind=inherited_label")
    page.locator(".tl-strip-caption").nth(1).wait_for()
    _no_exception(page)
    assert "◀" in _main(page)
    screenshot(page, "sequences-suspects")
    page.locator(".tl-strip-caption").first.scroll_into_view_if_needed()
    screenshot(page, "sequences-strips")


def test_calibration_volunteer_target(page, open_page, wait_idle, screenshot):
    open_page(page, "calibration")
    page.get_by_text("Fitted temperature", exact=True).wait_for()
    page.get_by_text("Auto-labelled images, certified", exact=True).wait_for()  # drawn last
    _no_exception(page)
    page.get_by_text("96.6 % (volunteers)", exact=True).first.click()
    wait_idle(page)
    _no_exception(page)
    assert _query(page)["cal_target"] == ["0.966"]
    page.get_by_text("Point estimate", exact=True).first.click()  # one click away
    wait_idle(page)
    _no_exception(page)
    assert "still need a person" in _main(page)
    screenshot(page, "calibration-volunteers")


def test_compare_runs(page, open_page, screenshot):
    open_page(page, "compare")
    page.get_by_text("Choose a second run").wait_for()
    open_page(page, "compare?vs=synthetic_b")
    _no_exception(page)
    page.locator(".js-plotly-plot").nth(2).wait_for()
    assert page.locator(".js-plotly-plot").count() == 3
    assert "Fixed by B" in _main(page)
    screenshot(page, "compare-runs")


@pytest.fixture
def tiny_run(browser_runs):
    """A run with a tiny seeded checkpoint beside the synthetic ones (removed afterwards)."""
    run = browser_runs / "zz_tiny"
    shutil.copytree(browser_runs / "synthetic", run, dirs_exist_ok=True)
    attach_tiny_checkpoint(run)
    yield run
    shutil.rmtree(run)


def test_try_model_upload_and_size_limit(page, open_page, wait_idle, screenshot, tiny_run,
                                         demo_small, tmp_path):
    open_page(page, "try_model")
    page.get_by_text("has no model checkpoint").wait_for()
    open_page(page, "try_model?run=zz_tiny")
    page.get_by_text("Upload a photo (or switch").wait_for()
    _no_exception(page)
    photo = next(demo_small.images_root.rglob("*.JPG"), None) or next(
        demo_small.images_root.rglob("*.jpg"))
    upload = page.locator("[data-testid='stFileUploaderDropzoneInput']")
    upload.set_input_files(str(photo))
    page.get_by_text("Top 5 species").wait_for()
    wait_idle(page)
    _no_exception(page)
    page.locator("[data-testid='stDataFrame']").first.wait_for()
    assert page.locator("[data-testid='stDataFrame']").count() == 1
    screenshot(page, "try-model")

    big = tmp_path / "huge.jpg"
    big.write_bytes(photo.read_bytes() + b"\0" * (21 * 1024 * 1024))
    upload.set_input_files(str(big))
    page.get_by_text("File must be 20.0MB or smaller").wait_for()  # refused in the browser
    assert "huge.jpg" in _main(page)
