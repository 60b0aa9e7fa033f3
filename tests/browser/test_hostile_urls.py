"""Real browser, issue 17: hostile URL params stay text on every page (no live link, no
external image, no request leaving the machine)."""
from __future__ import annotations

import urllib.parse

import pytest

pytestmark = pytest.mark.browser

PHISH = "[Session expired - log in again](https://evil.example/phish)"
IMG = "![x](https://evil.example/i.png) <img src=https://evil.example/y.png>"
WALK = [
    ("relabel", {"relabel_curator": PHISH}),
    ("per_class", {"pc_class": PHISH}),
    ("confusion", {"cm_cell": f"{PHISH}|{IMG}"}),
    ("overview", {"split": IMG, "policy": PHISH, "location": PHISH}),
    ("sequences", {"seq_kind": IMG}),
    ("compare", {"compare": PHISH}),
    ("top_losses", {"tl_actual": IMG, "tl_pred": PHISH}),
    ("cooccurrence", {"cooc_pair": PHISH}),
    ("calibration", {"cal_target": IMG}),
    ("try_model", {"try_source": PHISH, "try_image": IMG}),
]


def test_hostile_urls_stay_text(page, open_page, server):
    outside: list[str] = []
    # (Streamlit itself fetches Material icon SVGs from fonts.gstatic.com: not ours to judge here)
    page.on("request", lambda r: outside.append(r.url) if "evil" in r.url
            and not r.url.startswith(server) else None)
    for stem, params in WALK:
        open_page(page, f"{stem}?{urllib.parse.urlencode(params)}")
        where = f"{stem}?{params}"
        assert page.locator("[data-testid='stException']").count() == 0, where
        # (the app's own links keep the query string: only where a link leads counts)
        foreign = page.evaluate("() => Array.from(document.querySelectorAll('a[href]'))"
                                ".map(a => a.href).filter(h => new URL(h).origin !== "
                                "location.origin || new URL(h).hostname.includes('evil'))")
        assert foreign == [], (where, foreign)
        assert page.locator("img[src*='evil.example']").count() == 0, where
        external = page.evaluate("() => Array.from(document.images).map(i => i.src)"
                                 ".filter(s => s && !s.startsWith(location.origin)"
                                 " && !s.startsWith('data:') && !s.startsWith('blob:'))")
        assert external == [], (where, external)
        if stem == "relabel":  # the name is kept, shown as its own characters
            # the progress line paints after the queue's first cards: wait for it
            page.wait_for_function("() => document.querySelector("
                                   "\"[data-testid='stMainBlockContainer']\")"
                                   ".innerText.includes('curating as')")
            text = page.locator("[data-testid='stMainBlockContainer']").inner_text()
            text = text.replace("\u2060", "")  # the invisible joiner that breaks autolinks
            assert f"curating as {PHISH}" in text
    assert outside == []
