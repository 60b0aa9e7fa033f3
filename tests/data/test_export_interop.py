"""The exports as the field's own tools read them: frictionless against the Camtrap DP 1.0.2
schemas (offline), the ``camtrapdp`` PyPI reader, MegaDetector's COCO-CT integrity checker; and
the labelled CSV, output checks, paths and file modes."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from data.cct import load_dataset
from data.curation import DecisionStore, export
from data.curation.camtrapdp import (DEPLOYMENT_FIELDS, MEDIA_FIELDS, OBSERVATION_FIELDS,
                                     VOLUNTEERS)
from data.curation.csv import LABEL_COLUMNS
from tests.camtrapdp_offline import SCHEMAS, errors, validate_package
from tests.data.test_export import run_cli, truth_fixes

DP_TABLES = {"deployments": DEPLOYMENT_FIELDS, "media": MEDIA_FIELDS,
             "observations": OBSERVATION_FIELDS}


@pytest.fixture(scope="module")
def curated(demo_small, tmp_path_factory):
    """The demo with a careful curator's frame-level fixes, one capture-level decision and a
    sites CSV: ``(dataset, store, sites, folder)``."""
    tmp = tmp_path_factory.mktemp("interop")
    dataset = load_dataset(demo_small.json_paths, cache=False)
    store = DecisionStore(tmp / "curation.sqlite")
    store.record_many(dataset, truth_fixes(demo_small.truth), curator="ann")
    seq = str(dataset.sequences["seq_id"].iat[3])
    store.record(dataset, curator="bob", item_id=seq, scope="capture", action="set",
                 labels=["lionfemale", "zebra"], reason="=HYPERLINK(\"x\")")
    sites = tmp / "sites.csv"
    pd.DataFrame({"location": dataset.images["location"].dropna().unique(),
                  "latitude": -2.4, "longitude": 34.8}).to_csv(sites, index=False)
    return dataset, store, sites, tmp


@pytest.fixture(scope="module")
def packages(curated, synthetic_run):
    """Camtrap DP folders: ``full`` (labels), ``run`` (labels + predictions), ``run_only``,
    ``no_sites`` (labels, no --locations)."""
    dataset, store, sites, tmp = curated
    kw = {"full": {"locations": sites}, "run": {"locations": sites, "run": synthetic_run},
          "run_only": {"locations": sites, "run": synthetic_run, "human": False},
          "no_sites": {}}
    for name, extra in kw.items():
        export(dataset, store, tmp / name, format="camtrapdp", **extra)
    return {name: tmp / name for name in kw}


def _read(folder: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{table}.csv", dtype=str, keep_default_na=False)


def test_schema_columns_are_the_published_ones():
    if not SCHEMAS.is_dir():
        pytest.skip(f"published schemas absent: {SCHEMAS}")
    for table, fields in DP_TABLES.items():
        schema = json.loads((SCHEMAS / "camtrap-dp" / "1.0.2" / f"{table}-table-schema.json")
                            .read_text())
        assert [f["name"] for f in schema["fields"]] == fields, table


@pytest.mark.parametrize("name", ["full", "run", "run_only"])
def test_camtrapdp_validates_with_zero_errors(packages, name):
    report = validate_package(packages[name] / "datapackage.json")
    assert errors(report) == []
    assert report.valid
    rows = {t.name: t.stats["rows"] for t in report.tasks}
    assert rows["observations"] > 0 and rows["media"] == 400
    for table, fields in DP_TABLES.items():
        assert list(_read(packages[name], table).columns) == fields


def test_without_sites_only_the_coordinates_are_missing(packages, curated, capsys):
    report = validate_package(packages["no_sites"] / "datapackage.json")
    problems = errors(report)
    assert problems and all("spatial" in p or "latitude" in p or "longitude" in p
                            for p in problems), problems
    dep = _read(packages["no_sites"], "deployments")
    assert (dep["latitude"] == "").all() and (dep["deploymentStart"] != "").all()
    # the same tables as with sites, coordinates apart
    for table in ("media", "observations"):
        a, b = _read(packages["no_sites"], table), _read(packages["full"], table)
        assert a.equals(b), table
    dataset, store, _, tmp = curated
    assert run_cli("export", "--dataset", *map(str, [s["path"] for s in dataset.sources]),
                   "--decisions", str(store.path), "--out", str(tmp / "cli_dp"),
                   "--format", "camtrapdp") == 0
    err = capsys.readouterr().err
    assert "incomplete Camtrap DP package" in err and "latitude and longitude" in err


def test_events_agree_and_levels_follow_the_labels(packages, curated):
    dataset, store, _, _ = curated
    obs = _read(packages["run"], "observations")
    assert obs["observationID"].is_unique
    spans = obs.groupby("eventID")[["eventStart", "eventEnd"]].nunique()
    assert (spans == 1).all().all()
    # the event span is the capture's first and last frame
    images = dataset.images.assign(seq=dataset.images["seq_id"].astype(str))
    first = images.groupby("seq")["datetime"].min().dt.strftime("%Y-%m-%dT%H:%M:%S+03:00")
    last = images.groupby("seq")["datetime"].max().dt.strftime("%Y-%m-%dT%H:%M:%S+03:00")
    assert (obs["eventStart"] == obs["eventID"].map(first)).all()
    assert (obs["eventEnd"] == obs["eventID"].map(last)).all()
    human = obs[obs["classificationMethod"] == "human"]
    volunteers = human[human["classifiedBy"] == VOLUNTEERS]
    assert set(volunteers["observationLevel"]) == {"event"}  # the demo's labels are sequence-level
    assert (volunteers["mediaID"] == "").all()
    eff = store.effective(dataset)
    frame_fixed = set(eff.loc[eff["scope"] == "image", "image_id"])
    curated_media = human[human["observationLevel"] == "media"]
    assert set(curated_media["mediaID"]) == frame_fixed
    assert set(curated_media["classifiedBy"]) == {"ann"}
    assert curated_media["observationTags"].str.contains("validated:true").all()
    assert (curated_media["classificationTimestamp"] != "").all()
    bob = human[human["classifiedBy"] == "bob"]
    assert set(bob["observationLevel"]) == {"event"}
    assert list(bob["scientificName"]) == ["Panthera leo", "Equus quagga"]
    assert list(bob["sex"]) == ["female", ""]
    assert bob["observationComments"].str.endswith('=HYPERLINK("x")').all()
    machine = obs[obs["classificationMethod"] == "machine"]
    assert set(machine["observationLevel"]) == {"media"} and len(machine) > 0
    assert set(machine["classifiedBy"]) == {"synthetic (TrapLens run synthetic)"}
    prob = machine["classificationProbability"].astype(float)
    assert prob.between(0, 1).all() and (human["classificationProbability"] == "").all()
    counts = volunteers["count"][volunteers["count"] != ""].astype(int)
    assert (counts >= 1).all()
    binned = volunteers[volunteers["observationComments"].str.contains("count bin")]
    assert set(binned["count"]) <= {"11", "51"}


def test_camtrapdp_pypi_reader_reads_every_table(packages):
    camtrapdp = pytest.importorskip("camtrapdp")
    folder = packages["run"]
    assert len(camtrapdp.Deployment.from_csv(str(folder / "deployments.csv"))) > 0
    assert len(camtrapdp.Media.from_csv(str(folder / "media.csv"))) == 400
    obs = camtrapdp.Observation.from_csv(str(folder / "observations.csv"))
    assert len(obs) == len(_read(folder, "observations"))


def test_megadetector_integrity_check_passes_on_the_corrected_coco(curated, demo_small):
    pytest.importorskip("megadetector")
    from megadetector.data_management.integrity_check_json_db import (IntegrityCheckOptions,
                                                                        integrity_check_json_db)

    dataset, store, _, tmp = curated
    written = export(dataset, store, tmp / "coco", format="coco")
    assert len(written) == 2
    # the demo leaves out two image files on purpose ("missing" in demo_truth.json)
    truth = json.loads(demo_small.truth.read_text())["images"]
    missing = {dataset.images.set_index("image_id").loc[i, "file_name"]
               for i, r in truth.items() if "missing" in r["phenomena"]}
    assert len(missing) == 2
    found = []
    for path in written:
        options = IntegrityCheckOptions()
        options.baseDir = str(demo_small.images_root)
        options.bCheckImageExistence = True
        options.bFindUnusedImages = False
        options.bRequireLocation = True
        options.requireInfo = True
        options.verbose = False
        _, data, info = integrity_check_json_db(str(path), options)
        assert all(e[1] == "not found in relative path list" for e in
                   info["validation_errors"]), (path, info["validation_errors"])
        found += [e[0] for e in info["validation_errors"]]
        assert len(data["images"]) > 0
    assert set(found) == missing


def test_labelled_csv_one_row_per_image_and_species(curated):
    dataset, store, _, tmp = curated
    (path,) = export(dataset, store, tmp / "labels.csv", format="csv")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(table.columns) == LABEL_COLUMNS
    eff = store.effective(dataset).set_index("image_id")
    labels = dataset.label_sets()
    want = {i: eff.loc[i, "labels"] if i in eff.index else labels[i] for i in labels.index}
    assert len(table) == sum(len(v) for v in want.values())
    got = table.groupby("image_id", sort=False)["species"].agg(tuple)
    assert got.to_dict() == want
    assert list(got.index) == [i for i in dataset.images["image_id"] if i in got.index]
    # a capture decision expands to each of its frames, with curator, time and reason
    seq = str(dataset.sequences["seq_id"].iat[3])
    frames = table[table["capture"] == seq]
    n_frames = int((dataset.images["seq_id"].astype(str) == seq).sum())
    assert len(frames) == 2 * n_frames and frames["frame"].nunique() == n_frames
    assert set(frames["label_source"]) == {"curated"} and set(frames["curator"]) == {"bob"}
    assert set(frames["reason"]) == {"'=HYPERLINK(\"x\")"}  # neutralised (OWASP)
    assert set(frames["scientific_name"]) == {"Panthera leo", "Equus quagga"}
    assert pd.to_datetime(frames["decision_time"], utc=True).notna().all()
    original = table[table["label_source"] == "original"]
    assert (original[["curator", "decision_time", "reason"]] == "").all().all()
    image = dataset.images.set_index("image_id").loc[original["image_id"].iat[0]]
    row = original.iloc[0]
    assert (row["file_name"], row["site"], row["season"]) == (
        image["file_name"], image["location"], image["season"])
    assert row["datetime"] == image["datetime"].strftime("%Y-%m-%dT%H:%M:%S")
    published = dataset.labels.set_index(["image_id", dataset.labels["class"].astype(str)])
    for _, r in original.head(50).iterrows():
        c = published.loc[(r["image_id"], r["species"]), "count"]
        assert r["count"] == ("" if pd.isna(c) else c)


def test_outputs_are_checked_before_any_work(curated, synthetic_run, capsys):
    from data.__main__ import main

    dataset, store, _, tmp = curated
    sources = [str(s["path"]) for s in dataset.sources]
    before = Path(sources[0]).read_bytes()
    run = ["--run", str(synthetic_run)]
    for fmt, out, extra in (("csv", sources[0], []), ("decisions", str(store.path), []),
                            ("coco", str(Path(sources[0]).parent), []),
                            ("camtrapdp", str(synthetic_run / "dp"), run)):
        assert main(["export", "--dataset", *sources, "--decisions", str(store.path),
                     "--out", out, "--format", fmt, *extra]) == 2, fmt
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), (fmt, err)
        assert "refusing" in err[0], err
    assert Path(sources[0]).read_bytes() == before
    assert not (synthetic_run / "dp").exists()
    # an existing file of another kind is not overwritten either
    (tmp / "notes.json").write_text('{"a": 1}')
    assert main(["export", "--dataset", *sources, "--decisions", str(store.path),
                 "--out", str(tmp / "notes.json"), "--format", "decisions"]) == 2


def test_no_local_paths_and_the_users_umask(curated, packages):
    dataset, store, _, tmp = curated
    old = os.umask(0o027)
    try:
        written = [*export(dataset, store, tmp / "u_coco", format="coco"),
                   *export(dataset, store, tmp / "u.csv", format="csv"),
                   *export(dataset, store, tmp / "u_dec.csv", format="decisions"),
                   *export(dataset, store, tmp / "u_dp", format="camtrapdp")]
    finally:
        os.umask(old)
    for path in written:
        assert path.stat().st_mode & 0o777 == 0o640, path
    for path in [*written, *packages["run"].iterdir()]:
        text = path.read_text()
        assert str(tmp) not in text and str(store.path) not in text, path
        assert str(Path.home()) not in text, path
