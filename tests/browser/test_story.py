"""Real browser: the Story page steps with the keyboard; the URL and the headline follow."""
from __future__ import annotations

import urllib.parse

import pytest

pytestmark = pytest.mark.browser


def _step(pg) -> str:
    return urllib.parse.parse_qs(urllib.parse.urlparse(pg.url).query).get("story_step", [""])[0]


def _headline(pg) -> str:
    return pg.locator(".tl-story-headline").first.inner_text()


def test_arrow_keys_step_through_the_story(page, open_page, wait_idle, screenshot):
    open_page(page, "story?present=1")
    assert page.locator("[data-testid='stException']").count() == 0
    first, steps = _headline(page), [_step(page)]
    assert steps == ["headline"] and first.startswith("The model is right on")
    screenshot(page, "story_headline")
    page.locator("h1").first.click()   # focus the page, not a widget
    for _ in range(2):
        page.keyboard.press("ArrowRight")
        wait_idle(page)
        steps.append(_step(page))
    assert steps[1:] == ["confusions", "cooccurrence"]
    assert _headline(page) != first
    page.keyboard.press("ArrowLeft")
    wait_idle(page)
    assert _step(page) == "confusions"
    assert _headline(page).startswith("The most frequent confusion")
