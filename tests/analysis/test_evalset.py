"""analysis.evalset: joining a run with a COCO-CT dataset, corrections, subsets."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.evalset import (CorrectionsError, EvalSet, build_evalset, capture_codes,
                              evalset_from_arrays, targets)
from analysis.labelspace import LabelSpaceError
from analysis.metrics import confusion, evaluate, summary
from data.cct import load_dataset
from data.runs import PredictionsError, load_run, write_run

CATEGORIES = {0: "empty", 5: "zebra", 19: "gazellethomsons", 47: "wildebeest"}
# image id -> (seq, frame, labels in annotation order)
IMAGES = {
    "s1a": ("S1", 1, ["zebra"]), "s1b": ("S1", 2, ["zebra"]),
    "s2a": ("S2", 1, ["zebra", "wildebeest"]), "s2b": ("S2", 2, ["zebra", "wildebeest"]),
    "s3a": ("S3", 1, ["empty"]), "s3b": ("S3", 2, ["empty"]), "s3c": ("S3", 3, ["empty"]),
    "s4a": ("S4", 1, ["gazellethomsons"]),
    "s5a": ("S5", 1, []),  # no annotation: not evaluable
}
# Manifest class order differs from the dataset's (ascending id) on purpose.
RUN_CLASSES = ["wildebeest", "zebra", "empty", "gazellethomsons"]


def _write_cct(path):
    images, anns = [], []
    for iid, (seq, frame, labels) in IMAGES.items():
        images.append({"id": iid, "file_name": f"{iid}.JPG", "seq_id": seq, "frame_num": frame,
                       "seq_num_frames": 3, "location": "D04", "datetime":
                       "2010-07-18 16:26:14", "width": 10, "height": 10, "corrupt": False})
        name_to_id = {v: k for k, v in CATEGORIES.items()}
        for lab in labels:
            anns.append({"id": f"{iid}-{lab}", "image_id": iid, "seq_id": seq, "season": "S1",
                         "category_id": name_to_id[lab], "sequence_level_annotation": True,
                         "count": "1"})
    doc = {"info": {"version": "test"},
           "categories": [{"id": k, "name": v} for k, v in CATEGORIES.items()],
           "images": images, "annotations": anns}
    path.write_text(json.dumps(doc))
    return path


PROBS = {  # in RUN_CLASSES order: wildebeest, zebra, empty, gazellethomsons
    "s1a": [0.1, 0.8, 0.05, 0.05], "s1b": [0.1, 0.2, 0.6, 0.1],          # zebra; empty (wrong)
    "s2a": [0.7, 0.2, 0.05, 0.05], "s2b": [0.1, 0.2, 0.1, 0.6],          # wildebeest (ok: set)
    "s3a": [0.0, 0.0, 1.0, 0.0], "s3b": [0.0, 0.1, 0.9, 0.0], "s3c": [0.1, 0.0, 0.9, 0.0],
    "s4a": [0.1, 0.1, 0.1, 0.7], "s5a": [0.0, 0.0, 1.0, 0.0],
}


@pytest.fixture
def dataset(tmp_path):
    return load_dataset([_write_cct(tmp_path / "tiny.json")])


def _run(tmp_path, ids=None, classes=RUN_CLASSES, name="run"):
    ids = list(PROBS) if ids is None else ids
    probs = np.array([PROBS[i] for i in ids], np.float32)
    write_run(tmp_path / name, manifest={"classes": classes, "dataset": {}, "model": {},
                                         "training": {}, "software": {}},
              image_ids=ids, probs=probs, split="test")
    return load_run(tmp_path / name)


def test_build_aligns_rows_in_dataset_order(dataset, tmp_path):
    shuffled = ["s4a", "s2b", "s1a", "s3c", "s1b", "s2a", "s3a", "s3b", "s5a"]
    ev = build_evalset(dataset, _run(tmp_path, shuffled))
    assert isinstance(ev, EvalSet) and ev.classes == RUN_CLASSES
    assert ev.image_ids.tolist() == [i for i in IMAGES if i != "s5a"]  # unlabeled left out
    np.testing.assert_array_equal(ev.probs[0], np.float32(PROBS["s1a"]))
    assert ev.labels[ev.image_ids.tolist().index("s2a")].tolist() == [True, True, False, False]
    assert ev.primary[ev.image_ids.tolist().index("s2a")] == RUN_CLASSES.index("zebra")
    assert list(ev.meta.columns) == ["image_id", "file_name", "seq_id", "frame_num",
                                     "seq_num_frames", "location", "season", "day_night",
                                     "datetime", "split"]
    assert ev.meta["image_id"].tolist() == ev.image_ids.tolist()
    assert ev.missing == []


def test_missing_ids_are_reported_not_fatal(dataset, tmp_path):
    ev = build_evalset(dataset, _run(tmp_path, ["s1a", "s3a", "s4a"]))
    assert ev.missing == ["s1b", "s2a", "s2b", "s3b", "s3c", "s5a"]
    assert len(ev) == 3


def test_unknown_ids_and_no_class_in_common_are_refused(dataset, tmp_path):
    run = _run(tmp_path)
    run.image_ids = np.array(list(run.image_ids[:-1]) + ["ghost"], dtype=object)
    with pytest.raises(PredictionsError, match=r"column 'image_id': 1 id\(s\) not in the "
                                               r"dataset, e.g. row 8: 'ghost'"):
        build_evalset(dataset, run)
    # Differing class lists are accepted (tests/analysis/test_labelspace_eval.py); none in
    # common is refused.
    other = _run(tmp_path, classes=["lion", "tree", "cheetah", "bat"], name="lion")
    with pytest.raises(LabelSpaceError, match=r"lion: the run's classes \[lion, tree, cheetah"
                                              r", bat\] \(4\) have no class in common"):
        build_evalset(dataset, other)


def test_set_and_primary_policies_on_multi_species_images(dataset, tmp_path):
    ev = build_evalset(dataset, _run(tmp_path))
    ids = ev.image_ids.tolist()
    y_true, y_pred = targets(ev, policy="set")
    i = ids.index("s2a")   # wildebeest predicted, {zebra, wildebeest} annotated: correct
    assert y_true[i] == y_pred[i] == RUN_CLASSES.index("wildebeest")
    j = ids.index("s2b")   # gazelle predicted: charged to zebra (0.2 > 0.1)
    assert (y_true[j], y_pred[j]) == (RUN_CLASSES.index("zebra"), 3)
    y_true_p, _ = targets(ev, policy="primary")
    assert y_true_p[i] == RUN_CLASSES.index("zebra")  # first annotation only


def test_corrections_change_metrics_without_rerunning(dataset, tmp_path):
    run = _run(tmp_path)
    before = build_evalset(dataset, run)
    acc0 = summary(confusion(*targets(before, policy="set"), 4))["accuracy"]
    # s1b is really empty (the zebra left), s2b shows a gazelle.
    fixes = pd.DataFrame({"image_id": ["s1b", "s2b"],
                          "labels": [("empty",), ("gazellethomsons", "zebra")]})
    after = build_evalset(dataset, run, corrections=fixes)
    acc1 = summary(confusion(*targets(after, policy="set"), 4))["accuracy"]
    assert acc0 == pytest.approx(6 / 8) and acc1 == pytest.approx(8 / 8)
    k = after.image_ids.tolist().index("s2b")
    assert after.primary[k] == RUN_CLASSES.index("gazellethomsons")
    assert after.labels[k].tolist() == [False, True, False, True]
    assert before.labels[k].tolist() == [True, True, False, False]  # input not mutated
    assert evaluate(after, n_resamples=0)["accuracy"] == acc1


def test_empty_tuple_correction_removes_image(dataset, tmp_path):
    fixes = pd.DataFrame({"image_id": ["s1b", "s3a"], "labels": [(), ["empty"]]})
    ev = build_evalset(dataset, _run(tmp_path), corrections=fixes)
    assert "s1b" not in ev.image_ids.tolist() and len(ev) == 7


@pytest.mark.parametrize("fixes,match", [
    (pd.DataFrame({"image_id": ["s1a"], "labels": [("unicorn",)]}),
     r"image 's1a' names unknown class 'unicorn'"),
    (pd.DataFrame({"image_id": ["s1a"], "labels": [3]}), r"field 'labels' of image 's1a'"),
    (pd.DataFrame({"image_id": ["s1a"]}), r"missing column 'labels'"),
])
def test_bad_corrections(dataset, tmp_path, fixes, match):
    with pytest.raises(CorrectionsError, match=match):
        build_evalset(dataset, _run(tmp_path), corrections=fixes)


def test_subset_slices_everything_and_keeps_cached_targets(dataset, tmp_path):
    ev = build_evalset(dataset, _run(tmp_path))
    y_true, y_pred = targets(ev, policy="set")
    mask = ev.meta["seq_id"].astype(str).isin(["S2", "S3"]).to_numpy()
    sub = ev.subset(mask)
    assert sub.image_ids.tolist() == ["s2a", "s2b", "s3a", "s3b", "s3c"]
    assert len(sub.meta) == len(sub.probs) == len(sub.labels) == len(sub.primary) == 5
    np.testing.assert_array_equal(targets(sub, policy="set")[0], y_true[mask])
    codes, n = capture_codes(sub)
    assert n == 2 and codes.tolist() == [0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="mask has shape"):
        ev.subset(mask[:3])


def test_real_fixture_slice(serengeti_slice, tmp_path):
    ds = load_dataset([serengeti_slice])
    ids = ds.images["image_id"].tolist()
    probs = np.full((len(ids), len(ds.classes)), 1 / len(ds.classes), np.float32)
    write_run(tmp_path / "real", manifest={"classes": ds.classes, "dataset": {}, "model": {},
                                           "training": {}, "software": {}},
              image_ids=ids[:-2], probs=probs[:-2], split="test")
    ev = build_evalset(ds, load_run(tmp_path / "real"))
    assert ev.missing == ids[-2:]
    mongoose = ev.meta["seq_id"].astype(str).str.endswith("#43").to_numpy()
    assert mongoose.sum() == 3
    assert ev.labels[mongoose][:, ev.class_index("mongoose")].all()


@pytest.mark.slow
def test_synthetic_run_over_the_demo_imitates_a_model(demo_small, synthetic_run):
    """tests/synth.py writes a valid run whose errors follow demo_truth.json."""
    truth = json.loads(demo_small.truth.read_text())["images"]
    ev = build_evalset(load_dataset(demo_small.json_paths), load_run(synthetic_run))
    assert len(ev) > 300
    unreadable = {u["image_id"] for u in load_run(synthetic_run).manifest["unreadable"]}
    assert set(ev.missing) == unreadable  # missing/truncated frames have no prediction
    phen = [truth[i]["phenomena"] for i in ev.image_ids]
    inherited = np.array(["inherited_label" in p for p in phen])
    empty = ev.class_index("empty")
    assert inherited.any()
    # Frames that only inherited their label look empty to the "model" most of the time...
    assert (ev.pred[inherited] == empty).mean() > 0.6
    # ...so they are errors under both policies, while ordinary frames are mostly right.
    y_true, y_pred = targets(ev, policy="set")
    assert (y_true != y_pred)[inherited].mean() > 0.6
    plain = np.array([not p or p == ["night"] for p in phen])
    assert (y_true == y_pred)[plain].mean() > 0.7


def _seq_column(kind, v, missing):
    import pyarrow as pa

    names = [None if m else f"S{x}" for x, m in zip(v, missing)]
    if kind == "no_seq":
        return None
    if kind in ("int", "sorted_int"):
        return pd.Series(np.sort(v) if kind == "sorted_int" else v)
    if kind == "float_nan":
        return pd.Series(np.where(missing, np.nan, np.sort(v) * 1.0))
    return pd.Series(names, dtype={"str": "str", "object": object,
                                   "arrow": pd.ArrowDtype(pa.string())}[kind])


@pytest.mark.parametrize("kind", ["int", "sorted_int", "float_nan", "str", "object",
                                  "arrow", "no_seq"])
def test_capture_codes_equal_pandas_factorize(kind):
    # Codes come from runs of adjacent equal ids (only run heads are hashed, sorted numeric ids
    # not at all): the result must be pd.factorize's, first-appearance order and NA included.
    rng = np.random.default_rng(7)
    for _ in range(25):
        n = int(rng.integers(1, 40))
        v = np.repeat(rng.integers(0, 6, n), rng.integers(1, 4, n))[:n]
        missing = rng.random(n) < 0.2
        seq = _seq_column(kind, v, missing)
        ids = np.array([f"i{x}" for x in v], dtype=object)
        meta = pd.DataFrame({"image_id": ids} if seq is None else {"image_id": ids, "seq_id": seq})
        ev = EvalSet(classes=["a"], image_ids=ids, probs=np.ones((n, 1), np.float32),
                     labels=np.ones((n, 1), bool), primary=np.zeros(n, np.int64), meta=meta)
        codes, n_groups = capture_codes(ev)
        want, uniques = pd.factorize(pd.Series(ids) if seq is None else seq)
        na = np.flatnonzero(want < 0)
        want[na] = len(uniques) + np.arange(len(na))
        np.testing.assert_array_equal(codes, want)
        assert n_groups == len(uniques) + len(na)


def test_pred_prob_is_the_row_maximum_and_follows_subsets():
    rng = np.random.default_rng(1)
    probs = rng.random((300_000, 5)).astype(np.float32)  # more than one block of rows
    probs.flags.writeable = False
    ev = EvalSet(classes=list("abcde"), image_ids=np.arange(len(probs)).astype(str),
                 probs=probs, labels=np.eye(5, dtype=bool)[rng.integers(0, 5, len(probs))],
                 primary=np.zeros(len(probs), np.int64),
                 meta=pd.DataFrame({"seq_id": np.arange(len(probs))}))
    np.testing.assert_array_equal(ev.pred, probs.argmax(axis=1))
    np.testing.assert_array_equal(ev.pred_prob, probs.max(axis=1))
    sub = ev.subset(np.arange(len(probs)) % 3 == 0)
    np.testing.assert_array_equal(sub.pred_prob, probs[::3].max(axis=1))
    fresh = EvalSet(classes=ev.classes, image_ids=ev.image_ids, probs=probs, labels=ev.labels,
                    primary=ev.primary, meta=ev.meta)
    fresh._cache["pred"] = ev.pred  # cached alone: the probability is looked up
    np.testing.assert_array_equal(fresh.pred_prob, probs.max(axis=1))


def test_memoised_keeps_results_by_argument_and_returns_copies():
    """``memoised``: one computation per distinct argument set (defaults applied), a copy per
    call, nothing kept for arguments that cannot name an entry (an array; an unnamed set)."""
    import threading
    import time

    from analysis.evalset import memoised

    calls = []

    @memoised
    def table(ev, *, k: int = 2, other=None):
        calls.append(k)
        time.sleep(0.05)
        return {"k": k, "rows": [1, 2]}

    ev = evalset_from_arrays(np.full((4, 2), 0.5, np.float32), np.array([0, 1, 0, 1]))
    first = table(ev)
    first["rows"].append(3)                                  # a caller's edit stays its own
    assert table(ev, k=2) == {"k": 2, "rows": [1, 2]} and calls == [2]
    assert table(ev, k=3)["k"] == 3 and calls == [2, 3]
    table(ev, other=np.arange(3))                            # an array: computed afresh
    unnamed = evalset_from_arrays(np.full((4, 2), 0.5, np.float32), np.array([0, 1, 0, 1]))
    table(ev, other=unnamed)                                 # no origin: computed afresh
    assert calls == [2, 3, 2, 2]
    named = evalset_from_arrays(np.full((4, 2), 0.5, np.float32), np.array([0, 1, 0, 1]))
    named.origin = ("run", 1)
    table(ev, k=5, other=named), table(ev, k=5, other=named)
    assert calls == [2, 3, 2, 2, 5]
    threads = [threading.Thread(target=table, args=(ev,), kwargs={"k": 9}) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls.count(9) == 1                               # concurrent callers wait for one
