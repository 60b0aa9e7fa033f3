"""Real browser: every page renders, a matrix click shows exactly that cell, strips, shared URLs."""
from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

APP_DIR = Path(__file__).resolve().parents[2] / "dashboard"


def _pages() -> list[tuple[str, str]]:
    import importlib

    app = importlib.import_module("dashboard.app")
    return [(stem, title) for stem, title, _ in app.PAGES
            if (APP_DIR / "app_pages" / f"{stem}.py").is_file()]


@pytest.fixture(scope="module")
def truth(demo_small, browser_runs):
    """The default view's eval set and targets, computed without the dashboard."""
    from analysis.evalset import build_evalset, targets
    from data.runs import load_run
    from data.cct import load_dataset

    ev = build_evalset(load_dataset(demo_small.json_paths), load_run(browser_runs / "synthetic"))
    return ev, *targets(ev, policy="set")


def _no_exception(pg) -> None:
    errors = pg.locator("[data-testid='stException']")
    assert errors.count() == 0, errors.first.inner_text()


def _gallery_ids(pg) -> list[str]:
    return pg.locator(".tl-caption").evaluate_all(
        "els => els.map(e => e.getAttribute('data-image-id'))")


def _query(pg) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlparse(pg.url).query)


@pytest.mark.parametrize("stem, title", _pages())
def test_every_page_renders(page, open_page, screenshot, stem, title):
    open_page(page, "" if stem == _pages()[0][0] else stem)  # the default page lives at /
    _no_exception(page)
    assert page.locator("h1").first.is_visible()
    assert not page.get_by_text("Page not found").is_visible()
    assert page.locator("[data-testid='stSidebar']").is_visible()
    assert _query(page)["run"] == ["synthetic"]
    screenshot(page, stem)


def _click_off_diagonal_cell(pg, truth=None) -> tuple[str, str]:
    """Click an off-diagonal matrix cell: with ``truth``, the largest that fits on one page."""
    gd = pg.locator(".js-plotly-plot").first
    xs, ys = gd.evaluate("gd => [Array.from(gd.data[0].x), Array.from(gd.data[0].y)]")
    cells = [i for i in range(len(xs)) if xs[i] != ys[i] and "other" not in (xs[i], ys[i])]
    if truth is not None:
        from analysis.metrics import confusion

        ev, y_true, y_pred = truth
        cm = confusion(y_true, y_pred, len(ev.classes))
        count = {i: cm[ev.classes.index(ys[i]), ev.classes.index(xs[i])] for i in cells}
        cells = sorted((i for i in cells if count[i] <= 24), key=count.get, reverse=True)
    box = gd.locator("path.point").nth(cells[0]).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    pg.mouse.move(x, y)  # plotly selects the point under the hover, as for a real user
    pg.wait_for_timeout(300)
    pg.mouse.click(x, y)
    return ys[cells[0]], xs[cells[0]]


def test_matrix_click_shows_exactly_that_cell(page, open_page, wait_idle, screenshot, truth):
    from analysis.confusion import cell_mask

    ev, y_true, y_pred = truth
    open_page(page, "confusion")
    actual, predicted = _click_off_diagonal_cell(page, truth)
    page.get_by_text(f"actual {actual} → predicted {predicted}").wait_for()
    wait_idle(page)
    _no_exception(page)
    assert _query(page)["cm_cell"] == [f"{actual}|{predicted}"]
    want = ev.image_ids[cell_mask(y_true, y_pred, ev.classes.index(actual),
                                  ev.classes.index(predicted))]
    shown = _gallery_ids(page)
    assert sorted(shown) == sorted(want.tolist()) and len(shown) > 0
    for caption in page.locator(".tl-caption").all_inner_texts():
        assert caption.startswith(f"{predicted} / {actual} / ")
    page.locator(".tl-caption").first.scroll_into_view_if_needed()
    screenshot(page, "confusion_cell")


def test_most_confused_row_selects_its_cell(page, open_page, wait_idle, truth):
    from analysis.confusion import most_confused
    from analysis.metrics import confusion

    ev, y_true, y_pred = truth
    top = most_confused(confusion(y_true, y_pred, len(ev.classes)), ev.classes, k=1).iloc[0]
    open_page(page, "confusion")
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    # The first data row sits one header row (about 35 px) below the top; its row-selection
    # checkbox is at the far left of the row.
    page.mouse.click(box["x"] + 14, box["y"] + 35 + 17)
    page.get_by_text(f"actual {top['actual']} → predicted {top['predicted']}").wait_for()
    wait_idle(page)
    assert len(_gallery_ids(page)) == min(int(top["count"]), 24)


def test_capture_strip_and_large_view(page, open_page, wait_idle, screenshot, truth):
    ev, *_ = truth
    open_page(page, "top_losses")
    first_id = _gallery_ids(page)[0]
    page.get_by_role("button", name="Capture").first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    wait_idle(page)
    seq_id = str(ev.meta["seq_id"].astype(str).to_numpy()[list(ev.image_ids).index(first_id)])
    frames = int((ev.meta["seq_id"].astype(str) == seq_id).sum())
    dialog.locator(".tl-strip-caption").nth(frames - 1).wait_for()
    assert dialog.locator(".tl-strip-caption").count() == frames
    assert seq_id in dialog.inner_text()
    assert dialog.locator("img").count() + dialog.get_by_text("image ").count() >= frames
    screenshot(page, "capture_strip")
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    page.get_by_role("button", name="Large").first.click()
    big = page.get_by_role("dialog")
    big.locator("img").first.wait_for()
    natural = big.locator("img").first.evaluate("img => img.naturalWidth")
    assert 256 < natural <= 1024, "the large view shows a bigger (but cached) picture"


def test_shared_url_reloads_the_same_view(page, browser, open_page, wait_idle):
    open_page(page, "confusion?split=test&dn=day")
    actual, predicted = _click_off_diagonal_cell(page)
    page.get_by_text(f"actual {actual} → predicted {predicted}").wait_for()
    wait_idle(page)
    url, ids = page.url, _gallery_ids(page)
    heading = page.locator("h3").filter(has_text="→").inner_text()
    assert {"split": ["test"], "dn": ["day"]}.items() <= _query(page).items()

    other = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        fresh = other.new_page()
        fresh.goto(url)
        fresh.locator("h3").filter(has_text="→").wait_for()
        fresh.locator(".tl-caption").nth(len(ids) - 1).wait_for()
        wait_idle(fresh)
        _no_exception(fresh)
        assert fresh.locator("h3").filter(has_text="→").inner_text() == heading
        assert _gallery_ids(fresh) == ids
        assert _query(fresh) == _query(page)
    finally:
        other.close()


def test_presenter_mode_hides_the_sidebar(page, open_page, screenshot):
    open_page(page, "?present=1")  # presenter mode opens on the Story
    _no_exception(page)
    assert not page.locator("[data-testid='stSidebar']").is_visible()
    assert "Story of run" in page.locator("h1").first.inner_text()
    open_page(page, "overview?present=1")
    _no_exception(page)
    assert not page.locator("[data-testid='stSidebar']").is_visible()
    assert page.locator("[data-testid='stMetricValue']").first.is_visible()
    screenshot(page, "overview_presenter")
    page.get_by_role("button", name="Leave presenter mode").click()
    page.locator("[data-testid='stSidebar']").wait_for()
    assert "present" not in _query(page)
