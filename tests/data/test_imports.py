"""data.imports: SpeciesNet, MegaDetector and CSV/Parquet predictions as run folders.

Fixture files are written by hand from each format's published description (SpeciesNet's
README "Output format"; lila.science/megadetector-output-format) over the real Snapshot
Serengeti slice (skipped when absent) and the small demo dataset. Metrics of the imported runs
are checked against scikit-learn on the labels worked out by hand from the same fixtures.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from analysis.metrics import confusion, summary
from data.__main__ import main
from data.cct import load_dataset
from data.imports import UNMAPPED, import_predictions, read_detector_scores
from data.imports.common import assemble, match_images, normalise_path
from data.imports.speciesnet import ANIMAL, BLANK, HUMAN, label_for
from data.runs import load_run

SID = "00000000-0000-0000-0000-00000000000{}"   # SpeciesNet labels: uuid;class;...;common
ELEPHANT = SID.format(1) + ";mammalia;proboscidea;elephantidae;loxodonta;africana;african elephant"
ELEPHANTIDAE = SID.format(2) + ";mammalia;proboscidea;elephantidae;;;elephantidae family"
BANDED_MONGOOSE = SID.format(3) + ";mammalia;carnivora;herpestidae;mungos;mungo;banded mongoose"
SQUIRREL = SID.format(4) + ";mammalia;rodentia;sciuridae;;;sciuridae family"
VERVET = SID.format(5) + ";mammalia;primates;cercopithecidae;chlorocebus;pygerythrus;vervet monkey"
LION = SID.format(6) + ";mammalia;carnivora;felidae;panthera;leo;lion"
HELMETED = SID.format(7) + ";aves;galliformes;numididae;numida;meleagris;helmeted guineafowl"
RHINO = SID.format(8) + ";mammalia;perissodactyla;rhinocerotidae;diceros;bicornis;black rhinoceros"
HIPPO = SID.format(9) + ";mammalia;artiodactyla;hippopotamidae;hippopotamus;amphibius;hippopotamus"
ZEBRA = "a0000000-0000-0000-0000-000000000001;mammalia;perissodactyla;equidae;equus;quagga;plains zebra"
BOVIDAE = "a0000000-0000-0000-0000-000000000002;mammalia;cetartiodactyla;bovidae;;;bovidae family"

SLICE_IDS = [f"S1/D04/D04_R6/S1_D04_R6_PICT{n:04d}" for n in
             (20, 21, 22, 128, 129, 130, 221, 222, 223, 275, 276, 277)]


def win(image_id: str, root: str = "C:\\lila\\snapshot-serengeti", ext: str = ".jpg") -> str:
    return root + "\\" + image_id.replace("/", "\\") + ext


def sn(path: str, pred: str, score: float, classes=(), scores=(), **extra) -> dict:
    rec = {"filepath": path, "prediction": pred, "prediction_score": score,
           "prediction_source": "classifier", "model_version": "4.0.1a",
           "detections": [{"category": "1", "label": "animal", "conf": 0.9,
                           "bbox": [0.1, 0.2, 0.3, 0.4]}]}
    if classes:
        rec["classifications"] = {"classes": list(classes), "scores": list(scores)}
    rec.update(extra)
    return rec


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, indent=1))
    return path


def predicted(run_dir: Path, dataset) -> tuple[list[str], list[str]]:
    """(truth = first label, predicted class name) per predicted image, in run order."""
    run = load_run(run_dir)
    first = dataset.label_sets()
    return ([first[i][0] for i in run.image_ids],
            [run.classes[k] for k in run.probs.argmax(axis=1)])


def assert_metrics_match_sklearn(y_true: list[str], y_pred: list[str], classes: list[str]):
    pos = {c: i for i, c in enumerate(classes)}
    cm = confusion(np.array([pos[c] for c in y_true]), np.array([pos[c] for c in y_pred]),
                   len(classes))
    s = summary(cm)
    assert s["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    assert s["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro",
                                                   zero_division=0), abs=1e-12)


# -- SpeciesNet on the real slice ------------------------------------------------------------
@pytest.fixture
def slice_speciesnet(tmp_path, serengeti_slice):
    i = SLICE_IDS
    preds = [
        sn(win(i[0]), ELEPHANT, 0.93, [ELEPHANT, RHINO, HIPPO, BLANK, ANIMAL],
           [0.93, 0.03, 0.02, 0.01, 0.005]),
        sn(win(i[1]), ELEPHANTIDAE, 0.85, [ELEPHANT, HIPPO], [0.6, 0.25],
           prediction_source="classifier+rollup_to_family"),
        {"filepath": win(i[2]), "failures": ["CLASSIFIER"], "model_version": "4.0.1a"},
        sn(win(i[3]), BANDED_MONGOOSE, 0.8),
        sn(win(i[4]), SQUIRREL, 0.55),
        sn(win(i[5]), ANIMAL, 0.7, prediction_source="detector"),
        sn("/mnt/d/lila/" + i[6] + ".JPG", VERVET, 0.97),
        sn(win(i[7]), LION, 0.6),
        sn(win(i[8]), HUMAN, 0.9),
        sn(win(i[9]), BLANK, 0.95),
        sn("/data/" + i[10] + ".JPG", BLANK, 0.99),
        sn(win(i[11]), HELMETED, 0.51),
        sn("C:\\other\\IMG_0001.JPG", BLANK, 0.99),      # not in the dataset
    ]
    return write_json(tmp_path / "speciesnet.json", {"predictions": preds}), serengeti_slice


def test_speciesnet_real_slice(tmp_path, slice_speciesnet):
    path, ds_path = slice_speciesnet
    out = tmp_path / "runs" / "speciesnet"
    m = import_predictions(path, format="speciesnet", dataset=[ds_path], out=out)
    ds = load_dataset([ds_path])
    truth, pred = predicted(out, ds)
    assert truth == ["elephant", "elephant", "mongoose", "mongoose", "mongoose", "monkeyvervet",
                     "monkeyvervet", "monkeyvervet", "empty", "empty", "empty"]
    assert pred == ["elephant", UNMAPPED, "mongoose", "rodents", UNMAPPED, "monkeyvervet",
                    "lionfemale", "human", "empty", "empty", "guineafowl"]
    assert_metrics_match_sklearn(truth, pred, m["classes"])
    assert m["classes"] == [*ds.classes, UNMAPPED]
    assert m["imported"] is True and m["training"] is None
    assert m["model"]["checkpoint"] is None and m["source"]["model_version"] == "4.0.1a"
    assert m["source"]["format"] == "speciesnet" and len(m["source"]["sha256"]) == 64
    assert m["partial_probabilities"] is True
    imp = m["import"]
    assert imp["matched"] == 11
    assert imp["failures"]["count"] == 1 and imp["unmatched_predictions"]["count"] == 1
    assert imp["unmatched_predictions"]["examples"] == ["C:\\other\\IMG_0001.JPG"]
    assert imp["images_without_prediction"]["count"] == 0       # the failure is listed apart
    assert m["unreadable"][0]["image_id"] == SLICE_IDS[2]
    assert imp["unmapped"] == {"images": 2, "labels": {ELEPHANTIDAE: 1, ANIMAL: 1}}
    assert imp["shared_taxa"] == {"Panthera leo": ["lionfemale", "lionmale", "lioncub"]}
    # The top five fill the vector; the rest of the mass is spread over the other 57 classes.
    run = load_run(out)
    p = run.probs[0]
    c = {k: j for j, k in enumerate(run.classes)}
    assert p[c["elephant"]] == pytest.approx(0.93, abs=1e-7)
    assert p[c["rhinoceros"]] == pytest.approx(0.03, abs=1e-7)
    assert p[c["empty"]] == pytest.approx(0.01, abs=1e-7)
    assert p[c[UNMAPPED]] == pytest.approx(0.005, abs=1e-7)
    assert p[c["zebra"]] == pytest.approx(0.005 / 57, abs=1e-9)
    unmatched = pd.read_csv(out / "unmatched.csv")
    assert sorted(unmatched["kind"]) == ["failure", "prediction_not_in_dataset"]
    label_map = pd.read_csv(out / "label_map.csv", keep_default_na=False)
    row = label_map.set_index("model_label").loc[LION]
    assert row["dataset_class"] == "lionfemale" and "shared by" in row["how"]
    assert label_map.set_index("model_label").loc[ANIMAL, "dataset_class"] == ""
    assert read_detector_scores(out).loc[SLICE_IDS[0]] == pytest.approx(0.9)


def test_mapping_file_overrides_the_taxonomy(tmp_path, slice_speciesnet):
    path, ds_path = slice_speciesnet
    mapping = tmp_path / "mapping.csv"
    mapping.write_text("model_label,dataset_class,note\n"
                       f"{ELEPHANTIDAE},elephant,only one elephantid here\n"
                       f"{LION},lionmale,\n{BLANK},,keep blanks apart\n"
                       "label never seen,zebra,\n")
    out = tmp_path / "mapped"
    m = import_predictions(path, format="speciesnet", dataset=[ds_path], out=out,
                           mapping=mapping)
    _, pred = predicted(out, load_dataset([ds_path]))
    assert pred == ["elephant", "elephant", "mongoose", "rodents", UNMAPPED, "monkeyvervet",
                    "lionmale", "human", UNMAPPED, UNMAPPED, "guineafowl"]
    assert m["import"]["mapping_file"] == str(mapping.resolve())


# -- SpeciesNet on the demo dataset ----------------------------------------------------------
def demo_picks(ds) -> dict[str, list[str]]:
    """The first three single-label images of some demo classes (dataset order)."""
    sets = ds.label_sets()
    picks: dict[str, list[str]] = {}
    for iid, labels in sets.items():
        if len(labels) == 1 and len(picks.setdefault(labels[0], [])) < 3:
            picks[labels[0]].append(iid)
    return picks


def test_speciesnet_demo(tmp_path, demo_small):
    ds = load_dataset(demo_small.json_paths)
    pick = demo_picks(ds)
    fn = ds.images.set_index("image_id")["file_name"]
    z, e, g = pick["zebra"], pick["empty"], pick["gazellethomsons"]
    guinea = pick["guineafowl"]
    path = lambda iid: "D:\\camera traps\\" + fn[iid].replace("/", "\\")  # noqa: E731
    preds = [sn(path(z[0]), ZEBRA, 0.9), sn(path(z[1]), BOVIDAE, 0.7),
             sn(path(e[0]), BLANK, 0.8), sn(path(e[1]), ZEBRA, 0.4, [BLANK, ZEBRA], [0.45, 0.4]),
             sn(path(g[0]), label_for("gazellethomsons"), 0.6),
             sn(path(guinea[0]), HELMETED, 0.88),
             {"filepath": path(g[1]), "failures": ["DETECTOR", "CLASSIFIER"]}]
    src = write_json(tmp_path / "sn.json", {"predictions": preds})
    out = tmp_path / "run"
    m = import_predictions(src, format="speciesnet", dataset=demo_small.json_paths, out=out,
                           images=demo_small.images_root)
    truth, pred = predicted(out, ds)
    assert pred == ["zebra", UNMAPPED, "empty", "zebra", "gazellethomsons", "guineafowl"] or \
        sorted(pred) == sorted(["zebra", UNMAPPED, "empty", "zebra", "gazellethomsons",
                                "guineafowl"])
    by_id = dict(zip(load_run(out).image_ids, pred))
    assert by_id[e[1]] == "zebra"          # the final prediction wins over the classifier's top
    assert by_id[z[1]] == UNMAPPED          # Bovidae: no demo class contains it
    assert_metrics_match_sklearn(truth, pred, m["classes"])
    assert m["import"]["images_without_prediction"]["count"] == len(ds.images) - 7
    assert m["dataset"]["images_root"] == str(Path(demo_small.images_root).resolve())


# -- MegaDetector ------------------------------------------------------------------------------
def md_file(tmp_path, images, *, classes=None, descriptions=None) -> Path:
    data = {"info": {"format_version": "1.4", "detector": "md_v5a.0.0.pt"},
            "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
            "images": images}
    if classes:
        data["classification_categories"] = classes
        data["info"]["classifier"] = "hand-written"
    if descriptions:
        data["classification_category_descriptions"] = descriptions
    return write_json(tmp_path / "md.json", data)


def det(cat: str, conf: float, cls=None) -> dict:
    d = {"category": cat, "conf": conf, "bbox": [0.1, 0.1, 0.2, 0.2]}
    if cls is not None:
        d["classifications"] = cls
    return d


#: Detector-only file over the slice: animal confidences per image (None: failure).
SLICE_CONF = [0.95, 0.15, 0.05, 0.9, 0.6, 0.3, 0.85, 0.25, 0.1, 0.02, 0.5, None]


@pytest.fixture
def slice_md(tmp_path, serengeti_slice):
    images = []
    for iid, conf in zip(SLICE_IDS, SLICE_CONF):
        rel = iid.replace("/", "\\") + ".JPG"
        if conf is None:
            images.append({"file": rel, "failure": "Failure image access", "detections": None})
        else:
            images.append({"file": rel, "detections": [det("1", conf), det("1", conf / 2)]})
    images[8]["detections"].append(det("2", 0.4))        # a person, more confident
    return md_file(tmp_path, images), serengeti_slice


def test_megadetector_detector_only(tmp_path, slice_md):
    path, ds_path = slice_md
    out = tmp_path / "md"
    m = import_predictions(path, format="megadetector", dataset=[ds_path], out=out,
                           threshold=0.2)
    assert m["classes"] == ["animal", "human", "vehicle", "empty"] and m["detector_only"]
    assert m["source"]["threshold"] == 0.2 and m["model"]["version"] == "md_v5a.0.0.pt"
    _, pred = predicted(out, load_dataset([ds_path]))
    assert pred == ["animal", "empty", "empty", "animal", "animal", "animal", "animal",
                    "animal", "human", "empty", "animal"]
    scores = read_detector_scores(out)
    assert scores.loc[SLICE_IDS[8]] == pytest.approx(0.4)
    assert m["import"]["failures"]["count"] == 1
    # a higher threshold turns the weaker detections into empties
    m2 = import_predictions(path, format="megadetector", dataset=[ds_path],
                            out=tmp_path / "md2", threshold=0.55)
    _, pred2 = predicted(tmp_path / "md2", load_dataset([ds_path]))
    assert pred2.count("empty") == 7 and m2["source"]["threshold"] == 0.55


def test_megadetector_with_classifications(tmp_path, serengeti_slice):
    classes = {"0": "african elephant", "1": "banded mongoose", "2": "blank", "3": "zebra"}
    descriptions = {"0": ELEPHANT, "1": BANDED_MONGOOSE}   # "2" and "3" by name
    i = SLICE_IDS
    images = [
        {"file": i[0] + ".JPG", "detections": [det("1", 0.9, [["0", 0.8], ["3", 0.1]])]},
        {"file": i[3] + ".JPG", "detections": [det("1", 0.3, [["3", 0.6], ["1", 0.3]]),
                                               det("1", 0.7, [["1", 0.7]])]},
        {"file": i[4] + ".JPG", "detections": [det("1", 0.1, [["1", 0.9]])]},   # below
        {"file": i[9] + ".JPG", "detections": [det("2", 0.8)]},                  # no classes
    ]
    out = tmp_path / "mdc"
    m = import_predictions(md_file(tmp_path, images, classes=classes, descriptions=descriptions),
                           format="megadetector", dataset=[serengeti_slice], out=out)
    assert not m["detector_only"] and m["classes"][-1] == UNMAPPED
    truth, pred = predicted(out, load_dataset([serengeti_slice]))
    assert pred == ["elephant", "mongoose", "empty", "human"]
    assert_metrics_match_sklearn(truth, pred, m["classes"])


# -- CSV and Parquet ---------------------------------------------------------------------------
def test_csv_top_k_and_top_1(tmp_path, serengeti_slice):
    i = SLICE_IDS
    top_k = tmp_path / "topk.csv"
    top_k.write_text("file_name,label_1,score_1,label_2,score_2,label_3,score_3\n"
                     f"{win(i[0], 'E:')},elephant,0.7,rhinoceros,0.2,,\n"
                     f"{i[3]}.JPG,mammalia;carnivora;herpestidae;mungos;mungo,0.5,Rodentia,0.3,zebra,0.1\n"
                     f"{i[9]}.jpg,empty,0.99,,,,\n")
    out = tmp_path / "topk"
    m = import_predictions(top_k, format="csv", dataset=[serengeti_slice], out=out)
    truth, pred = predicted(out, load_dataset([serengeti_slice]))
    assert pred == ["elephant", "mongoose", "empty"]
    assert_metrics_match_sklearn(truth, pred, m["classes"])
    run = load_run(out)
    c = run.classes
    assert run.probs[0, c.index("zebra")] == pytest.approx(0.1 / 60, abs=1e-9)
    assert m["partial_probabilities"] is True and m["source"]["layout"] == "top 3"
    top1 = tmp_path / "top1.csv"
    top1.write_text(f"image_id,label,score\n{i[0]},elephant,0.6\n{i[1]},Loxodonta africana,0.9\n")
    import_predictions(top1, format="csv", dataset=[serengeti_slice], out=tmp_path / "top1")
    assert predicted(tmp_path / "top1", load_dataset([serengeti_slice]))[1] == ["elephant"] * 2


def test_per_class_parquet_is_complete(tmp_path, demo_small):
    ds = load_dataset(demo_small.json_paths)
    ids = ds.images["image_id"].tolist()[:20]
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(len(ds.classes)), size=20)
    frame = pd.DataFrame(p, columns=ds.classes)
    frame.insert(0, "image_id", ids)
    frame.to_parquet(tmp_path / "probs.parquet")
    m = import_predictions(tmp_path / "probs.parquet", format="csv",
                           dataset=demo_small.json_paths, out=tmp_path / "pc")
    run = load_run(tmp_path / "pc")
    assert m["partial_probabilities"] is False
    assert np.abs(run.probs[:, :len(ds.classes)] - p).max() < 1e-6
    assert (run.probs[:, -1] == 0).all()


# -- matching ----------------------------------------------------------------------------------
def test_matching_by_id_then_path_suffix():
    images = pd.DataFrame({"image_id": ["S1/B/x1", "S1/C/x1"],
                           "file_name": ["S1/B/x1.JPG", "S1/C/x1.JPG"]})
    keys = ["S1/C/x1", "\\\\nas\\lila\\S1\\B\\x1.jpg", "/lila/S2/B/x1.JPG", "x1.JPG"]
    assert match_images(keys, images).tolist() == [1, 0, -1, -1]
    assert normalise_path("./S1\\B\\X.Jpeg") == "S1/B/X.jpeg"


def test_assemble_keeps_the_stated_prediction_on_top():
    p = assemble([0, 1], [0.1, 0.05], 4, top=3, top_score=0.02)
    assert p.argmax() == 3 and p.sum() == pytest.approx(1.0)
    p = assemble([0, 0, 1], [0.3, 0.3, 0.4], 3)       # two labels mapped onto one class
    assert p.tolist() == pytest.approx([0.6, 0.4, 0.0])


# -- bad input ---------------------------------------------------------------------------------
def run_cli(capsys, *argv) -> tuple[int, str]:
    rc = main(["import-predictions", *map(str, argv)])
    err = capsys.readouterr().err
    return rc, err


@pytest.mark.parametrize("fmt,body,match", [
    ("speciesnet", "{not json", r"sn\.json: line 1: not valid JSON"),
    ("speciesnet", '{"images": []}', r"no 'predictions' list.*MegaDetector file\?"),
    ("megadetector", '{"predictions": []}', r"no 'images' list.*SpeciesNet file\?"),
    ("speciesnet", '{"predictions": [{"prediction": "x", "prediction_score": 0.5}]}',
     r"predictions\[0\]: missing required field 'filepath'"),
    ("speciesnet", '{"predictions": [{"filepath": "a.jpg", "prediction": "x"}]}',
     r"predictions\[0\] \(a\.jpg\): missing required field 'prediction_score'"),
    ("speciesnet", '{"predictions": [{"filepath": "a.jpg", "prediction": "x", '
                   '"prediction_score": 1.5}]}', r"'prediction_score' 1\.5 is outside \[0, 1\]"),
    ("megadetector", '{"detection_categories": {"1": "animal"}, "images": [{"file": "a.jpg", '
                     '"detections": [{"category": "1", "conf": -0.1}]}]}',
     r"images\[0\] \(a\.jpg\) detections\[0\]: 'conf' -0\.1 is outside"),
    ("megadetector", '{"detection_categories": {"1": "animal"}, "images": [{"file": "a.jpg", '
                     '"detections": [{"category": "7", "conf": 0.5}]}]}',
     r"category '7' is not in 'detection_categories'"),
    ("megadetector", '{"images": []}', r"missing required field 'detection_categories'"),
    ("speciesnet", '{"predictions": [{"filepath": "/x/nowhere.jpg", "prediction": "' + BLANK
                   + '", "prediction_score": 0.9}]}', r"every record: no image matches"),
    ("csv", "image_id,label,score\nS1/D04/D04_R6/S1_D04_R6_PICT0020,elephant,2\n",
     r"sn\.json: line 2: column 'score': score 2\.0 is outside \[0, 1\]"),
    ("csv", "id,label,score\n", r"header: needs an 'image_id' or 'file_name' column"),
    ("csv", "image_id,label\nS1/D04/D04_R6/S1_D04_R6_PICT0020,elephant\n",
     r"column 'score' is missing"),
])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, serengeti_slice,
                                                    fmt, body, match):
    src = tmp_path / "sn.json"
    src.write_text(body)
    out = tmp_path / "runs" / "bad"
    rc, err = run_cli(capsys, src, "--format", fmt, "--dataset", serengeti_slice, "--out", out)
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    import re
    assert re.search(match, err), err
    assert not out.exists()
    assert not [p for p in (tmp_path / "runs").glob(".*")] if (tmp_path / "runs").exists() \
        else True


def test_duplicate_predictions_and_bad_threshold(tmp_path, capsys, serengeti_slice):
    i = SLICE_IDS[0]
    src = write_json(tmp_path / "sn.json", {"predictions": [
        sn(win(i), BLANK, 0.9), sn("/other/" + i + ".JPG", BLANK, 0.8)]})
    rc, err = run_cli(capsys, src, "--format", "speciesnet", "--dataset", serengeti_slice,
                      "--out", tmp_path / "o")
    assert rc == 2 and "predictions[1]" in err and "a second prediction for image" in err
    rc, err = run_cli(capsys, src, "--format", "speciesnet", "--dataset", serengeti_slice,
                      "--out", tmp_path / "o", "--threshold", "0.3")
    assert rc == 2 and "--threshold applies to --format megadetector only" in err
    bad_map = tmp_path / "m.csv"
    bad_map.write_text("model_label,dataset_class\nx,griffin\n")
    rc, err = run_cli(capsys, src, "--format", "speciesnet", "--dataset", serengeti_slice,
                      "--out", tmp_path / "o", "--mapping", bad_map)
    assert rc == 2 and "m.csv, line 2: unknown dataset class 'griffin'" in err
    assert not (tmp_path / "o").exists()


def test_cli_replaces_a_previous_import_and_refuses_other_folders(tmp_path, capsys,
                                                                 slice_speciesnet):
    path, ds_path = slice_speciesnet
    out = tmp_path / "run"
    for _ in range(2):
        rc = main(["import-predictions", str(path), "--format", "speciesnet", "--dataset",
                   str(ds_path), "--out", str(out), "--run-id", "sn-v4"])
        assert rc == 0
    printed = capsys.readouterr().out
    assert "imported 11 predictions" in printed and "Panthera leo is shared by" in printed
    assert json.loads((out / "manifest.json").read_text())["run_id"] == "sn-v4"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    rc, err = run_cli(capsys, path, "--format", "speciesnet", "--dataset", ds_path,
                      "--out", other)
    assert rc == 2 and "not a run folder" in err and (other / "keep.txt").exists()


# -- the demo's exported files, and imported runs in the analysis ------------------------------
def test_demo_exports_round_trip(tmp_path, demo_small, synthetic_run):
    import shutil

    from scripts.demo import IMPORTS, ensure_imports

    runs = tmp_path / "runs"
    shutil.copytree(synthetic_run, runs / "baseline")
    dataset = [str(p) for p in demo_small.json_paths]
    assert ensure_imports(dataset, str(demo_small.images_root), runs) == list(IMPORTS)
    assert ensure_imports(dataset, str(demo_small.images_root), runs) == []   # kept
    base = load_run(runs / "baseline")
    sn_run = load_run(runs / "speciesnet-demo")
    assert list(sn_run.image_ids) == list(base.image_ids)
    same = sn_run.probs.argmax(1) == base.probs.argmax(1)
    # every label written from the taxonomy maps back to its class; only roll-ups differ
    rolled = json.loads((runs.parent / "imports" / "speciesnet-demo.json").read_text())
    n_rolled = sum(p.get("prediction_source") == "rollup_to_family"
                   for p in rolled["predictions"])
    assert (~same).sum() == n_rolled
    assert sn_run.manifest["import"]["failures"]["count"] == len(base.manifest["unreadable"])
    md = load_run(runs / "megadetector-demo")
    conf = read_detector_scores(runs / "megadetector-demo").reindex(md.image_ids).to_numpy()
    empty = base.classes.index("empty")
    want = 1 - base.probs[:, empty].astype(np.float64)
    kept = want >= 0.005                      # the exporter drops the faintest detections
    assert np.abs(conf[kept] - want[kept]).max() < 1e-4 and (conf[~kept] == 0).all()
    pred = np.array(md.classes)[md.probs.argmax(1)]
    assert ((pred == "empty") == (conf < 0.2)).all()


def test_compare_an_imported_run_with_a_trained_one(tmp_path, demo_small, synthetic_run):
    """An imported run (the dataset's classes plus ``unmapped``) compares with a trained one."""
    from analysis.compare import compare
    from analysis.evalset import build_evalset
    from scripts.demo import ensure_imports

    import shutil
    runs = tmp_path / "runs"
    shutil.copytree(synthetic_run, runs / "baseline")
    ensure_imports([str(p) for p in demo_small.json_paths], str(demo_small.images_root), runs)
    ds = load_dataset(demo_small.json_paths)
    ev_b = build_evalset(ds, load_run(runs / "speciesnet-demo"))
    assert "unmapped" in ev_b.classes
    ev_a = build_evalset(ds, load_run(runs / "baseline"))
    out = compare(ev_a, ev_b, n_resamples=20)
    assert out["n"] > 0
