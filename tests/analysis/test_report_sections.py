"""analysis.report's structure: one list of sections that the JSON builder and the HTML
renderer both read, the HTML drawn from the JSON alone, the automation block from
analysis.coverage."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest

from analysis.coverage import TARGET_PRECISIONS, automation_summary, class_thresholds
from analysis.evalset import evalset_from_arrays
from data.runs import load_run
from analysis.report import (BUILDERS, RENDERERS, SECTIONS, build_report, plain, render_html,
                             section_keys)
from data.cct import load_dataset
from tests.synth import make_arrays

ROOT = Path(__file__).resolve().parents[2]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_every_section_key_has_a_builder_and_every_section_a_renderer():
    keys = section_keys()
    assert len(keys) == len(set(keys)), "a JSON key is written by two sections"
    assert set(keys) == set(BUILDERS)
    names = [s.name for s in SECTIONS]
    assert len(names) == len(set(names)) and set(names) == set(RENDERERS)


def test_json_keys_come_in_the_documented_order():
    text = (ROOT / "docs" / "formats.md").read_text(encoding="utf-8")
    table = text[text.index("### JSON keys"):]
    documented = re.findall(r"^\| `(\w+)` \|", table[:table.index("\n\n", 20)], re.M)
    assert documented == list(BUILDERS)


def test_html_module_makes_no_analysis_call():
    """The renderer imports figure builders and formats, never a computing module."""
    tree = ast.parse((ROOT / "analysis" / "report" / "html.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported |= {node.module} if node.module != "analysis" else {
                f"analysis.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
    project = {m for m in imported if m.split(".")[0] in ("analysis", "data")}
    # analysis.story and analysis.report.figures read the JSON report only (no EvalSet).
    assert project == {"analysis.plots", "analysis.format", "analysis.report.images",
                       "analysis.report.sections", "analysis.report.figures", "analysis.story",
                       "data.files"}


@pytest.fixture(scope="module")
def demo_report(demo_small, synthetic_run):
    dataset = load_dataset([str(p) for p in demo_small.json_paths])
    run = load_run(synthetic_run)
    return build_report(dataset, run, compare_run=run, split="test", n_resamples=0, k=10)


def test_report_has_exactly_the_sections_keys(demo_report):
    assert list(demo_report) == [k for k in BUILDERS if k in set(section_keys())]


def test_html_from_json_read_back_equals_html_from_dict(demo_report, demo_small):
    root = demo_small.images_root
    direct = render_html(demo_report, images_root=root, max_thumbnails=3)
    read_back = json.loads(json.dumps(demo_report, allow_nan=False))
    again = render_html(read_back, images_root=root, max_thumbnails=3)
    assert UUID.sub("id", direct) == UUID.sub("id", again)
    # Every section is drawn, in the list's order (comparison included: --compare given).
    titles = re.findall(r"<section><h2>([^<]*)</h2>", direct)
    run_id = demo_report["run"]["run_id"]
    assert titles == [s.title.format_map(demo_report) for s in SECTIONS if s.title is not None]
    assert titles[-1] == f"Comparison with {run_id}"
    without = {k: v for k, v in demo_report.items() if k != "comparison"}
    assert "Comparison with" not in render_html(without, max_thumbnails=0)


def test_top_loss_gallery_uses_the_fastai_caption(demo_report):
    from analysis.format import fastai_caption

    page = render_html(demo_report, max_thumbnails=2)
    r = demo_report["top_losses"][0]
    caption = fastai_caption(r["predicted"], r["actual"], r["loss"], r["p_predicted"],
                             r["p_actual"])
    assert f"<div>{caption}</div>" in page


def test_automation_summary_is_the_reports_automation_block():
    probs, y, _ = make_arrays(3000, 5, seed=2, accuracy=0.8)
    ev = evalset_from_arrays(probs, y)
    got = automation_summary(ev)
    assert [a["target_precision"] for a in got] == list(TARGET_PRECISIONS) == [0.95, 0.966]
    for block, target in zip(got, TARGET_PRECISIONS):
        table = class_thresholds(ev, target_precision=target)
        assert {k: block[k] for k in table.attrs} == table.attrs
        kept = table[table["n_predicted"] > 0]
        assert [r["class"] for r in block["per_class"]] == kept["class"].tolist()
        assert np.array_equal([r["n_accepted"] for r in block["per_class"]],
                              kept["n_accepted"].to_numpy())
        assert sum(r["n_accepted"] for r in block["per_class"]) == block["n_accepted"]
    json.dumps(plain(got), allow_nan=False)  # JSON-ready after plain()


def test_html_report_opens_with_the_story(demo_report):
    import html as html_mod

    from analysis.report import render_html
    from analysis.story import build_story

    page = render_html(demo_report)
    steps = build_story(demo_report).steps
    assert page.index("The story of this run") < page.index("Per-class metrics")
    at = [page.index(html_mod.escape(s.headline)) for s in steps]
    assert at == sorted(at) and len(steps) >= 4          # the fixed order, top of the page
    assert all(f'id="story-{s.key}"' in page for s in steps)
