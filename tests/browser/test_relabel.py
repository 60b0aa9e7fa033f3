"""Real browser: the relabel queue driven by the keyboard; undo; a reload keeps the decisions."""
from __future__ import annotations

import csv
import io
import json
import urllib.parse
import zipfile

import pytest

from data.cct import load_dataset

pytestmark = pytest.mark.browser


def _head(pg) -> str:
    """The image id of the candidate at the head of the queue."""
    return pg.locator("[data-testid='stMainBlockContainer'] h3").first.inner_text().split(" · ")[0]


def _alerts(pg) -> str:
    return "\n".join(pg.locator("[data-testid='stAlert']").all_inner_texts())


def _no_exception(pg) -> None:
    errors = pg.locator("[data-testid='stException']")
    assert errors.count() == 0, errors.first.inner_text()


def _key(pg, wait_idle, key: str) -> None:
    pg.locator("h1").first.click()  # focus the page, not a widget
    pg.keyboard.press(key)
    wait_idle(pg)


def test_queue_by_keyboard_undo_and_reload(page, open_page, wait_idle, screenshot, demo_small,
                                           tmp_path):
    open_page(page, "relabel")
    _no_exception(page)
    name = page.get_by_role("textbox", name="Your name")
    name.fill("Kim")
    name.press("Enter")
    # The first queue of a fresh server computes the label issues (cleanlab): allow for a
    # slow, shared machine.
    page.locator("[data-testid='stMainBlockContainer'] h3").first.wait_for(timeout=240_000)
    wait_idle(page, timeout=240_000)
    _no_exception(page)
    assert urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)["relabel_curator"] == \
        ["Kim"]
    first = _head(page)
    screenshot(page, "relabel-queue")

    _key(page, wait_idle, "e")  # E = empty
    assert f"empty → frame `{first}`".replace("`", "") in _alerts(page).replace("`", "")
    assert _head(page) != first

    _key(page, wait_idle, "z")  # Z = undo
    assert "Undid decision" in _alerts(page)
    assert _head(page) == first

    _key(page, wait_idle, "a")  # A = accept the model's suggestion
    second = _head(page)
    assert second != first
    progress = page.locator("[data-testid='stProgress']").inner_text()
    assert progress.startswith("1 of "), progress

    page.reload()
    wait_idle(page)
    _no_exception(page)
    assert _head(page) == second, "the decided image stays out of the queue after a reload"
    assert page.locator("[data-testid='stProgress']").inner_text() == progress
    page.get_by_text("Your latest decisions (3)").scroll_into_view_if_needed()
    screenshot(page, "relabel-after-reload")

    page.get_by_text("Export the corrected dataset").click()
    page.locator("[data-testid='stExpander']").last.get_by_text("Decisions log",
                                                                exact=True).click()
    wait_idle(page)
    with page.expect_download() as info:
        page.get_by_role("button", name="Download decisions export").click()
    rows = list(csv.DictReader(io.StringIO(info.value.path().read_text())))
    assert [(r["curator"], r["item_id"], r["action"]) for r in rows] == [
        ("Kim", first, "empty"), ("Kim", first, "undo"), ("Kim", first, "accept")]
    # the labelled image table: the accepted image's rows are curated by Kim
    page.locator("[data-testid='stExpander']").last.get_by_text("Labelled CSV",
                                                                exact=True).click()
    wait_idle(page)
    with page.expect_download() as info:
        page.get_by_role("button", name="Download csv export").click()
    assert info.value.suggested_filename == "labels.csv"
    rows = list(csv.DictReader(io.StringIO(info.value.path().read_text())))
    mine = [r for r in rows if r["image_id"] == first]
    assert mine and {(r["label_source"], r["curator"]) for r in mine} == {("curated", "Kim")}
    assert len(rows) >= len(load_dataset(demo_small.json_paths).images)

    # Camtrap DP: a bad sites file is refused on the page, a good one gives the full package
    export = page.locator("[data-testid='stExpander']").last
    export.get_by_text("Camtrap DP 1.0.2", exact=True).click()
    wait_idle(page)
    export.get_by_text("predictions as machine observations").click()
    wait_idle(page)
    upload = export.locator("[data-testid='stFileUploaderDropzoneInput']")
    sites = sorted(load_dataset(demo_small.json_paths).images["location"].dropna().unique())
    bad = tmp_path / "my-sites.csv"
    bad.write_text("location,latitude,longitude\n" + f"{sites[0]},-95,34.8\n")
    upload.set_input_files(str(bad))
    page.get_by_text("Camera sites not used").wait_for()
    assert "my-sites.csv: row 2, field 'latitude': '-95'" in _alerts(page)
    _no_exception(page)
    good = tmp_path / "sites.csv"
    good.write_text("location,latitude,longitude\n"
                    + "".join(f"{s},-2.{k:02d},34.{k:02d}\n" for k, s in enumerate(sites)))
    upload.set_input_files(str(good))
    wait_idle(page)
    assert "Camera sites not used" not in _alerts(page)
    with page.expect_download() as info:
        page.get_by_role("button", name="Download camtrapdp export").click()
    with zipfile.ZipFile(info.value.path()) as zf:
        assert sorted(zf.namelist()) == ["datapackage.json", "deployments.csv", "media.csv",
                                         "observations.csv"]
        media = list(csv.DictReader(io.StringIO(zf.read("media.csv").decode())))
        obs = list(csv.DictReader(io.StringIO(zf.read("observations.csv").decode())))
        package = json.loads(zf.read("datapackage.json"))
    assert len(media) == len(load_dataset(demo_small.json_paths).images)
    assert package["profile"].endswith("/1.0.2/camtrap-dp-profile.json")
    assert {r["classificationMethod"] for r in obs} == {"human", "machine"}
