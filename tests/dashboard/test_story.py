"""Presenter kit on the pages: the Story's headlines against the analysis functions, its URL
and buttons, presenter mode's default page, species cards, slide-sized figure files."""
from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest

from analysis.confusion import most_confused
from analysis.evalset import build_evalset, targets
from analysis.metrics import confusion, evaluate
from analysis.story import fmt_ci, fmt_count, fmt_pct, fmt_score
from data.cct import load_dataset
from data.runs import load_run


def _headline(at) -> str:
    hits = [str(h.proto.body) for h in at.html if "tl-story-headline" in str(h.proto.body)]
    assert len(hits) == 1, "one headline per step"
    import html

    return html.unescape(re.sub(r"<[^>]+>", "", hits[0]))


@pytest.fixture(scope="module")
def ev(demo_small, synthetic_run):
    return build_evalset(load_dataset([str(p) for p in demo_small.json_paths]),
                         load_run(synthetic_run))


def test_headline_step_states_the_metrics(app, ev, no_exception):
    at = app("story")
    no_exception(at)
    res = evaluate(ev, policy="set", level="image", n_resamples=200)
    text = _headline(at)
    assert f"right on {fmt_pct(res['accuracy'])} of {fmt_count(res['n'])} evaluated images" \
        in text
    assert f"macro-F1 {fmt_score(res['macro_f1'])} ({fmt_ci(res['macro_f1_ci'])})" in text
    assert at.query_params["story_step"] == "headline"


def test_confusion_step_by_url_and_buttons(app, ev, no_exception):
    at = app("story", story_step="confusions")
    no_exception(at)
    y_true, y_pred = targets(ev, policy="set")
    cm = confusion(y_true, y_pred, len(ev.classes))
    top = most_confused(cm, ev.classes, k=1).iloc[0]
    n_actual = int(cm[ev.classes.index(top["actual"])].sum())
    assert _headline(at).startswith(
        f"The most frequent confusion: {top['actual']} taken for {top['predicted']} on "
        f"{fmt_count(int(top['count']))} of {fmt_count(n_actual)} {top['actual']} images "
        f"({fmt_pct(int(top['count']) / n_actual)}).")
    at.button(key="story_next").click().run()
    no_exception(at)
    assert at.query_params["story_step"] == "cooccurrence"      # the next step of the order
    assert not _headline(at).startswith("The most frequent confusion")
    at.button(key="story_prev").click().run()
    assert at.query_params["story_step"] == "confusions"


def test_every_step_has_a_figure_with_downloads_or_none(app, no_exception):
    at = app("story", story_step="inherited-labels")
    no_exception(at)
    assert "Accuracy" in _headline(at) and "first frames" in _headline(at)
    labels = {b.label for b in at.get("download_button")}
    assert {"PNG", "SVG", "Download this view"} <= labels


def test_presenter_mode_opens_on_the_story(app, no_exception):
    at = app(present="1")
    no_exception(at)
    assert at.title[0].value.startswith("Story of run")


def test_per_class_shows_the_species_card(app, no_exception):
    from data.taxonomy import load_taxonomy

    tax = load_taxonomy()
    at = app("per_class", pc_class="zebra")
    no_exception(at)
    shown = "\n".join(str(h.proto.body) for h in at.html) + "\n".join(
        str(t.value) for t in at.text)
    facts = tax.species_facts("zebra")
    assert tax.row("zebra").scientific_name in shown          # Equus quagga
    assert f"({facts.iucn_category})" in shown and str(facts.iucn_year) in shown
    assert "On this run the model takes Plains zebra for" in shown or "No confusions" in shown
    # "Download this view": the page's recorded blocks as one offline HTML file.
    from analysis.report.html import render_view

    page = render_view("Per-class", at.session_state["_tl_view_blocks"])
    assert "Equus quagga" in page and "plotly" in page and "<table" in page


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Chromium")
def test_figure_files_are_slide_sized(ev):
    """The bytes the PNG/SVG buttons serve, for the Per-class page's F1 figure."""
    import pandas as pd

    from analysis.plots import SLIDE_HEIGHT, SLIDE_WIDTH, f1_bar, figure_bytes, slide_figure

    res = evaluate(ev, policy="set", level="image", n_resamples=0)
    fig = slide_figure(f1_bar(pd.DataFrame(res["per_class"]), title="F1"), run="synthetic")
    png = figure_bytes(fig, format="png")
    assert _png_size(png) == (SLIDE_WIDTH, SLIDE_HEIGHT) == (1920, 1080)
    svg = figure_bytes(fig, format="svg").decode()
    head = svg[:svg.index(">")]
    assert 'width="1920"' in head and 'height="1080"' in head
    assert "run synthetic" in svg and ">F1<" in svg                 # run named, axis title


def test_view_download_holds_the_page_tables_and_gallery_images(app, no_exception):
    """Top losses: its table-free gallery and Overview's tables reach the offline HTML file."""
    from analysis.report.html import render_view

    at = app("top_losses")
    no_exception(at)
    blocks = at.session_state["_tl_view_blocks"]
    images = [v for k, v in blocks if k == "image"]
    assert images, "the gallery's cards are recorded"
    page = render_view("Top losses", blocks)
    assert page.count("data:image/jpeg;base64,") >= 1
    assert all(str(caption).split(" · ")[-1] in page for _, caption in images[:3])
    at = app("overview")
    no_exception(at)
    page = render_view("Overview", at.session_state["_tl_view_blocks"])
    assert "<table" in page
