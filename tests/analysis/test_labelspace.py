"""Label spaces: alignment, mapping files, probability mapping, taxonomic roll-up, not scorable."""
from __future__ import annotations

import doctest

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

import analysis.labelspace as labelspace_module
from analysis.labelspace import (LabelSpaceError, align, map_probs, not_scorable, read_mapping,
                                 rollup, write_mapping_template)
from data.taxonomy import load_taxonomy

DATASET = ["empty", "zebra", "lionfemale", "lionmale", "lioncub", "gazellegrants",
           "gazellethomsons", "wildebeest"]


def _probs(rng, n, k):
    p = rng.random((n, k)) ** 3
    return p / p.sum(axis=1, keepdims=True)


def _labels(rng, n, c):
    y = np.zeros((n, c), dtype=bool)
    y[np.arange(n), rng.integers(0, c, n)] = True
    extra = rng.random(n) < 0.2                      # some multi-species images
    y[np.flatnonzero(extra), rng.integers(0, c, extra.sum())] = True
    return y


def _set_targets(probs, labels):
    """The set policy of analysis.evalset.targets: y_true = y_pred when it is in the set."""
    y_pred = probs.argmax(axis=1)
    hit = labels[np.arange(len(y_pred)), y_pred]
    masked = np.where(labels, probs, -np.inf)
    y_true = np.where(hit, y_pred, masked.argmax(axis=1))
    return y_true, y_pred


# -- align ----------------------------------------------------------------------------------------
def test_align_identical_and_permutation():
    assert align(DATASET, DATASET).kind == "identical"
    rng = np.random.default_rng(0)
    run = list(np.array(DATASET)[rng.permutation(len(DATASET))])
    a = align(run, DATASET)
    assert a.kind == "permutation" and not a.unknown_to_model and not a.extra_in_model
    assert [run[i] for i in a.run_index] == DATASET
    assert [DATASET[i] for i in a.dataset_index] == run
    probs = _probs(rng, 50, len(run))
    aligned = a.probs(probs)
    # Hand-aligned: column j of the dataset is the run's column named DATASET[j].
    hand = np.stack([probs[:, run.index(c)] for c in DATASET], axis=1)
    np.testing.assert_array_equal(aligned, hand)
    labels = _labels(rng, 50, len(DATASET))
    yt, yp = _set_targets(aligned, a.labels(labels))
    ht, hp = _set_targets(hand, labels)
    assert accuracy_score(yt, yp) == pytest.approx(accuracy_score(ht, hp), abs=1e-12)


def test_align_subset_scores_unknown_classes_as_unpredictable():
    run = ["zebra", "empty", "wildebeest"]
    a = align(run, DATASET)
    assert a.kind == "subset"
    assert a.unknown_to_model == tuple(c for c in DATASET if c not in run)
    assert a.predictable.tolist() == [c in run for c in DATASET]
    rng = np.random.default_rng(1)
    probs = _probs(rng, 40, 3)
    aligned = a.probs(probs)
    assert aligned.shape == (40, len(DATASET))
    np.testing.assert_array_equal(aligned[:, ~a.predictable], 0)
    np.testing.assert_array_equal(aligned[:, DATASET.index("zebra")], probs[:, 0])
    labels = _labels(rng, 40, len(DATASET))
    yt, yp = _set_targets(aligned, a.labels(labels))
    # By hand: predictions in run order renamed to dataset indices.
    hp = np.array([DATASET.index(run[k]) for k in probs.argmax(axis=1)])
    np.testing.assert_array_equal(yp, hp)
    assert f1_score(yt, yp, average="macro") == pytest.approx(
        f1_score(yt, hp, average="macro"), abs=1e-12)


def test_align_superset_keeps_extra_columns_as_errors():
    run = ["leopard", *DATASET[::-1], "cattle"]
    a = align(run, DATASET)
    assert a.kind == "superset" and a.extra_in_model == ("leopard", "cattle")
    assert a.classes == tuple(DATASET) + ("leopard", "cattle")
    rng = np.random.default_rng(2)
    probs = _probs(rng, 60, len(run))
    probs[:5] = 0
    probs[:5, 0] = 1                                   # five confident leopards: all wrong
    aligned, labels = a.probs(probs), a.labels(_labels(rng, 60, len(DATASET)))
    assert aligned.shape == labels.shape == (60, len(DATASET) + 2)
    np.testing.assert_allclose(aligned.sum(axis=1), 1)
    yt, yp = _set_targets(aligned, labels)
    assert (yp[:5] == len(DATASET)).all() and (yt[:5] != yp[:5]).all()
    hand = np.concatenate([np.stack([probs[:, run.index(c)] for c in DATASET], axis=1),
                           probs[:, [0, len(run) - 1]]], axis=1)
    ht, hp = _set_targets(hand, labels)
    assert accuracy_score(yt, yp) == pytest.approx(accuracy_score(ht, hp), abs=1e-12)


def test_align_refuses_disjoint_and_duplicates():
    with pytest.raises(LabelSpaceError, match=r"classes \[animal, human, vehicle\] \(3\) have "
                                              r"no class in common.*\[empty, zebra"):
        align(["animal", "human", "vehicle"], DATASET)
    with pytest.raises(LabelSpaceError, match="run's class list lists 'zebra' twice"):
        align(["zebra", "zebra"], DATASET)
    a = align(["zebra"], DATASET)
    with pytest.raises(LabelSpaceError, match="one column per run class"):
        a.probs(np.ones((2, 3)))


# -- mapping file ---------------------------------------------------------------------------------
MODEL = ["panthera leo", "equus quagga", "blank", "tree"]


def _mapping(tmp_path, body):
    path = tmp_path / "mapping.csv"
    path.write_text(body)
    return path


def test_read_mapping_ok(tmp_path):
    path = _mapping(tmp_path, "model_label,dataset_class,note\n"
                              "panthera leo,lionfemale,pride mostly females\n"
                              "equus quagga,zebra,\n\n"
                              "blank,empty,\n"
                              "tree,,not an animal\n")
    assert read_mapping(path, model_classes=MODEL, dataset_classes=DATASET) == {
        "panthera leo": "lionfemale", "equus quagga": "zebra", "blank": "empty"}


@pytest.mark.parametrize("body,match", [
    ("", r"mapping\.csv, line 1: the header must be 'model_label,dataset_class', got ''"),
    ("label,class\nblank,empty\n", r"mapping\.csv, line 1: the header must be"),
    ("model_label,dataset_class\nblank,empty\nlion,lionmale\n",
     r"mapping\.csv, line 3: unknown model label 'lion' \(not among the run's 4 classes\)"),
    ("model_label,dataset_class\nblank,empty\nequus quagga,zebras\n",
     r"mapping\.csv, line 3: unknown dataset class 'zebras'"),
    ("model_label,dataset_class\nblank,empty\ntree,\nblank,empty\n",
     r"mapping\.csv, line 4: duplicate row for 'blank' \(same as line 2\)"),
    ("model_label,dataset_class\npanthera leo,lionmale\nblank,empty\npanthera leo,lionfemale\n",
     r"mapping\.csv, line 4: 'panthera leo' mapped to two classes: 'lionfemale' here, "
     r"'lionmale' on line 2"),
    ("model_label,dataset_class\nblank\n", r"mapping\.csv, line 2: expected 2 fields"),
    ("model_label,dataset_class\n,empty\n", r"mapping\.csv, line 2: empty model_label"),
])
def test_read_mapping_refuses_bad_files(tmp_path, body, match):
    with pytest.raises(LabelSpaceError, match=match):
        read_mapping(_mapping(tmp_path, body), model_classes=MODEL, dataset_classes=DATASET)


def test_read_mapping_missing_file(tmp_path):
    with pytest.raises(LabelSpaceError, match=r"nope\.csv: cannot read the mapping file"):
        read_mapping(tmp_path / "nope.csv", model_classes=MODEL, dataset_classes=DATASET)


def test_mapping_template_round_trips(tmp_path):
    sn = "00000000-0000-0000-0000-000000000000"
    model = ["zebra", f"{sn};mammalia;artiodactyla;bovidae;eudorcas;thomsonii;thomson's gazelle",
             f"{sn};mammalia;carnivora;felidae;panthera;leo;lion",
             f"{sn};mammalia;artiodactyla;bovidae;;;bovid", f"{sn};;;;;;blank", "Nanger granti"]
    path = write_mapping_template(tmp_path / "m.csv", model, DATASET, taxonomy=load_taxonomy())
    mapping = read_mapping(path, model_classes=model, dataset_classes=DATASET)
    assert mapping == {"zebra": "zebra", model[1]: "gazellethomsons",
                       "Nanger granti": "gazellegrants"}
    lines = path.read_text().splitlines()
    assert lines[0] == "model_label,dataset_class" and len(lines) == len(model) + 1
    ident = write_mapping_template(tmp_path / "i.csv", model, DATASET)
    assert read_mapping(ident, model_classes=model, dataset_classes=DATASET) == {"zebra": "zebra"}


# -- map_probs -----------------------------------------------------------------------------------
def test_map_probs_sums_mapped_labels_and_keeps_unmapped():
    rng = np.random.default_rng(3)
    model = ["leo", "equus quagga", "lionmale", "tree", "blank", "car"]
    probs = _probs(rng, 30, len(model))
    mapping = {"leo": "lionfemale", "equus quagga": "zebra", "blank": "empty"}
    out, classes = map_probs(probs, model, mapping, DATASET)
    assert classes == DATASET + ["tree", "car"]
    expected = np.zeros((30, len(classes)))
    expected[:, DATASET.index("lionfemale")] = probs[:, 0]
    expected[:, DATASET.index("zebra")] = probs[:, 1]
    expected[:, DATASET.index("lionmale")] = probs[:, 2]    # identity without a mapping row
    expected[:, DATASET.index("empty")] = probs[:, 4]
    expected[:, len(DATASET)] = probs[:, 3]
    expected[:, len(DATASET) + 1] = probs[:, 5]
    np.testing.assert_allclose(out, expected, atol=1e-15)
    np.testing.assert_allclose(out.sum(axis=1), 1, atol=1e-12)
    many_to_one, classes = map_probs(probs, model, {"leo": "lionmale", "tree": "empty",
                                                    "car": "empty"}, DATASET)
    np.testing.assert_allclose(many_to_one[:, DATASET.index("lionmale")],
                               probs[:, 0] + probs[:, 2], atol=1e-15)
    np.testing.assert_allclose(many_to_one[:, 0], probs[:, 3] + probs[:, 5], atol=1e-15)
    assert classes == DATASET + ["equus quagga", "blank"]
    f16 = map_probs(probs.astype(np.float16), model, mapping, DATASET)[0]
    assert f16.dtype == np.float16


def test_map_probs_refuses_bad_input():
    with pytest.raises(LabelSpaceError, match="unknown model label 'x'"):
        map_probs(np.ones((1, 2)) / 2, ["a", "b"], {"x": "zebra"}, DATASET)
    with pytest.raises(LabelSpaceError, match="'a' to unknown dataset class 'zebras'"):
        map_probs(np.ones((1, 2)) / 2, ["a", "b"], {"a": "zebras"}, DATASET)
    with pytest.raises(LabelSpaceError, match="one column per model class"):
        map_probs(np.ones((1, 3)) / 3, ["a", "b"], {}, DATASET)


# -- rollup ---------------------------------------------------------------------------------------
def _metrics(probs, labels):
    yt, yp = _set_targets(probs, labels)
    return accuracy_score(yt, yp), f1_score(yt, yp, average="macro")


def test_rollup_species_level_equals_hand_merged_lions():
    rng = np.random.default_rng(4)
    probs, labels = _probs(rng, 300, len(DATASET)), _labels(rng, 300, len(DATASET))
    rp, ry, groups = rollup(probs, labels, DATASET, "species")
    assert groups == ["empty", "Equus quagga", "Panthera leo", "Nanger granti",
                      "Eudorcas thomsonii", "Connochaetes taurinus"]
    lions = [2, 3, 4]
    hand_p = np.column_stack([probs[:, 0], probs[:, 1], probs[:, lions].sum(axis=1),
                              probs[:, 5], probs[:, 6], probs[:, 7]])
    hand_y = np.column_stack([labels[:, 0], labels[:, 1], labels[:, lions].any(axis=1),
                              labels[:, 5], labels[:, 6], labels[:, 7]])
    np.testing.assert_allclose(rp, hand_p, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(ry, hand_y)
    acc, f1 = _metrics(rp, ry)
    hacc, hf1 = _metrics(hand_p, hand_y)
    assert acc == pytest.approx(hacc, abs=1e-12) and f1 == pytest.approx(hf1, abs=1e-12)
    # The merge changes the answer: lion-sex confusions are no longer errors.
    assert acc >= _metrics(probs, labels)[0]


def test_rollup_family_level_merges_gazelles():
    rng = np.random.default_rng(5)
    probs, labels = _probs(rng, 300, len(DATASET)), _labels(rng, 300, len(DATASET))
    rp, ry, groups = rollup(probs, labels, DATASET, "family")
    assert groups == ["empty", "Equidae", "Felidae", "Bovidae"]
    bovid = [5, 6, 7]                                         # both gazelles and wildebeest
    hand_p = np.column_stack([probs[:, 0], probs[:, 1], probs[:, [2, 3, 4]].sum(axis=1),
                              probs[:, bovid].sum(axis=1)])
    hand_y = np.column_stack([labels[:, 0], labels[:, 1], labels[:, [2, 3, 4]].any(axis=1),
                              labels[:, bovid].any(axis=1)])
    np.testing.assert_allclose(rp, hand_p, atol=1e-15)
    np.testing.assert_array_equal(ry, hand_y)
    acc, f1 = _metrics(rp, ry)
    hacc, hf1 = _metrics(hand_p, hand_y)
    assert acc == pytest.approx(hacc, abs=1e-12) and f1 == pytest.approx(hf1, abs=1e-12)
    # Only the gazelles, at genus level, stay apart (Nanger vs Eudorcas).
    assert rollup(probs, labels, DATASET, "genus")[2][3:5] == ["Nanger", "Eudorcas"]


def test_rollup_label_level_is_identity_and_checks_shapes():
    rng = np.random.default_rng(6)
    probs, labels = _probs(rng, 10, len(DATASET)), _labels(rng, 10, len(DATASET))
    rp, ry, groups = rollup(probs, labels, DATASET, "label")
    np.testing.assert_array_equal(rp, probs)
    np.testing.assert_array_equal(ry, labels)
    assert groups == DATASET
    with pytest.raises(LabelSpaceError, match="one column per class"):
        rollup(probs[:, :3], labels, DATASET, "species")
    with pytest.raises(ValueError, match="taxonomic level 'kingdom'"):
        rollup(probs, labels, DATASET, "kingdom")


# -- not_scorable ---------------------------------------------------------------------------------
def test_not_scorable():
    a = align(["empty", "zebra", "wildebeest"], DATASET)
    y = np.zeros((5, len(DATASET)), dtype=bool)
    y[0, DATASET.index("zebra")] = True                             # scorable
    y[1, DATASET.index("lionmale")] = True                          # not scorable
    y[2, [DATASET.index("lionmale"), DATASET.index("zebra")]] = True  # scorable (zebra)
    y[3, [DATASET.index("lioncub"), DATASET.index("gazellegrants")]] = True  # not scorable
    # y[4]: no label at all: not counted here
    assert not_scorable(y, a.predictable).tolist() == [False, True, False, True, False]
    with pytest.raises(LabelSpaceError, match="number of classes"):
        not_scorable(y, a.predictable[:-1])


def test_doctests():
    result = doctest.testmod(labelspace_module)
    assert result.attempted > 0 and result.failed == 0
