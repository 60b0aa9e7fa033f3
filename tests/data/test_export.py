"""data.curation exports: corrected COCO-CT JSON, decisions CSV, Camtrap DP, and atomic writes."""
from __future__ import annotations

import argparse
import io
import json
import math
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest

from data.cct import load_dataset, read_cct_json, validate
from data.curation import DecisionStore
from data.curation import ExportError, download_name, export, export_bytes
from data.curation.camtrapdp import (CAMTRAP_DP, OBSERVATION_FIELDS, REQUIRED_OBSERVATION_FIELDS,
                                     VOLUNTEERS, deployment_ids)
from data.curation.coco import write_corrected_cct
from data.curation.exports import register_cli
from data.files import atomic_write
from tests.data.test_curation import NAN, image_id, seq_id, write_cct


@pytest.fixture
def two_seasons(tmp_path):
    (tmp_path / "in").mkdir()
    paths = [write_cct(tmp_path / "in" / "S1.json", n_captures=7, season="S1", seed=1),
             write_cct(tmp_path / "in" / "S2.json", n_captures=5, season="S2", seed=2)]
    return paths, load_dataset(paths, cache=False)


def decide_some(store: DecisionStore, dataset) -> dict[str, tuple[str, ...]]:
    """Frame-level, capture-level and overriding decisions; returns the expected corrections."""
    store.record(dataset, curator="ann", item_id=image_id(1, 3), action="set",
                 labels=["zebra"], reason="no wildebeest in frame 3")
    store.record(dataset, curator="bob", item_id=seq_id(2), scope="capture", action="set",
                 labels=["elephant", "human"])
    store.record(dataset, curator="ann", item_id=image_id(2, 3), action="empty")
    store.record(dataset, curator="ann", item_id=seq_id(0, season="S2"), scope="capture",
                 action="set", labels=["mongoose"])
    store.record(dataset, curator="bob", item_id=image_id(3, 1), action="unsure")
    undone = store.record(dataset, curator="bob", item_id=image_id(4, 1), action="empty")
    assert store.undo(curator="bob", dataset=dataset) == undone
    return {image_id(1, 3): ("zebra",), image_id(2, 1): ("elephant", "human"),
            image_id(2, 2): ("elephant", "human"), image_id(2, 3): ("empty",),
            **{image_id(0, f, season="S2"): ("mongoose",) for f in (1, 2, 3)}}


# -- corrected COCO Camera Traps ------------------------------------------------------------
def test_coco_round_trip_one_file_per_input(two_seasons, tmp_path):
    paths, dataset = two_seasons
    store = DecisionStore(tmp_path / "d.sqlite")
    expected = decide_some(store, dataset)
    out = tmp_path / "corrected"
    written = export(dataset, store, out, format="coco")
    assert [p.name for p in written] == ["S1.json", "S2.json"]
    report = validate(written)
    assert report.usable, report.problems
    fixed = load_dataset(written, cache=False)
    assert fixed.classes == dataset.classes
    got, before = fixed.label_sets(), dataset.label_sets()
    assert len(got) == len(before) == len(dataset.images)
    for image, labels in got.items():
        assert labels == expected.get(image, before[image]), image
    # the structure of the input: same images, same keys, NaN kept as a bare token
    for src, dst in zip(paths, written):
        a, b = read_cct_json(src), read_cct_json(dst)
        assert a["images"] == b["images"] and a["categories"] == b["categories"]
        assert set(b) == set(a)
        assert b["info"]["traplens_corrections"]["source"] == src.name
    assert "NaN" in written[0].read_text()


def test_coco_annotations_say_frame_or_capture_level(two_seasons, tmp_path):
    paths, dataset = two_seasons
    store = DecisionStore(tmp_path / "d.sqlite")
    decide_some(store, dataset)
    doc = read_cct_json(export(dataset, store, tmp_path / "out", format="coco")[0])
    anns: dict[str, list[dict]] = {}
    for a in doc["annotations"]:
        anns.setdefault(a["image_id"], []).append(a)
    names = {c["id"]: c["name"] for c in doc["categories"]}
    (frame_fix,) = anns[image_id(1, 3)]           # zebra kept from its original annotation
    assert frame_fix["sequence_level_annotation"] is False
    assert names[frame_fix["category_id"]] == "zebra" and frame_fix["count"] == "1"
    capture_fix = anns[image_id(2, 1)]             # new classes: capture fields, NaN counts
    assert [names[a["category_id"]] for a in capture_fix] == ["elephant", "human"]
    assert all(a["sequence_level_annotation"] is True for a in capture_fix)
    assert all(a["seq_id"] == seq_id(2) and a["season"] == "S1" for a in capture_fix)
    assert all(math.isnan(a["count"]) for a in capture_fix)
    # frame 3 of capture 2 was fixed after the capture: image level, empty
    assert [names[a["category_id"]] for a in anns[image_id(2, 3)]] == ["empty"]
    assert anns[image_id(2, 3)][0]["sequence_level_annotation"] is False
    ids = [a["id"] for a in doc["annotations"]]
    assert len(ids) == len(set(ids))
    # untouched images keep their annotations, in the input's order
    src = read_cct_json(paths[0])
    untouched = {image_id(1, 3), *(image_id(2, f) for f in (1, 2, 3))}
    keep = [a["id"] for a in src["annotations"] if a["image_id"] not in untouched]
    assert [a["id"] for a in doc["annotations"] if a["image_id"] not in untouched] == keep


def _corrected(raw: dict, tmp_path, effective, **kwargs) -> tuple[dict, int]:
    src = tmp_path / "src.json"
    src.write_text(json.dumps(raw, indent=1))
    out = io.StringIO()
    n = write_corrected_cct(src, out, effective, **kwargs)
    return json.loads(out.getvalue()), n


def test_corrected_cct_unannotated_image_and_a_class_the_file_lacks(tmp_path):
    raw = {"info": {}, "categories": [{"id": 0, "name": "empty"}],
           "images": [{"id": "a", "seq_id": "s1", "location": "L"},
                      {"id": "b", "seq_id": "s2", "location": "L"}],
           "annotations": [{"id": "x", "image_id": "a", "category_id": 0, "count": NAN}]}
    effective = pd.DataFrame({"image_id": ["b", "zzz"], "labels": [("zebra",), ("empty",)],
                              "scope": ["image", "image"], "decision_id": [7, 8]})
    with pytest.raises(ExportError, match=r"corrected classes \['zebra'\] are not categories"):
        _corrected(raw, tmp_path, effective)
    cats = pd.DataFrame({"category_id": [0, 5], "name": ["empty", "zebra"]})
    doc, n = _corrected(raw, tmp_path, effective, categories=cats, info={"by": "test"})
    assert n == 1 and doc["categories"][-1] == {"id": 5, "name": "zebra"}
    assert doc["info"] == {"by": "test"}
    assert doc["annotations"][0]["id"] == "x" and math.isnan(doc["annotations"][0]["count"])
    added = doc["annotations"][1]
    assert (added["image_id"], added["category_id"], added["seq_id"], added["location"]) == (
        "b", 5, "s2", "L")
    assert added["sequence_level_annotation"] is False and added["id"] != "x"


def test_corrected_cct_streams_and_copies_untouched_batches_verbatim(tmp_path):
    """Small read batches (many per array): only batches holding a corrected image are
    rewritten; everything else, odd spacing and bare NaN included, is copied as it is."""
    images = [{"id": f"i{k}", "seq_id": f"s{k // 3}", "note": "NaN, but a string"}
              for k in range(60)]
    anns = [{"id": f"a{k}", "image_id": f"i{k}", "category_id": k % 2, "count": NAN}
            for k in range(60)] + [{"id": "a5b", "image_id": "i5", "category_id": 0,
                                    "count": "3"}]
    raw = {"info": {"v": 1}, "images": images, "annotations": anns, "licenses": [NAN],
           "categories": [{"id": 0, "name": "empty"}, {"id": 1, "name": "zebra"}]}
    src = tmp_path / "src.json"
    text = json.dumps(raw, indent=1).replace('"count": NaN', '"count":   NaN')
    src.write_text(text)
    effective = pd.DataFrame({"image_id": ["i5", "i40"],
                              "labels": [("empty", "zebra"), ("empty",)],
                              "scope": ["capture", "image"], "decision_id": [1, 2]})
    out = io.StringIO()
    assert write_corrected_cct(src, out, effective, chunk_bytes=256) == 2
    written = out.getvalue()
    assert '"count":   NaN' in written and '"licenses":[NaN]' in "".join(written.split())
    doc = json.loads(written)
    assert list(doc) == ["info", "images", "annotations", "licenses", "categories"]
    assert json.dumps(doc["images"]) == json.dumps(images)
    got = [(a["id"], a["image_id"], a["category_id"]) for a in doc["annotations"]]
    # i5's two annotations, in the decided order (empty, zebra), at i5's first place, each
    # keeping its own fields; i40's empty one stays (same class), marked image-level
    expect = [(a["id"], a["image_id"], a["category_id"]) for a in anns[:5]]
    expect += [("a5b", "i5", 0), ("a5", "i5", 1)]
    expect += [(a["id"], a["image_id"], a["category_id"]) for a in anns[6:60]]
    assert got == expect
    fixed = [a for a in doc["annotations"] if a["image_id"] in ("i5", "i40")]
    assert fixed[0]["count"] == "3" and math.isnan(fixed[1]["count"])
    assert [a["sequence_level_annotation"] for a in fixed] == [True, True, False]
    # untouched annotation batches are the file's own bytes
    untouched = text[text.index('"id": "a50"') - 8:text.index('"id": "a55"')]
    assert untouched in written


def test_coco_on_the_real_slice(serengeti_slice, tmp_path):
    dataset = load_dataset([serengeti_slice], cache=False)
    store = DecisionStore(tmp_path / "d.sqlite")
    mongoose = dataset.images.loc[dataset.images["seq_id"] == "SER_S1#D04#6#43"]
    frames = list(mongoose.sort_values("frame_num")["image_id"])
    for frame in frames[1:]:
        store.record(dataset, curator="ann", item_id=frame, action="empty")
    store.record(dataset, curator="ann", item_id="SER_S1#D04#6#74", scope="capture",
                 action="set", labels=["monkeyvervet", "baboon"])
    out = tmp_path / "SnapshotSerengetiS01-corrected.json"
    (path,) = export(dataset, store, out, format="coco")
    assert path == out and validate([out]).usable
    got = load_dataset([out], cache=False).label_sets()
    assert [got[f] for f in frames] == [("mongoose",), ("empty",), ("empty",)]
    vervet = dataset.images.loc[dataset.images["seq_id"] == "SER_S1#D04#6#74", "image_id"]
    assert all(got[i] == ("monkeyvervet", "baboon") for i in vervet)
    assert got["S1/D04/D04_R6/S1_D04_R6_PICT0020"] == ("elephant",)


def test_coco_output_choices_are_checked(two_seasons, tmp_path):
    paths, dataset = two_seasons
    store = DecisionStore(tmp_path / "d.sqlite")
    with pytest.raises(ExportError, match=r"2 input files give 2 outputs; pass a folder"):
        export(dataset, store, tmp_path / "one.json", format="coco")
    with pytest.raises(ExportError, match=r"S1.json: refusing to overwrite the input"):
        export(dataset, store, paths[0].parent, format="coco")
    with pytest.raises(ExportError, match=r"unknown export format 'xml'"):
        export(dataset, store, tmp_path / "x", format="xml")


# -- CSV ------------------------------------------------------------------------------------
def test_csv_matches_the_database(two_seasons, tmp_path):
    _, dataset = two_seasons
    store = DecisionStore(tmp_path / "d.sqlite")
    decide_some(store, dataset)
    (path,) = export(dataset, store, tmp_path / "decisions.csv", format="decisions")
    csv = pd.read_csv(path, dtype=str, keep_default_na=False)
    db = store.decisions()
    assert list(csv.columns) == list(db.columns)
    assert len(csv) == len(db) == 7
    assert list(csv["id"].astype(int)) == list(db["id"])
    for col in ("curator", "scope", "item_id", "action", "reason"):
        assert list(csv[col]) == list(db[col]), col
    for col in ("labels_before", "labels_after"):
        assert [tuple(v.split(",")) if v else () for v in csv[col]] == list(db[col]), col
    assert (pd.to_datetime(csv["ts"], utc=True) == db["ts"]).all()
    assert list(csv["undoes"]) == ["" if pd.isna(u) else str(u) for u in db["undoes"]]


# -- Camtrap DP -----------------------------------------------------------------------------
def test_camtrapdp_observations_mean_what_the_labels_mean(two_seasons, tmp_path):
    _, dataset = two_seasons
    store = DecisionStore(tmp_path / "d.sqlite")
    expected = decide_some(store, dataset)
    out = tmp_path / "dp"
    written = export(dataset, store, out, format="camtrapdp")
    assert sorted(p.name for p in written) == ["datapackage.json", "deployments.csv",
                                               "media.csv", "observations.csv"]
    obs = pd.read_csv(out / "observations.csv", dtype=str, keep_default_na=False)
    assert list(obs.columns) == OBSERVATION_FIELDS
    for field in REQUIRED_OBSERVATION_FIELDS + ("classificationMethod",):
        assert (obs[field] != "").all(), field
    assert obs["observationID"].is_unique
    assert set(obs["classificationMethod"]) == {"human"}
    assert obs["eventStart"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+03:00").all()
    assert set(obs["deploymentID"]) == {"SER_S1#A01#1", "SER_S2#A01#1"}
    # every row of one capture spans the capture: first to last frame (frames at :01..:03)
    for event, rows in obs.groupby("eventID"):
        assert rows["eventStart"].nunique() == rows["eventEnd"].nunique() == 1, event
        assert rows["eventStart"].iat[0].endswith(":01+03:00"), event
        assert rows["eventEnd"].iat[0].endswith(":03+03:00"), event
    # the volunteers' sequence-level labels: event level, one row per (capture, class)
    event = obs[obs["observationLevel"] == "event"]
    assert (event["mediaID"] == "").all()
    untouched = event[event["eventID"] == seq_id(1)]  # zebra + wildebeest, no decision
    assert list(untouched["scientificName"]) == ["Equus quagga", "Connochaetes taurinus"]
    assert set(untouched["classifiedBy"]) == {VOLUNTEERS}
    assert set(untouched["count"]) == {"1"} and set(untouched["behavior"]) == {"standing|moving"}
    assert (untouched["classificationTimestamp"] == "").all()
    assert set(untouched["observationTags"]) == {"labelSource:volunteers|validated:false"}
    # a capture-level decision: event level, by the curator, validated
    capture = event[event["eventID"] == seq_id(0, season="S2")]
    assert list(capture["scientificName"]) == ["Herpestidae"]
    assert list(capture["classifiedBy"]) == ["ann"]
    assert "validated:true" in capture["observationTags"].iat[0]
    assert capture["classificationTimestamp"].map(_dp_time).notna().all()
    # frame-level decisions: media level, by the curator, validated
    media = obs[obs["observationLevel"] == "media"]
    assert set(media["mediaID"]) == {image_id(1, 3), image_id(2, 3)}
    frame = media[media["mediaID"] == image_id(1, 3)]
    assert (list(frame["scientificName"]), list(frame["classifiedBy"])) == (["Equus quagga"],
                                                                             ["ann"])
    assert frame["observationTags"].iat[0] == "labelSource:curated|validated:true"
    assert frame["observationComments"].iat[0] == (
        "TrapLens image-level decision 1: no wildebeest in frame 3")
    blank = media[media["mediaID"] == image_id(2, 3)]
    assert list(blank["observationType"]) == ["blank"] and list(blank["scientificName"]) == [""]
    # the other frames of capture 1 keep their sequence-level labels: still the event's
    assert set(event.loc[event["eventID"] == seq_id(2), "classifiedBy"]) == {"bob"}
    # each corrected image's labels are its media rows, else its capture's event rows
    labels = dataset.label_sets()
    for image in labels.index:
        want = set(expected.get(image, labels[image]))
        mine = obs[obs["mediaID"] == image]
        if mine.empty:
            seq = dataset.images.set_index("image_id").loc[image, "seq_id"]
            mine = event[event["eventID"] == seq]
        got = {n or {"blank": "empty"}.get(k, k) for n, k in
               zip(mine["scientificName"], mine["observationType"])}
        sci = {c: c for c in ("empty", "human")} | {
            "zebra": "Equus quagga", "wildebeest": "Connochaetes taurinus",
            "elephant": "Loxodonta africana", "mongoose": "Herpestidae"}
        assert got == {sci[c] for c in want}, image
    package = json.loads((out / "datapackage.json").read_text())
    assert [r["schema"] for r in package["resources"]] == [
        f"{CAMTRAP_DP}/{n}-table-schema.json" for n in ("deployments", "media", "observations")]
    assert {c["title"] for c in package["contributors"]} == {"ann", "bob", VOLUNTEERS}
    assert "--locations" in package["description"] and "spatial" not in package
    assert str(tmp_path) not in (out / "datapackage.json").read_text()


def _dp_time(text: str):
    """A Camtrap DP datetime (format ``%Y-%m-%dT%H:%M:%S%z``) or None."""
    from datetime import datetime

    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None


# Camtrap DP 1.0's required fields and patterns (tdwg/camtrap-dp, tag 1.0, *-table-schema.json)
DP_REQUIRED = {
    "deployments": ["deploymentID", "latitude", "longitude", "deploymentStart", "deploymentEnd"],
    "media": ["mediaID", "deploymentID", "timestamp", "filePath", "filePublic", "fileMediatype"],
}
DP_PACKAGE_KEYS = ["resources", "profile", "created", "contributors", "project", "spatial",
                   "temporal", "taxonomic"]


def _locations(path, rows) -> Path:
    pd.DataFrame(rows, columns=["location", "latitude", "longitude"]).to_csv(path, index=False)
    return path


def test_camtrapdp_with_locations_is_a_complete_package(two_seasons, tmp_path):
    _, dataset = two_seasons
    store = DecisionStore(tmp_path / "d.sqlite")
    decide_some(store, dataset)
    where = _locations(tmp_path / "sites.csv", [("A01", -2.4, 34.8), ("Z99", -2.5, 34.9)])
    out = tmp_path / "dp"
    written = export(dataset, store, out, format="camtrapdp", locations=where)
    assert [p.name for p in written] == ["deployments.csv", "media.csv", "observations.csv",
                                         "datapackage.json"]
    read = {n: pd.read_csv(out / f"{n}.csv", dtype=str, keep_default_na=False)
            for n in ("deployments", "media", "observations")}
    dep, med, obs = read["deployments"], read["media"], read["observations"]
    for name, fields in DP_REQUIRED.items():
        for field in fields:
            assert (read[name][field] != "").all(), (name, field)
    assert dep["deploymentID"].is_unique and med["mediaID"].is_unique
    assert list(med["mediaID"]) == list(dataset.images["image_id"])
    # foreign keys, as the Camtrap DP schemas declare them
    assert set(med["deploymentID"]) <= set(dep["deploymentID"])
    assert set(obs["deploymentID"]) <= set(dep["deploymentID"])
    assert set(obs["mediaID"]) - {""} <= set(med["mediaID"])
    assert set(dep["deploymentID"]) == {"SER_S1#A01#1", "SER_S2#A01#1"}
    assert set(dep["latitude"]) == {"-2.4"} and set(dep["longitude"]) == {"34.8"}
    for col in ("deploymentStart", "deploymentEnd"):
        assert dep[col].map(_dp_time).notna().all()
    assert (dep["deploymentStart"].map(_dp_time) <= dep["deploymentEnd"].map(_dp_time)).all()
    assert med["timestamp"].map(_dp_time).notna().all()
    assert med["filePath"].str.fullmatch(r"(?=^[^./~])(^((?!\.{2}).)*$).*").all()
    assert set(med["fileMediatype"]) == {"image/jpeg"} and set(med["filePublic"]) == {"false"}
    package = json.loads((out / "datapackage.json").read_text())
    assert all(k in package for k in DP_PACKAGE_KEYS)
    assert package["profile"] == f"{CAMTRAP_DP}/camtrap-dp-profile.json"
    assert {r["name"]: r["schema"] for r in package["resources"]} == {
        n: f"{CAMTRAP_DP}/{n}-table-schema.json" for n in ("deployments", "media", "observations")}
    assert package["project"]["samplingDesign"] == "systematicRandom"
    assert package["spatial"]["bbox"] == [34.8, -2.4, 34.8, -2.4]
    assert package["temporal"]["start"] <= package["temporal"]["end"]
    zebra = next(t for t in package["taxonomic"] if t["scientificName"] == "Equus quagga")
    assert (zebra["taxonRank"], zebra["family"]) == ("species", "Equidae")


def test_camtrapdp_on_the_real_slice_with_coordinate_uncertainty(serengeti_slice, tmp_path):
    dataset = load_dataset([serengeti_slice], cache=False)
    store = DecisionStore(tmp_path / "d.sqlite")
    sites = tmp_path / "sites.csv"
    sites.write_text("location,latitude,longitude,coordinateUncertainty\n"
                     "D04,-2.3954,34.8237,30\nE05,-2.40,34.85,\n")
    export(dataset, store, tmp_path / "dp", format="camtrapdp", locations=sites)
    dep = pd.read_csv(tmp_path / "dp" / "deployments.csv", dtype=str, keep_default_na=False)
    assert list(dep["deploymentID"]) == ["SER_S1#D04#6"]
    assert (dep["locationID"].iat[0], dep["coordinateUncertainty"].iat[0]) == ("D04", "30")
    assert dep["deploymentStart"].iat[0] == "2010-08-19T18:24:57+03:00"
    med = pd.read_csv(tmp_path / "dp" / "media.csv", dtype=str, keep_default_na=False)
    assert med.loc[med["mediaID"] == "S1/D04/D04_R6/S1_D04_R6_PICT0020", "filePath"].iat[0] == (
        "S1/D04/D04_R6/S1_D04_R6_PICT0020.JPG")
    sites.write_text("location,latitude,longitude,coordinateUncertainty\nD04,-2.4,34.8,12.5\n")
    with pytest.raises(ExportError, match=r"row 2, field 'coordinateUncertainty': '12.5'"):
        export(dataset, store, tmp_path / "dp", format="camtrapdp", locations=sites)


@pytest.mark.parametrize("rows, match", [
    ([("B07", -2.4, 34.8)], r"no coordinates for 2 deployment\(s\), e.g. 'SER_S1#A01#1' at "
                            r"location 'A01'"),
    ([("A01", -95, 34.8)], r"sites.csv: row 2, field 'latitude': '-95' is not a number"),
    ([("A01", -2.4, "east")], r"row 2, field 'longitude': 'east'"),
    ([("A01", -2.4, 34.8), ("A01", -2.5, 34.9)], r"location 'A01' is listed twice"),
])
def test_camtrapdp_bad_locations_are_refused_by_row_and_field(two_seasons, tmp_path, rows,
                                                              match):
    _, dataset = two_seasons
    store = DecisionStore(tmp_path / "d.sqlite")
    where = _locations(tmp_path / "sites.csv", rows)
    with pytest.raises(ExportError, match=match):
        export(dataset, store, tmp_path / "dp", format="camtrapdp", locations=where)
    assert not (tmp_path / "dp").exists()  # nothing half-written
    (tmp_path / "bad.csv").write_text("site,lat\nA01,1\n")
    with pytest.raises(ExportError, match=r"bad.csv: missing column\(s\)"):
        export(dataset, store, tmp_path / "dp", format="camtrapdp",
               locations=tmp_path / "bad.csv")


def test_camtrapdp_bad_offset_and_file_target(two_seasons, tmp_path):
    _, dataset = two_seasons
    store = DecisionStore(tmp_path / "d.sqlite")
    with pytest.raises(ExportError, match=r"--utc-offset '3h'"):
        export(dataset, store, tmp_path / "dp", format="camtrapdp", utc_offset="3h")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match=r"Camtrap DP is a folder"):
        export(dataset, store, tmp_path / "file", format="camtrapdp")


@pytest.mark.parametrize("fmt,name,members", [
    ("csv", "labels.csv", None),
    ("decisions", "decisions.csv", None),
    ("coco", "traplens-coco.zip", ["S1.json", "S2.json"]),
    ("camtrapdp", "traplens-camtrapdp.zip", ["datapackage.json", "deployments.csv",
                                             "media.csv", "observations.csv"]),
])
def test_export_bytes_for_a_download(two_seasons, tmp_path, fmt, name, members):
    import io
    import zipfile

    _, dataset = two_seasons
    store = DecisionStore(tmp_path / "d.sqlite")
    decide_some(store, dataset)
    assert download_name(dataset, fmt) == name
    data = export_bytes(dataset, store, format=fmt)
    if members is None:
        export(dataset, store, tmp_path / "d.csv", format=fmt)
        assert data == (tmp_path / "d.csv").read_bytes()
    else:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            assert sorted(zf.namelist()) == members
            if fmt == "coco":
                fixed = json.loads(zf.read("S1.json").decode().replace("NaN", "null"))
                assert {a["image_id"] for a in fixed["annotations"]} >= {image_id(1, 3)}


def test_deployment_ids():
    seq = pd.Series(["SER_S1#D04#6#43", "plain", None], dtype="category")
    loc = pd.Series(["D04", "B03", None], dtype="category")
    assert list(deployment_ids(seq, loc)) == ["SER_S1#D04#6", "B03", "unknown"]


# -- atomic writes --------------------------------------------------------------------------
def test_atomic_write_failure_keeps_the_previous_file(tmp_path):
    target = tmp_path / "out.json"
    atomic_write(target, write=lambda fh: fh.write('{"v": 1}'), text=True)

    def broken(fh):
        fh.write('{"v": 2, "half')
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(target, write=broken, text=True)
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def _export_and_hang(dataset, db: str, out: str, marker: str, when: str) -> None:
    """Child: the real export, stalled half-way through writing the JSON or after all of it
    is written but before the rename; the parent kills it there."""
    import data.curation as ex
    import data.curation.coco as coco
    import data.files as files

    def hang(fh):
        fh.flush()
        Path(marker).write_text(str(os.getpid()))
        time.sleep(120)

    if when == "before-rename":
        files.fsync_file = hang
    else:
        real = coco.write_corrected_cct

        def half_written(src, fh, *args, **kwargs):
            whole = io.StringIO()
            real(src, whole, *args, **kwargs)
            fh.write(whole.getvalue()[: len(whole.getvalue()) // 2])
            hang(fh)

        coco.write_corrected_cct = half_written  # only in this child process
    ex.export(dataset, DecisionStore(db), out, format="coco")


@pytest.mark.parametrize("when", ["mid-write", "before-rename"])
def test_export_killed_midway_leaves_the_previous_export(serengeti_slice, tmp_path, when):
    dataset = load_dataset([serengeti_slice], cache=False)
    store = DecisionStore(tmp_path / "d.sqlite")
    first = dataset.images["image_id"].iloc[0]
    store.record(dataset, curator="ann", item_id=first, action="set", labels=["zebra"])
    out = tmp_path / "corrected.json"
    export(dataset, store, out, format="coco")
    previous = out.read_bytes()
    store.record(dataset, curator="ann", item_id=first, action="set", labels=["giraffe"])
    marker = tmp_path / "stalled"
    child = mp.get_context("fork").Process(
        target=_export_and_hang, args=(dataset, str(store.path), str(out), str(marker), when))
    child.start()
    deadline = time.monotonic() + 60
    while not marker.exists() and child.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), "the export never reached its write"
    os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL
    assert out.read_bytes() == previous
    assert load_dataset([out], cache=False).label_sets()[first] == ("zebra",)
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(f".{out.name}.")]
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0  # the killed temp file
    export(dataset, store, out, format="coco")  # the next export replaces it cleanly
    assert load_dataset([out], cache=False).label_sets()[first] == ("giraffe",)


# -- CLI ------------------------------------------------------------------------------------
def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="python -m data")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.parametrize("fmt, out, extra, files", [
    ("coco", "corrected", [], ["S1.json", "S2.json"]),
    ("csv", "labels.csv", [], ["labels.csv"]),
    ("decisions", "decisions.csv", [], ["decisions.csv"]),
    ("camtrapdp", "dp", [], ["datapackage.json", "deployments.csv", "media.csv",
                             "observations.csv"]),
    ("camtrapdp", "dp", ["--locations", "SITES", "--sampling-design", "targeted"],
     ["datapackage.json", "deployments.csv", "media.csv", "observations.csv"]),
])
def test_cli_export(two_seasons, tmp_path, capsys, fmt, out, extra, files):
    paths, dataset = two_seasons
    store = DecisionStore(tmp_path / "d.sqlite")
    decide_some(store, dataset)
    sites = str(_locations(tmp_path / "sites.csv", [("A01", -2.4, 34.8)]))
    extra = [sites if a == "SITES" else a for a in extra]
    assert run_cli("export", "--dataset", *map(str, paths), "--decisions", str(store.path),
                   "--out", str(tmp_path / out), "--format", fmt, *extra) == 0
    captured = capsys.readouterr()
    assert sorted(Path(p).name for p in captured.out.split()) == files
    if fmt == "camtrapdp":
        assert ("--locations" in captured.err) == (not extra)
    if extra:
        package = json.loads((tmp_path / out / "datapackage.json").read_text())
        assert package["project"]["samplingDesign"] == "targeted"


def test_cli_export_needs_an_existing_database(two_seasons, tmp_path):
    paths, _ = two_seasons
    with pytest.raises(ExportError, match=r"nope.sqlite: no such decisions database"):
        run_cli("export", "--dataset", str(paths[0]), "--decisions",
                str(tmp_path / "nope.sqlite"), "--out", str(tmp_path / "o"), "--format", "csv")



def test_cli_sqlite_failure_is_one_line_exit_2(two_seasons, tmp_path, capsys, monkeypatch):
    import sqlite3

    from data.__main__ import main

    paths, dataset = two_seasons
    store = DecisionStore(tmp_path / "d.sqlite")
    decide_some(store, dataset)

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(DecisionStore, "effective", locked)
    assert main(["export", "--dataset", *map(str, paths), "--decisions", str(store.path),
                 "--out", str(tmp_path / "o"), "--format", "camtrapdp"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: decisions database: database is locked"]


# -- the demo loop --------------------------------------------------------------------------
def truth_fixes(truth_path: Path) -> list[dict]:
    """What a careful curator decides on the demo's planted label problems: frames that only
    inherit their capture's label become empty, frames with a missed species get what they
    show (both from demo_truth.json)."""
    truth = json.loads(truth_path.read_text())["images"]
    rows = []
    for image, rec in truth.items():
        if "inherited_label" in rec["phenomena"] and not rec["visible"]:
            rows.append({"image_id": image, "labels": "empty", "reason": "inherited_label"})
        elif "missed_species" in rec["phenomena"] and rec["visible"]:
            rows.append({"image_id": image, "labels": ",".join(rec["visible"]),
                         "reason": "missed_species"})
    return rows


def agrees_with_truth(dataset, truth: dict) -> int:
    got = dataset.label_sets()
    return sum(set(got[i]) == (set(r["visible"]) or {"empty"}) for i, r in truth.items()
               if i in got.index)


def test_demo_loop_review_export_reload(demo_small, tmp_path):
    paths = [Path(p) for p in demo_small.json_paths]
    dataset = load_dataset(paths, cache=False)
    fixes = truth_fixes(demo_small.truth)
    assert len(fixes) > 10, "the demo plants label problems to fix"
    store = DecisionStore(tmp_path / "curation.sqlite")
    assert store.record_many(dataset, fixes, curator="ann") == len(fixes)
    written = export(dataset, store, tmp_path / "corrected", format="coco")
    assert [p.name for p in written] == [p.name for p in paths]
    assert validate(written).usable
    fixed = load_dataset(written, cache=False)
    truth = json.loads(demo_small.truth.read_text())["images"]
    before, after = agrees_with_truth(dataset, truth), agrees_with_truth(fixed, truth)
    assert after - before == sum(1 for f in fixes if set(dataset.label_sets()[f["image_id"]])
                                 != set(f["labels"].split(",")))
    assert fixed.label_arrays(list(fixed.images["image_id"]), fixed.classes)[0].any(axis=1).all()


@pytest.mark.slow
def test_demo_loop_retrains_on_the_corrected_export(demo_small, tmp_path):
    """training.train reads the corrected files directly (one tiny CPU epoch)."""
    pytest.importorskip("torch")
    from data.runs import load_run
    from training.config import parse_args
    from training.train import main

    dataset = load_dataset(demo_small.json_paths, cache=False)
    store = DecisionStore(tmp_path / "curation.sqlite")
    store.record_many(dataset, truth_fixes(demo_small.truth), curator="ann")
    written = export(dataset, store, tmp_path / "corrected", format="coco")
    cfg = parse_args(["--dataset", *map(str, written), "--images", str(demo_small.images_root),
                      "--out", str(tmp_path / "runs" / "corrected"), "--device", "cpu",
                      "--image-size", "64", "--batch-size", "32", "--epochs-frozen", "1",
                      "--epochs", "0", "--cache-features", "--workers", "0",
                      "--predict-split", "all"])
    run = load_run(main(cfg))
    assert run.classes == dataset.classes
    assert [Path(p).name for p in run.manifest["dataset"]["paths"]] == [p.name for p in written]


def test_corrections_feed_the_metrics(demo_small, synthetic_run, tmp_path):
    """The sidebar toggle's path: DecisionStore.corrections -> analysis.build_evalset."""
    from analysis.evalset import build_evalset
    from data.runs import load_run

    dataset = load_dataset(demo_small.json_paths, cache=False)
    run = load_run(synthetic_run)
    store = DecisionStore(tmp_path / "curation.sqlite")
    store.record_many(dataset, truth_fixes(demo_small.truth), curator="ann")
    corrections = store.corrections(dataset)
    plain = build_evalset(dataset, run)
    fixed = build_evalset(dataset, run, corrections=corrections)
    assert plain.image_ids.tolist() == fixed.image_ids.tolist()
    row = {i: k for k, i in enumerate(fixed.image_ids)}
    changed = 0
    for image, labels in zip(corrections["image_id"], corrections["labels"]):
        if image not in row:
            continue
        want = [c in labels for c in fixed.classes]
        assert fixed.labels[row[image]].tolist() == want
        changed += plain.labels[row[image]].tolist() != want
    assert changed > 0
