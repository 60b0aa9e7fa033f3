"""Overview page: headline metrics at both levels, most-confused pairs, findings, presenter mode."""
from __future__ import annotations

import pytest

from analysis.confusion import most_confused
from analysis.metrics import evaluate
from analysis.slices import slice_table
from dashboard import loaders


def _metrics(at) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


def test_headline_metrics_at_image_and_capture_level(app, no_exception, texts, view_of):
    at = app()
    no_exception(at)
    ev = loaders.evalset(view_of())
    shown = _metrics(at)
    assert [label for label, _ in shown] == ["Accuracy", "Macro F1", "Balanced accuracy",
                                             "Images"] + ["Accuracy", "Macro F1",
                                                          "Balanced accuracy", "Captures"]
    for level, block in (("image", shown[:4]), ("sequence", shown[4:])):
        want = evaluate(ev, level=level)
        assert block[0][1] == f"{want['accuracy']:.3f}"
        assert block[1][1] == f"{want['macro_f1']:.3f}"
        assert block[3][1] == f"{want['n']:,}"
    assert at.metric[1].delta.startswith("95% CI") and at.metric[5].delta.startswith("95% CI")


def test_five_most_confused_pairs(app, texts, view_of):
    at = app()
    view = view_of()
    top = most_confused(loaders.confusion(view), loaders.evalset(view).classes, k=5)
    shown = texts(at)
    for r in top.itertuples(index=False):
        assert f"**{r.actual}** taken for **{r.predicted}** — {r.count:,} images" in shown


def test_findings_cards_are_there(app, texts):
    shown = texts(app())
    assert "Co-occurrence" in shown and "Sequence labels" in shown


@pytest.mark.parametrize("query, changed", [
    ({"split": "test"}, 3), ({"policy": "primary", "frame": ["1"]}, 3)])
def test_sidebar_changes_the_numbers(app, no_exception, query, changed):
    base = _metrics(app())
    at = app(**query)
    no_exception(at)
    assert _metrics(at)[changed] != base[changed]


def test_presenter_mode_shows_the_headline_only(app, no_exception):
    normal, present = app(), app("overview", present="1")  # presenter default: Story
    no_exception(present)
    assert _metrics(present) == _metrics(normal)
    assert normal.main.get("expander") and not present.main.get("expander")
    assert len(present.sidebar.get("selectbox")) == 2  # rendered (state kept) but hidden by CSS


@pytest.mark.parametrize("by, column", [("site", "location"), ("season", "season"),
                                        ("day / night", "day_night")])
def test_worst_slices_table(app, no_exception, view_of, by, column):
    at = app(ov_slice=by)  # the page's own URL param selects the dimension
    no_exception(at)
    want = slice_table(loaders.evalset(view_of()), by=column).head(5)
    (shown,) = [d.value for d in at.dataframe if "macro_f1" in d.value.columns]
    assert shown[column].astype(str).tolist() == want[column].astype(str).tolist()
    assert shown["n"].tolist() == want["n"].tolist()
    assert shown["macro_f1"].to_numpy() == pytest.approx(want["macro_f1"].to_numpy())
    f1 = shown["macro_f1"].tolist()
    assert f1 == sorted(f1)  # worst first


@pytest.mark.parametrize("by, column, field, url", [("site", "location", "site", "site"),
                                                     ("day / night", "day_night", "day_night",
                                                      "dn")])
def test_choosing_a_slice_sets_the_sidebar(app, no_exception, view_of, by, column, field, url):
    at = app(ov_slice=by)
    best = str(slice_table(loaders.evalset(view_of()), by=column)[column].iloc[-1])
    at.selectbox(key=f"ov_slice_pick:{column}").set_value(best)
    at.button(key="ov_slice_apply").click().run()
    no_exception(at)
    narrowed = view_of(**{field: (best,) if field == "site" else best})
    assert _metrics(at)[3] == ("Images", f"{len(loaders.evalset(narrowed)):,}")
    assert at.query_params[url] in (best, [best])  # the sidebar took it, the URL follows
