"""The guided story: on a report of the synthetic demo run, every headline states the numbers
the analysis functions return for the same inputs (formatted as the story formats them);
weak findings say so; absent sections are skipped with a reason; the intervals the story
computes from counts match published values and scipy."""
from __future__ import annotations

import copy
import doctest
import json

import numpy as np
import pytest
from scipy.stats import binomtest

import analysis.story
from analysis import metrics
from analysis.__main__ import main
from analysis.confusion import most_confused
from analysis.cooccurrence import rank_pairs
from analysis.coverage import VOLUNTEER_ACCURACY, class_thresholds
from analysis.evalset import build_evalset, targets
from analysis.sequences import frame_accuracy
from analysis.story import (NOT_DISTINGUISHABLE, STEPS, ReportFormatError, build_story,
                            difference_interval, fmt_ci, fmt_count, fmt_pct, fmt_score,
                            story_steps, wilson_interval)
from data.cct import load_dataset

from data.runs import load_run

RESAMPLES = 20
ORDER = [key for key, _, _ in STEPS]


@pytest.fixture(scope="module")
def demo_report(demo_small, synthetic_run, tmp_path_factory):
    """(report dict as `python -m analysis report` writes it, the EvalSet of the same inputs)."""
    out = tmp_path_factory.mktemp("story") / "report.json"
    rc = main(["report", "-q", "--dataset", *map(str, demo_small.json_paths), "--run",
               str(synthetic_run), "--resamples", str(RESAMPLES), "--json", str(out)])
    assert rc == 0
    ev = build_evalset(load_dataset(demo_small.json_paths), load_run(synthetic_run))
    return json.loads(out.read_text()), ev


def _steps(report) -> dict:
    return {s.key: s for s in story_steps(report)}


def test_steps_in_fixed_order_and_complete(demo_report):
    report, _ = demo_report
    story = build_story(report)
    keys = [s.key for s in story.steps]
    # The five core steps always, in order; the decision steps (unseen cameras, ecology) are
    # told when the report gives them something to say, else skipped with a reason.
    core = ["headline", "confusions", "cooccurrence", "inherited-labels", "automation"]
    assert keys[:5] == core
    told = keys[5:] + [s.key for s in story.skipped]
    assert sorted(told) == ["ecology", "unseen-cameras"]
    assert keys == sorted(keys, key=ORDER.index)
    assert all(s.reason for s in story.skipped)
    for step in story.steps:
        assert step.title and step.headline.endswith(".") and step.figure and step.numbers
        assert step.key in ORDER and step.figure in report


def test_headline_metrics_state_what_analysis_returns(demo_report):
    report, ev = demo_report
    expect = metrics.evaluate(ev, policy="set", level="image", n_resamples=RESAMPLES)
    step = _steps(report)["headline"]
    assert step.numbers["accuracy"] == pytest.approx(expect["accuracy"], abs=1e-12)
    assert step.numbers["macro_f1"] == pytest.approx(expect["macro_f1"], abs=1e-12)
    assert step.numbers["n"] == len(ev)
    assert step.numbers["macro_f1_ci"] == pytest.approx(list(expect["macro_f1_ci"]))
    for text in (fmt_pct(expect["accuracy"]), fmt_score(expect["macro_f1"]),
                 fmt_ci(expect["macro_f1_ci"]), f"of {fmt_count(len(ev))} evaluated images"):
        assert text in step.headline, (text, step.headline)
    assert step.figure == "image_level"


def test_confusion_headline(demo_report):
    report, ev = demo_report
    y_true, y_pred = targets(ev, policy="set")
    cm = metrics.confusion(y_true, y_pred, ev.n_classes)
    top = most_confused(cm, ev.classes, k=1).iloc[0]
    step = _steps(report)["confusions"]
    n_actual = int(cm[ev.classes.index(top["actual"])].sum())
    assert (step.numbers["actual"], step.numbers["predicted"]) == (top["actual"],
                                                                   top["predicted"])
    assert step.numbers["count"] == top["count"] and step.numbers["n_actual"] == n_actual
    assert (f"{top['actual']} taken for {top['predicted']} on {fmt_count(top['count'])} of "
            f"{fmt_count(n_actual)} {top['actual']} images ({fmt_pct(top['rate'])})"
            in step.headline)
    errors = int(cm.sum() - np.trace(cm))
    assert f"{fmt_pct(top['count'] / errors)} of all {fmt_count(errors)} wrong" in step.detail


def test_cooccurrence_headline(demo_report):
    report, ev = demo_report
    top = rank_pairs(ev, policy="set", k=1).iloc[0]
    step = _steps(report)["cooccurrence"]
    assert {top["a"], top["b"]} == {"zebra", "wildebeest"}      # the demo's mixed herds
    assert (step.numbers["a"], step.numbers["b"]) == (top["a"], top["b"])
    assert step.numbers["a_error_with_b"] == pytest.approx(top["a_error_with_b"])
    if top["n_a_without_b"]:
        for v in (top["a_error_with_b"], top["a_error_without_b"]):
            assert fmt_pct(v) in step.headline
        assert f"({fmt_count(top['n_a_with_b'])} images)" in step.headline
    if top["a_to_b"]:
        assert f"Of {fmt_count(top['a_to_b'])} {top['a']} image" in step.headline
        assert (f"taken for {top['b']}, {fmt_count(top['a_to_b_with_b'])} "
                f"({fmt_pct(top['a_to_b_explained'])})" in step.headline)
    assert step.weak == (NOT_DISTINGUISHABLE in step.headline
                         or "nothing to compare" in step.headline)


def test_inherited_labels_headline(demo_report):
    report, ev = demo_report
    fa = frame_accuracy(ev, policy="set")
    first, later = fa[fa["frame_num"] == 1], fa[fa["frame_num"] > 1]
    acc1 = first["correct"].sum() / first["n"].sum()
    acc2 = later["correct"].sum() / later["n"].sum()
    step = _steps(report)["inherited-labels"]
    assert step.numbers["accuracy_first"] == pytest.approx(acc1)
    assert step.numbers["accuracy_later"] == pytest.approx(acc2)
    assert f"{fmt_pct(acc1)} on first frames" in step.headline
    assert f"{fmt_pct(acc2)} on later frames" in step.headline
    k = sum(s["kind"] == "inherited_label" for s in report["sequence_suspects"])
    assert k > 0 and step.numbers["inherited_suspects"] == k
    assert f"{fmt_count(k)} frame" in step.headline and "inherited label" in step.headline


def test_automation_headline_at_volunteer_accuracy(demo_report):
    report, ev = demo_report
    attrs = class_thresholds(ev, target_precision=VOLUNTEER_ACCURACY, policy="set").attrs
    step = _steps(report)["automation"]
    assert step.numbers["target_precision"] == pytest.approx(VOLUNTEER_ACCURACY)
    assert (step.numbers["n_accepted"], step.numbers["n_left"]) == (attrs["n_accepted"],
                                                                    attrs["n_left"])
    assert (f"label {fmt_count(attrs['n_accepted'])} of {fmt_count(attrs['n'])} images "
            f"({fmt_pct(attrs['n_accepted'] / attrs['n'])}) alone and leave "
            f"{fmt_count(attrs['n_left'])} for people") in step.headline
    assert "volunteers' accuracy (96.6 % precision per class)" in step.headline


def test_weak_headline_metrics_say_so():
    per_class = [{"class": "empty", "support": 90}, {"class": "zebra", "support": 10}]
    base = {"image_level": {"n": 100, "accuracy": 0.92, "macro_f1": 0.7, "per_class": per_class}}
    # Always answering "empty": F1 = 2*90/190, macro over the two present classes.
    baseline = 2 * 90 / 190 / 2
    strong = copy.deepcopy(base)
    strong["image_level"]["macro_f1_ci"] = [baseline + 0.01, 0.8]
    weak = copy.deepcopy(base)
    weak["image_level"]["macro_f1_ci"] = [baseline - 0.01, 0.8]
    (s,) = story_steps(strong)
    (w,) = story_steps(weak)
    assert not s.weak and "not distinguishable" not in s.headline
    assert w.weak and w.numbers["baseline_macro_f1"] == pytest.approx(baseline)
    assert f"not distinguishable from always answering empty (macro-F1 {baseline:.2f})" \
        in w.headline


def _pair(e_with, n_with, e_without, n_without, **extra):
    return {"cooccurrence": {"pairs": [{
        "a": "zebra", "b": "wildebeest", "images_together": n_with, "a_images": n_with
        + n_without, "n_a_with_b": n_with, "n_a_without_b": n_without,
        "a_error_with_b": e_with, "a_error_without_b": e_without,
        "a_to_b": 0, "a_to_b_with_b": 0, "a_to_b_explained": None, **extra}]}}


@pytest.mark.parametrize("pair, weak", [
    (_pair(0.30, 100, 0.05, 400), False),              # 30 % against 5 %: clear
    (_pair(1 / 3, 3, 0.25, 4), True),                  # 1 of 3 against 1 of 4
    (_pair(0.5, 4, None, 0), True),                    # nothing to compare
])
def test_weak_cooccurrence_says_so(pair, weak):
    (step,) = story_steps(pair)
    assert step.weak is weak
    assert (NOT_DISTINGUISHABLE in step.headline or "nothing to compare" in step.headline) \
        is weak
    assert "The model never takes zebra for wildebeest" in step.headline


def test_explained_share_is_stated():
    (step,) = story_steps(_pair(0.3, 100, 0.05, 400, a_to_b=20, a_to_b_with_b=15,
                                a_to_b_explained=0.75))
    assert ("Of 20 zebra images taken for wildebeest, 15 (75.0 %) have wildebeest annotated "
            "too") in step.headline


def test_names_show_vernacular():
    (step,) = story_steps(_pair(0.3, 100, 0.05, 400),
                          names={"zebra": "plains zebra", "wildebeest": "wildebeest"})
    assert step.headline.startswith("Plains zebra images with wildebeest")


GEN = {"seen": {"n": 900, "accuracy": 0.9, "macro_f1": 0.80, "macro_f1_ci": [0.75, 0.85]},
       "per_site": [{"site": "B03", "seen": False, "n": 40, "accuracy": 0.5, "macro_f1": 0.31,
                     "macro_f1_ci": [0.2, 0.4]},
                    {"site": "C05", "seen": False, "n": 60, "accuracy": 0.8, "macro_f1": 0.74,
                     "macro_f1_ci": [0.6, 0.8]}]}


@pytest.mark.parametrize("unseen_ci, weak", [([0.40, 0.70], False), ([0.50, 0.76], True)])
def test_generalisation_step(unseen_ci, weak):
    gen = {**GEN, "unseen": {"n": 100, "accuracy": 0.7, "macro_f1": 0.6,
                             "macro_f1_ci": unseen_ci}}
    step = {s.key: s for s in story_steps({"generalisation": gen})}["unseen-cameras"]
    assert step.weak is weak
    assert (f"macro-F1 is 0.60 ({fmt_ci(unseen_ci)}), against 0.80 (95 % CI 0.75–0.85)"
            in step.headline)
    assert ("not distinguishable from zero" in step.headline) is weak
    assert step.figure == "generalisation" and "B03 0.31" in step.detail


def test_generalisation_all_unseen_gives_site_spread():
    gen = {"seen": {"n": 0, "accuracy": None, "macro_f1": None, "macro_f1_ci": [None, None]},
           "unseen": {"n": 100, "accuracy": 0.7, "macro_f1": 0.6, "macro_f1_ci": [0.5, 0.7]},
           "per_site": GEN["per_site"]}
    (step,) = story_steps({"generalisation": gen})
    assert step.headline.startswith("Every evaluated camera is new to the model")
    assert "per site from 0.31 to 0.74 over 2 sites" in step.headline


@pytest.mark.parametrize("overlap_ci, weak", [([0.80, 0.95], False), ([0.90, 1.0], True)])
def test_ecology_step(overlap_ci, weak):
    eco = {"per_species": [
        {"species": "zebra", "captures_labels": 200, "captures_model": 230,
         "occupancy_labels": 0.5, "occupancy_model": 0.55, "overlap": 0.9,
         "overlap_ci": overlap_ci},
        {"species": "wildebeest", "captures_labels": 100, "captures_model": 102,
         "occupancy_labels": 0.4, "occupancy_model": 0.4, "overlap": 0.97,
         "overlap_ci": [0.9, 0.99]},
        {"species": "eland", "captures_labels": 0, "captures_model": 1,
         "occupancy_labels": 0.0, "occupancy_model": 0.1, "overlap": None,
         "overlap_ci": [None, None]}]}
    before = copy.deepcopy(eco)
    (step,) = story_steps({"ecology": eco})
    assert eco == before                                # the report is not modified
    assert step.numbers["n_flagged"] == 1 and step.numbers["n_species"] == 2
    assert step.numbers["capture_bias"] == pytest.approx(0.15)
    assert "1 of 2 species change by more than 5.0 %" in step.headline
    assert "zebra: 230 captures instead of 200 (+15.0 %)" in step.headline
    assert f"activity overlap is 0.90 ({fmt_ci(overlap_ci)})" in step.headline
    assert step.weak is weak and ("not distinguishable" in step.headline) is weak


def test_missing_sections_are_skipped_with_reasons(demo_report):
    report, _ = demo_report
    cut = {k: v for k, v in report.items()
           if k not in ("most_confused", "frame_accuracy")}
    story = build_story(cut)
    assert [s.key for s in story.steps][:3] == ["headline", "cooccurrence", "automation"]
    reasons = {s.key: s.reason for s in story.skipped}
    assert {"confusions", "inherited-labels"} <= set(reasons)
    assert "'most_confused'" in reasons["confusions"]
    assert "'frame_accuracy'" in reasons["inherited-labels"]
    # Present but with nothing to state: single-frame captures only.
    single = {**report, "frame_accuracy": [r for r in report["frame_accuracy"]
                                           if r["frame_num"] == 1]}
    skipped = {s.key: s.reason for s in build_story(single).skipped}
    assert "more than one frame" in skipped["inherited-labels"]
    assert build_story({}).steps == []


def test_story_does_not_modify_the_report(demo_report):
    report, _ = demo_report
    before = copy.deepcopy(report)
    build_story(report)
    assert report == before


@pytest.mark.parametrize("report, match", [
    ({"image_level": {"n": 10, "macro_f1": 0.5}}, "image_level: missing field 'accuracy'"),
    ({"cooccurrence": {"classes": []}}, "cooccurrence: missing field 'pairs'"),
    ([1, 2], "expected a JSON object"),
])
def test_malformed_sections_name_the_field(report, match):
    with pytest.raises(ReportFormatError, match=match):
        build_story(report)


def test_intervals_from_counts():
    # Newcombe (1998), Statistics in Medicine 17:873, Table II, method 10: 56/70 - 48/80.
    lo, hi = difference_interval(56, 70, 48, 80)
    assert (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)
    for k, n in ((0, 10), (3, 7), (81, 100), (20, 20)):
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_doctests():
    result = doctest.testmod(analysis.story)
    assert result.attempted > 0 and result.failed == 0
