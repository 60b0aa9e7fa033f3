"""Real browser: drag a box on the embedding map; the gallery shows exactly the images inside."""
from __future__ import annotations

import re

import pytest

from analysis.embedding import select_box
from analysis.evalset import build_evalset
from data.cct import load_dataset
from data.runs import load_run

pytestmark = pytest.mark.browser

TO_DATA = """([cx, cy]) => {
    const gd = document.querySelector('.js-plotly-plot');
    const r = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
    return [xa.p2d(cx - r.left - xa._offset), ya.p2d(cy - r.top - ya._offset)];
}"""


@pytest.fixture(scope="module")
def map_xy(demo_small, browser_runs):
    """The map the page draws, computed first on one thread (t-SNE on a loaded 2-core machine)
    and cached beside the run, where the server's page finds it."""
    from threadpoolctl import threadpool_limits

    from analysis.embedding_map import map_points

    ev = build_evalset(load_dataset(demo_small.json_paths), load_run(browser_runs / "synthetic"))
    with threadpool_limits(1):
        return map_points(ev, browser_runs / "synthetic")


def test_box_drag_opens_the_gallery_of_exactly_those_images(page, open_page, wait_idle,
                                                            screenshot, map_xy):
    open_page(page, "embedding_map")
    plot = page.locator(".js-plotly-plot").first
    plot.wait_for()
    plot.hover()
    page.locator(".modebar-btn[data-title='Box Select']").first.click()
    area = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    start = (area["x"] + area["width"] * 0.3, area["y"] + area["height"] * 0.3)
    stop = (area["x"] + area["width"] * 0.7, area["y"] + area["height"] * 0.7)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*stop, steps=12)
    page.mouse.up()
    wait_idle(page)
    heading = page.get_by_text(re.compile(r"Selection: [\d,]+ image")).first
    heading.wait_for()
    shown = int(re.search(r"Selection: ([\d,]+)", heading.inner_text()).group(1).replace(",", ""))
    (x0, y0), (x1, y1) = (page.evaluate(TO_DATA, list(p)) for p in (start, stop))
    expected = int(select_box(map_xy, x_range=(x0, x1), y_range=(y0, y1)).sum())
    # Pixel -> data rounding can move a point sitting exactly on the outline: allow one.
    assert shown > 0 and abs(shown - expected) <= 1, (shown, expected)
    # The selection's cards (the lists below caption theirs "similarity" / "isolation").
    cards = page.locator(".tl-caption").filter(has_text=re.compile(r"^\s*label "))
    cards.first.wait_for()
    assert cards.count() == min(shown, 24)  # the gallery's first page
    assert page.get_by_text(f"{shown:,} image(s)").count() >= 1
    screenshot(page, "embedding_map_selection")
