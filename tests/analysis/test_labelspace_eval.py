"""Label spaces end to end: runs whose classes differ from the dataset's, mapping files,
taxonomic levels, the report's ``label_space`` key and the CLI's bad-input lines.

Every metric is checked against scikit-learn on arrays aligned by hand (class names, not
indices), to 1e-12.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from analysis.__main__ import main as analysis_main
from analysis.compare import LEFT_OUT, compare
from analysis.evalset import at_level, build_evalset, label_space_summary
from analysis.labelspace import LabelSpaceError
from analysis.metrics import evaluate
from analysis.report import build_report
from data.cct import load_dataset
from data.runs import load_run, write_run

# Category ids as published (Snapshot Serengeti), a few of them.
CATEGORIES = {0: "empty", 2: "gazellegrants", 5: "zebra", 10: "impala", 19: "gazellethomsons",
              30: "lionfemale", 31: "lionmale", 60: "lioncub"}
DATASET = [CATEGORIES[k] for k in sorted(CATEGORIES)]
N = 240
# By hand, from the Snapshot Serengeti checklist (not from data.taxonomy).
FAMILY = {"empty": "empty", "gazellegrants": "Bovidae", "zebra": "Equidae", "impala": "Bovidae",
          "gazellethomsons": "Bovidae", "lionfemale": "Felidae", "lionmale": "Felidae",
          "lioncub": "Felidae"}
LIONS = {"lionfemale": "lion", "lionmale": "lion", "lioncub": "lion"}


def _labels(seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [DATASET[k] for k in rng.integers(0, len(DATASET), N)]


@pytest.fixture(scope="module")
def dataset_path(tmp_path_factory):
    """N single-label images, 3 frames per capture."""
    path = tmp_path_factory.mktemp("ls") / "ds.json"
    name_to_id = {v: k for k, v in CATEGORIES.items()}
    images, anns = [], []
    for i, lab in enumerate(_labels()):
        iid = f"im{i:04d}"
        images.append({"id": iid, "file_name": f"{iid}.JPG", "seq_id": f"s{i // 3}",
                       "frame_num": i % 3 + 1, "seq_num_frames": 3, "location": "D04",
                       "datetime": "2010-07-18 16:26:14", "width": 10, "height": 10})
        anns.append({"id": f"a{i}", "image_id": iid, "category_id": name_to_id[lab],
                     "seq_id": f"s{i // 3}", "season": "S1"})
    path.write_text(json.dumps({"info": {}, "images": images, "annotations": anns,
                                "categories": [{"id": k, "name": v}
                                               for k, v in CATEGORIES.items()]}))
    return path


@pytest.fixture(scope="module")
def dataset(dataset_path):
    return load_dataset([dataset_path], cache=False)


def _write(path, classes, *, seed=1, ids=None):
    rng = np.random.default_rng(seed)
    ids = [f"im{i:04d}" for i in range(N)] if ids is None else ids
    probs = rng.dirichlet(np.full(len(classes), 0.6), size=len(ids)).astype(np.float32)
    probs /= probs.sum(axis=1, keepdims=True)
    write_run(path, manifest={"classes": list(classes), "dataset": {}, "model": {},
                              "training": {}, "software": {}},
              image_ids=ids, probs=probs, split="test")
    return load_run(path)


def _sk(y_true, y_pred) -> tuple[float, float]:
    return accuracy_score(y_true, y_pred), f1_score(y_true, y_pred, average="macro")


def _hand(run, truth: list[str], keep=None, merge: dict | None = None):
    """(y_true, y_pred) as class names: arg-max over the run's own columns, summed by hand
    within ``merge`` groups."""
    classes = list(run.classes)
    probs = np.asarray(run.probs, dtype=np.float64)
    if merge is not None:
        groups = list(dict.fromkeys(merge.get(c, c) for c in classes))
        summed = np.zeros((len(probs), len(groups)))
        for k, c in enumerate(classes):
            summed[:, groups.index(merge.get(c, c))] += probs[:, k]
        classes, probs = groups, summed
        truth = [merge.get(t, t) for t in truth]
    pred = [classes[k] for k in probs.argmax(axis=1)]
    keep = np.ones(len(truth), bool) if keep is None else np.asarray(keep)
    return ([t for t, k in zip(truth, keep) if k], [p for p, k in zip(pred, keep) if k])


def _check(ev, y_true, y_pred):
    got = evaluate(ev, n_resamples=0)
    acc, f1 = _sk(y_true, y_pred)
    assert got["n"] == len(y_true)
    assert abs(got["accuracy"] - acc) < 1e-12 and abs(got["macro_f1"] - f1) < 1e-12


def test_permutation_equals_sklearn(dataset, tmp_path):
    perm = list(np.random.default_rng(3).permutation(DATASET))
    run = _write(tmp_path / "perm", perm)
    ev = build_evalset(dataset, run)
    assert ev.classes == perm and ev.label_space.space.kind == "permutation"
    assert ev.probs is run.probs  # a permutation is scored in place: no copy
    _check(ev, *_hand(run, _labels()))


def test_subset_leaves_unscorable_images_out_or_scores_them_as_errors(dataset, tmp_path):
    known = [c for c in DATASET if c not in ("impala", "lioncub")]
    run = _write(tmp_path / "sub", known)
    truth = _labels()
    scorable = [t in known for t in truth]
    ev = build_evalset(dataset, run)
    info = label_space_summary(ev)
    assert info["kind"] == "subset" and info["n_not_scorable"] == N - sum(scorable)
    assert info["unknown_to_model"] == [
        {"class": "impala", "n_images": truth.count("impala")},
        {"class": "lioncub", "n_images": truth.count("lioncub")}]
    assert len(ev) == sum(scorable) and not info["scored_as_errors"]
    _check(ev, *_hand(run, truth, keep=scorable))
    # --score-unknown: every image, the unknown ones as errors
    ev_all = build_evalset(dataset, run, score_unknown=True)
    assert len(ev_all) == N and label_space_summary(ev_all)["scored_as_errors"]
    _check(ev_all, *_hand(run, truth))


def test_superset_extra_labels_stay_and_count_as_errors(dataset, tmp_path):
    classes = ["tree", *DATASET[::-1], "car"]
    run = _write(tmp_path / "sup", classes)
    ev = build_evalset(dataset, run)
    y_true, y_pred = _hand(run, _labels())
    assert ev.label_space.space.kind == "superset" and ev.classes == classes
    assert sum(p in ("tree", "car") for p in y_pred) > 10  # the test means something
    _check(ev, y_true, y_pred)
    extra = {e["class"]: e["n_predicted"] for e in label_space_summary(ev)["extra_in_model"]}
    assert extra == {"tree": y_pred.count("tree"), "car": y_pred.count("car")}


def test_report_at_family_and_species_level_equals_hand_rollup(dataset, tmp_path):
    run = _write(tmp_path / "tax", DATASET)
    truth = _labels()
    fam = build_report(dataset, run, taxon_level="family", n_resamples=50)
    acc, f1 = _sk(*_hand(run, truth, merge=FAMILY))
    assert abs(fam["image_level"]["accuracy"] - acc) < 1e-12
    assert abs(fam["image_level"]["macro_f1"] - f1) < 1e-12
    assert fam["label_space"]["taxon_level"] == "family"
    assert {r["class"] for r in fam["image_level"]["per_class"]} == {
        "Bovidae", "Equidae", "Felidae", "empty"}
    assert fam["confusion"]["classes"] == [r["class"] for r in fam["image_level"]["per_class"]]
    lo, hi = fam["image_level"]["macro_f1_ci"]  # intervals at every level
    assert lo is not None and lo <= hi
    assert all(r["f1_ci"][0] is not None for r in fam["image_level"]["per_class"])
    species = evaluate(at_level(build_evalset(dataset, run), "species"), n_resamples=0)
    acc, f1 = _sk(*_hand(run, truth, merge=LIONS))
    assert abs(species["accuracy"] - acc) < 1e-12 and abs(species["macro_f1"] - f1) < 1e-12
    assert "Panthera leo" in [r["class"] for r in species["per_class"]]


def test_gazelles_meet_at_family_level(dataset, tmp_path):
    run = _write(tmp_path / "gaz", DATASET)
    ev = build_evalset(dataset, run)
    fam = at_level(ev, "family")
    merge = {"gazellegrants": "gaz", "gazellethomsons": "gaz"}
    y_true, y_pred = _hand(run, _labels(), merge=merge)
    # Only the two gazelles merged by hand: gazelle-vs-gazelle errors disappear, as at
    # family level, where the gazelles' column is Bovidae.
    b = fam.classes.index("Bovidae")
    np.testing.assert_allclose(
        fam.probs[:, b], ev.probs[:, [ev.classes.index(c) for c in
                                      ("gazellegrants", "impala", "gazellethomsons")]].sum(1),
        rtol=1e-6)
    assert at_level(ev, "family") is fam  # memoised on the set
    assert sum(t == "gaz" and p == "gaz" for t, p in zip(y_true, y_pred)) > 0


def test_mapping_file_sums_probabilities_and_lists_unmapped(dataset, tmp_path):
    classes = ["leo_a", "leo_b", "zebra", "tree", "empty"]
    run = _write(tmp_path / "map", classes)
    (tmp_path / "map" / "mapping.csv").write_text(
        "model_label,dataset_class,note\nleo_a,lionmale,\nleo_b,lionmale,x\ntree,,\n")
    ev = build_evalset(dataset, run)  # the run folder's mapping.csv
    assert ev.classes[:4] == ["lionmale", "zebra", "tree", "empty"]
    rows = pd.Index(run.image_ids).get_indexer(ev.image_ids)
    np.testing.assert_allclose(ev.probs[:, 0], run.probs[rows, 0] + run.probs[rows, 1],
                               rtol=1e-6)
    info = label_space_summary(ev)
    assert info["kind"] == "mapped" and info["mapping"].endswith("mapping.csv")
    assert info["mapped"] == {"leo_a": "lionmale", "leo_b": "lionmale"}
    assert [e["class"] for e in info["extra_in_model"]] == ["tree"]
    truth = _labels()
    merge = {"leo_a": "lionmale", "leo_b": "lionmale"}
    keep = [t in ("lionmale", "zebra", "empty") for t in truth]
    _check(ev, *_hand(run, truth, keep=keep, merge=merge))


def test_compare_runs_with_different_class_lists(dataset, tmp_path):
    a = build_evalset(dataset, _write(tmp_path / "ca", DATASET, seed=5))
    b = build_evalset(dataset, _write(tmp_path / "cb", [*DATASET[:-1], "tree"], seed=6))
    out = compare(a, b, n_resamples=20)
    assert out["classes_left_out"] == ["lioncub", "tree"]
    assert [r["class"] for r in out["per_class"]] == [*DATASET[:-1], LEFT_OUT]
    assert out["n"] + out["n_left_out"] == len(a) and out["n_left_out"] > 0
    for kind in ("fixed", "broken"):  # rows in B survive the projection's dropped images
        rows = out[f"{kind}_rows_b"]
        assert len(rows) == out[f"n_{kind}"] == len(np.unique(rows))
        assert len(rows) == 0 or 0 <= rows.min() <= rows.max() < len(b)
    assert out["n_fixed"] + out["n_broken"] > 0


def _cli(capsys, *args) -> tuple[int, str]:
    code = analysis_main(list(args))
    return code, capsys.readouterr().err


def test_cli_report_mapping_template_and_switches(dataset_path, tmp_path, capsys):
    run_dir = tmp_path / "r"
    _write(run_dir, ["Panthera leo", "zebra", "empty", "tree"])
    code, err = _cli(capsys, "mapping-template", "--run", str(run_dir), "--dataset",
                     str(dataset_path), "--out", str(run_dir / "mapping.csv"), "-q")
    assert code == 0, err
    text = (run_dir / "mapping.csv").read_text()
    assert text.splitlines()[:3] == ["model_label,dataset_class", "Panthera leo,",
                                     "zebra,zebra"]  # three lions share the taxon: left empty
    (run_dir / "mapping.csv").write_text(text.replace("Panthera leo,", "Panthera leo,lionmale"))
    out = tmp_path / "rep.json"
    code, err = _cli(capsys, "report", "--dataset", str(dataset_path), "--run", str(run_dir),
                     "--json", str(out), "--resamples", "0", "-q", "--score-unknown",
                     "--taxon-level", "family")
    assert code == 0, err
    rep = json.loads(out.read_text())
    ls = rep["label_space"]
    assert ls["scored_as_errors"] and ls["taxon_level"] == "family"
    assert ls["mapped"] == {"Panthera leo": "lionmale"} and rep["image_level"]["n"] == N
    assert "not scorable by this model (scored as errors)" in err


@pytest.mark.parametrize("rows, reason", [
    ("zebra,zebra\nzebra,zebra\n", r"line 3: duplicate row for 'zebra' \(same as line 2\)"),
    ("zebra,zebra\nzebra,empty\n", r"line 3: 'zebra' mapped to two classes"),
    ("zebra,okapi\n", r"line 2: unknown dataset class 'okapi'"),
    ("okapi,zebra\n", r"line 2: unknown model label 'okapi'"),
])
def test_cli_bad_mapping_is_one_line_exit_2(dataset_path, tmp_path, capsys, rows, reason):
    import re

    run_dir = tmp_path / "r"
    _write(run_dir, ["zebra", "empty"])
    bad = tmp_path / "bad.csv"
    bad.write_text("model_label,dataset_class\n" + rows)
    code, err = _cli(capsys, "report", "--dataset", str(dataset_path), "--run", str(run_dir),
                     "--mapping", str(bad), "--resamples", "0", "-q")
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("analysis report: error: " + str(bad)) and re.search(reason, line)


def test_cli_no_class_in_common_is_one_line_exit_2(dataset_path, tmp_path, capsys):
    run_dir = tmp_path / "r"
    _write(run_dir, ["tree", "car"])
    code, err = _cli(capsys, "report", "--dataset", str(dataset_path), "--run", str(run_dir),
                     "--resamples", "0", "-q")
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(
        f"analysis report: error: {run_dir}: the run's classes [tree, car] (2) have no class "
        "in common with the dataset's")
    with pytest.raises(LabelSpaceError):
        build_evalset(load_dataset([dataset_path], cache=False), load_run(run_dir))
