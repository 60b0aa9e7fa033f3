"""AppTest of the Generalisation and Ecology pages: they render on a synthetic run and show
the numbers the analysis functions return."""
from __future__ import annotations

import pandas as pd
import pytest

from analysis.decision import (certified_accept, ecology_for, generalisation_report,
                               run_train_sites)
from analysis.evalset import build_evalset, select_split
from data.cct import load_dataset
from data.runs import load_run


@pytest.fixture(scope="module")
def loaded(demo_small, synthetic_run):
    dataset = load_dataset(demo_small.json_paths)
    run = load_run(synthetic_run)
    return dataset, run, build_evalset(dataset, run)


def _metric(at, prefix: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(prefix))


def test_generalisation_shows_seen_and_unseen_with_intervals(app, no_exception, texts, loaded):
    dataset, run, ev = loaded
    at = app("generalisation", split="test")
    no_exception(at)
    sites, source = run_train_sites(run, dataset)
    gen = generalisation_report(select_split(ev, "test"), train_sites=sites, source=source)
    seen = gen["seen"]
    assert _metric(at, "Macro F1, seen sites") == f"{seen['macro_f1']:.3f}"
    assert f"{len(sites):,} training sites, from {source}" in texts(at)
    per_site = at.dataframe[-1].value
    assert list(per_site["site"]) == [r["site"] for r in gen["per_site"]]
    assert per_site["macro_f1"].tolist() == pytest.approx([r["macro_f1"] for r in gen["per_site"]])
    assert any("top losses at" in str(p.label) for p in at.get("page_link"))


@pytest.fixture
def location_split_run(loaded, dashboard_env, tmp_path, monkeypatch):
    """A run split by location: trained on the first site (``split.parquet``), predicting
    only the other sites (all ``test``), alone in a runs folder the app is pointed at."""
    from data.runs import SPLIT_TABLE, write_run

    dataset, run, _ = loaded
    out = tmp_path / "runs" / "by_location"
    monkeypatch.setenv("TRAPLENS_RUNS", str(out.parent))
    images = dataset.images.set_index("image_id")
    site = images["location"].reindex(run.image_ids).astype(object).to_numpy()
    first = sorted({s for s in site if pd.notna(s)})[0]
    keep = site != first
    write_run(out, manifest={k: v for k, v in run.manifest.items()
                             if k not in ("run_id", "created_at", "n_predictions")},
              image_ids=run.image_ids[keep], probs=run.probs[keep], split="test")
    train = images.index[images["location"].astype(object) == first]
    pd.DataFrame({"image_id": train, "split": "train"}).to_parquet(out / SPLIT_TABLE)
    yield out, first


def test_generalisation_when_every_site_is_unseen(location_split_run, app, no_exception,
                                                  texts, loaded):
    dataset, _, _ = loaded
    out, first = location_split_run
    at = app("generalisation", run=out.name)
    no_exception(at)
    run = load_run(out)
    sites, source = run_train_sites(run, dataset)
    assert sites == [first] and source == "split.parquet"
    gen = generalisation_report(build_evalset(dataset, run), train_sites=sites, source=source)
    assert gen["all_unseen"]
    assert "Every evaluated site is unseen" in texts(at)
    assert _metric(at, "Median site macro F1") == f"{gen['site_spread']['median']:.3f}"
    assert _metric(at, "Worst site macro F1") == f"{gen['site_spread']['min']:.3f}"


def test_ecology_page_shows_the_species_table_and_both_curves(app, no_exception, loaded):
    _, _, ev = loaded
    at = app("ecology")
    no_exception(at)
    eco = ecology_for(ev)
    table = at.dataframe[0].value
    assert list(table["species"]) == [r["species"] for r in eco["per_species"]]
    assert table["captures_labels"].tolist() == [r["captures_labels"]
                                                 for r in eco["per_species"]]
    assert table["occupancy_model"].tolist() == pytest.approx(
        [r["occupancy_model"] for r in eco["per_species"]])
    n_flagged = sum(r["flagged"] for r in eco["per_species"])
    assert _metric(at, "Species flagged") == f"{n_flagged} of {len(eco['per_species'])}"
    charts = at.get("plotly_chart")
    assert len(charts) >= 1
    import json
    fig = json.loads(charts[0].proto.spec)
    assert [t["name"] for t in fig["data"]] == ["labels", "model"]


def test_ecology_model_where_certified(app, no_exception, texts, loaded):
    _, _, ev = loaded
    at = app("ecology", eco_mode="certified")
    no_exception(at)
    accept = certified_accept(ev, target=0.95)
    assert f"The model labels {accept.mean():.1%} of the images" in texts(at)
    eco = ecology_for(ev, accept=accept)
    table = at.dataframe[0].value
    assert table["captures_model"].tolist() == [r["captures_model"] for r in eco["per_species"]]
