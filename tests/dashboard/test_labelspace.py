"""The dashboard with a run whose classes differ from the dataset's: the "not scorable" count
on every page, the sidebar switch that scores them as errors, and the taxonomic level choice
on Per-class and Confusion."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from analysis.evalset import build_evalset
from data.cct import load_dataset
from data.runs import load_run, write_run

DROPPED = ("impala", "giraffe")  # the model of the "subset" run does not know them


@pytest.fixture(scope="module")
def subset_runs(demo_small, synthetic_run, tmp_path_factory):
    """A runs folder with one run: the synthetic run without two classes (renormalised)."""
    runs = tmp_path_factory.mktemp("ls_runs")
    src = load_run(synthetic_run)
    keep = [i for i, c in enumerate(src.classes) if c not in DROPPED]
    probs = np.asarray(src.probs)[:, keep]
    probs = (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
    manifest = {k: v for k, v in src.manifest.items()
                if k not in ("run_id", "created_at", "n_predictions")}
    manifest["classes"] = [src.classes[i] for i in keep]
    write_run(runs / "subset", manifest=manifest, image_ids=src.image_ids, probs=probs,
              split=src.split)
    return runs


@pytest.fixture
def subset_app(app, monkeypatch, subset_runs):
    monkeypatch.setenv("TRAPLENS_RUNS", str(subset_runs))
    return app


@pytest.fixture(scope="module")
def n_not_scorable(demo_small, subset_runs):
    ev = build_evalset(load_dataset(demo_small.json_paths), load_run(subset_runs / "subset"))
    n = ev.label_space.n_not_scorable
    assert n > 0
    return n


def _table(at, column):
    """The first table on the page with ``column`` (the expander's tables come first and
    have neither ``class`` with ``f1`` nor ``actual``)."""
    for d in at.dataframe:
        cols = set(d.value.columns)
        if column in cols and (column != "class" or "f1" in cols):
            return d.value
    raise AssertionError(f"no table with {column!r}")


@pytest.mark.parametrize("page", [None, "per_class", "top_losses"])
def test_every_page_says_how_many_images_are_not_scorable(subset_app, no_exception, texts,
                                                          n_not_scorable, page):
    at = subset_app(page)
    no_exception(at)
    shown = texts(at)
    assert f"{n_not_scorable:,} image(s) not scorable by this model" in shown
    assert "left out of the metrics" in shown and "subset" in shown


def test_sidebar_switch_scores_them_as_errors(subset_app, no_exception, texts,
                                              n_not_scorable):
    at = subset_app("per_class")
    before = _table(at, "class")
    at.toggle(key="sb_unk").set_value(True).run()
    no_exception(at)
    assert "scored as errors" in texts(at) and at.query_params["unk"] == "1"
    after = _table(at, "class")
    assert set(DROPPED) <= set(after["class"]) and not set(DROPPED) & set(before["class"])
    for name in DROPPED:  # never predicted: recall 0
        assert after.set_index("class").loc[name, "recall"] == 0


def test_level_changes_per_class_and_confusion(subset_app, no_exception):
    at = subset_app("per_class")
    assert "gazellegrants" in set(_table(at, "class")["class"])
    at.selectbox(key="w:taxon").set_value("family").run()
    no_exception(at)
    fam = _table(at, "class")
    assert "Bovidae" in set(fam["class"]) and "gazellegrants" not in set(fam["class"])
    assert at.query_params["taxon"] == "family"
    assert "Bovids" in " ".join(fam["name"]) or "Bovidae" in " ".join(fam["name"])

    cm = subset_app("confusion", taxon="family")
    no_exception(cm)
    top = _table(cm, "actual")
    names = set(top["actual"]) | set(top["predicted"])
    assert names and not names & {"gazellegrants", "gazellethomsons", "lionfemale"}
    label = subset_app("confusion")
    top = _table(label, "actual")
    assert {"gazellegrants", "gazellethomsons"} & (set(top["actual"]) | set(top["predicted"]))
    # hover: vernacular and scientific names in the figure's template data
    spec = cm.get("plotly_chart")[0].proto.spec
    assert "Equus quagga" in spec or "Equidae" in spec
