"""analysis.metrics against scikit-learn, the policies, the capture bootstrap."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix,
                             f1_score, precision_recall_fscore_support)

from analysis.evalset import aggregate_sequences, evalset_from_arrays, targets
from analysis.metrics import bootstrap, confusion, confusion_for, evaluate, per_class, summary
from tests.synth import make_arrays

CASES = [(seed, c, absent) for seed in (0, 1, 2) for c in (2, 7, 61) for absent in (0, 3)
         if absent < c - 1]


def _single_label(seed: int, n_classes: int, absent: int, n: int = 3000):
    """y_true/y_pred where the last ``absent`` classes never occur in y_true (some are
    predicted, the very last is neither)."""
    rng = np.random.default_rng(seed)
    live = n_classes - absent
    y_true = rng.integers(0, live, n)
    noise = rng.integers(0, max(live, n_classes - 1), n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, noise)
    return y_true, y_pred


@pytest.mark.parametrize("seed,n_classes,absent", CASES)
def test_confusion_and_per_class_equal_sklearn(seed, n_classes, absent):
    y_true, y_pred = _single_label(seed, n_classes, absent)
    labels = np.arange(n_classes)
    cm = confusion(y_true, y_pred, n_classes)
    np.testing.assert_array_equal(cm, confusion_matrix(y_true, y_pred, labels=labels))
    table = per_class(cm, [f"c{i}" for i in labels])
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                 zero_division=0)
    np.testing.assert_allclose(table["precision"], p, rtol=0, atol=1e-12)
    np.testing.assert_allclose(table["recall"], r, rtol=0, atol=1e-12)
    np.testing.assert_allclose(table["f1"], f, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(table["support"], s)
    assert len(table) == n_classes  # absent classes keep their rows


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("seed,n_classes,absent", CASES)
def test_summary_equals_sklearn(seed, n_classes, absent):
    y_true, y_pred = _single_label(seed, n_classes, absent)
    got = summary(confusion(y_true, y_pred, n_classes))
    assert got["n"] == len(y_true)
    assert got["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred),
                                                     abs=1e-12)
    # labels=None: sklearn's default label set (classes in truth or predictions).
    assert got["macro_f1"] == pytest.approx(
        f1_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-12)
    assert got["weighted_f1"] == pytest.approx(
        f1_score(y_true, y_pred, average="weighted", zero_division=0), abs=1e-12)


def test_macro_f1_ignores_classes_absent_from_truth_and_predictions():
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 1, 1, 1])
    f1_two = summary(confusion(y_true, y_pred, 2))["macro_f1"]
    assert summary(confusion(y_true, y_pred, 50))["macro_f1"] == f1_two
    # ...but a predicted-only class counts (F1 = 0 for it).
    y_pred2 = np.array([0, 2, 1, 1])
    assert summary(confusion(y_true, y_pred2, 3))["macro_f1"] == pytest.approx(
        f1_score(y_true, y_pred2, average="macro", zero_division=0), abs=1e-12)


def test_empty_and_bad_inputs():
    cm = confusion(np.array([], int), np.array([], int), 3)
    assert cm.shape == (3, 3) and cm.sum() == 0
    assert summary(cm) == {"n": 0, "accuracy": 0.0, "balanced_accuracy": 0.0, "macro_f1": 0.0,
                           "weighted_f1": 0.0}
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 3\)"):
        confusion(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="shape"):
        confusion(np.array([0, 1]), np.array([0]), 3)
    with pytest.raises(ValueError, match="class names"):
        per_class(np.zeros((3, 3), int), ["a", "b"])


@pytest.mark.parametrize("seed", [0, 1])
def test_policies_coincide_on_single_label_data(seed):
    probs, y_true, _ = make_arrays(2000, 9, seed=seed)
    ev = evalset_from_arrays(probs, y_true)
    t_set, p_set = targets(ev, policy="set")
    t_pri, p_pri = targets(ev, policy="primary")
    np.testing.assert_array_equal(t_set, t_pri)
    np.testing.assert_array_equal(p_set, p_pri)
    a, b = evaluate(ev, policy="set", n_resamples=0), evaluate(ev, policy="primary",
                                                               n_resamples=0)
    assert a["macro_f1"] == b["macro_f1"] and a["per_class"] == b["per_class"]


def test_set_policy_charges_the_most_probable_label():
    probs = np.array([[0.1, 0.6, 0.3],    # labels {0, 1}: predicted 1 is in the set: correct
                      [0.2, 0.1, 0.7],    # labels {0, 1}: wrong, charged to 0 (0.2 > 0.1)
                      [0.1, 0.3, 0.6]])   # labels {0, 1}: wrong, charged to 1 (0.3 > 0.1)
    labels = np.array([[1, 1, 0]] * 3, bool)
    ev = evalset_from_arrays(probs, labels, primary=np.zeros(3, int))
    y_true, y_pred = targets(ev, policy="set")
    assert y_true.tolist() == [1, 0, 1] and y_pred.tolist() == [1, 2, 2]
    y_true, _ = targets(ev, policy="primary")
    assert y_true.tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="policy"):
        targets(ev, policy="any")


def test_evaluate_shape_and_values():
    probs, y_true, _ = make_arrays(3000, 6, seed=3)
    meta = pd.DataFrame({"image_id": [f"i{k}" for k in range(3000)],
                         "seq_id": np.repeat(np.arange(1000), 3).astype(str)})
    ev = evalset_from_arrays(probs, y_true, meta=meta)
    out = evaluate(ev, n_resamples=50)
    ref = f1_score(y_true, probs.argmax(1), average="macro", zero_division=0)
    assert out["macro_f1"] == pytest.approx(ref, abs=1e-12)
    lo, hi = out["macro_f1_ci"]
    assert lo <= out["macro_f1"] <= hi
    assert [r["class"] for r in out["per_class"]] == ev.classes
    assert set(out) >= {"n", "accuracy", "balanced_accuracy", "macro_f1", "macro_f1_ci",
                        "weighted_f1", "per_class"}
    assert set(out["per_class"][0]) == {"class", "precision", "recall", "f1", "f1_ci",
                                        "support"}
    seq = evaluate(ev, level="sequence", aggregation="vote", n_resamples=20)
    assert seq["n"] == 1000 and seq["aggregation"] == "vote"
    with pytest.raises(ValueError, match="level"):
        evaluate(ev, level="frame")


def test_aggregate_sequences_mean_max_vote_and_label_union():
    probs = np.array([[0.9, 0.1, 0.0], [0.3, 0.7, 0.0],   # capture a
                      [0.2, 0.2, 0.6]], np.float32)        # capture b
    labels = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], bool)
    meta = pd.DataFrame({"image_id": ["a1", "a2", "b1"], "seq_id": ["a", "a", "b"]})
    ev = evalset_from_arrays(probs, labels, meta=meta, image_ids=np.array(["a1", "a2", "b1"]))
    mean = aggregate_sequences(ev, how="mean")
    np.testing.assert_allclose(mean.probs, [[0.6, 0.4, 0], [0.2, 0.2, 0.6]], atol=1e-6)
    assert mean.labels.tolist() == [[True, True, False], [False, False, True]]
    assert mean.image_ids.tolist() == ["a1", "b1"] and mean.meta["n_frames"].tolist() == [2, 1]
    mx = aggregate_sequences(ev, how="max")
    np.testing.assert_allclose(mx.probs[0], np.array([0.9, 0.7, 0]) / 1.6, atol=1e-6)
    vote = aggregate_sequences(ev, how="vote")
    np.testing.assert_allclose(vote.probs, [[0.5, 0.5, 0], [0, 0, 1]])
    with pytest.raises(ValueError, match="aggregation"):
        aggregate_sequences(ev, how="median")


def test_aggregate_sequences_handles_scattered_frames():
    rng = np.random.default_rng(0)
    probs, y, _ = make_arrays(600, 5, seed=1)
    seq = rng.integers(0, 150, 600).astype(str)
    ev = evalset_from_arrays(probs, y, meta=pd.DataFrame({"image_id": np.arange(600).astype(str),
                                                          "seq_id": seq}))
    agg = aggregate_sequences(ev, how="mean")
    ref = pd.DataFrame(probs).groupby(seq, sort=False).mean()
    np.testing.assert_allclose(agg.probs, ref.loc[agg.meta["seq_id"]].to_numpy(), atol=1e-6)
    assert len(agg) == len(np.unique(seq))


def _bootstrap_coverage(n_reps: int, group_level: bool) -> float:
    """Share of 95 % intervals that contain the population macro F1 (captures of 3 frames
    whose frames share truth and mostly share the prediction: strongly correlated)."""
    rng = np.random.default_rng(42)
    c, pop_caps = 5, 200_000
    truth = rng.choice(c, pop_caps, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    cap_pred = np.where(rng.random(pop_caps) < 0.75, truth, rng.integers(0, c, pop_caps))
    frame_pred = np.where(rng.random((pop_caps, 3)) < 0.9, cap_pred[:, None],
                          rng.integers(0, c, (pop_caps, 3)))
    y_true_pop = np.repeat(truth, 3)
    y_pred_pop = frame_pred.reshape(-1)
    target = summary(confusion(y_true_pop, y_pred_pop, c))["macro_f1"]
    hits = 0
    for rep in range(n_reps):
        caps = rng.integers(0, pop_caps, 400)
        rows = (caps[:, None] * 3 + np.arange(3)).reshape(-1)
        groups = np.repeat(np.arange(400), 3) if group_level else None
        ci = bootstrap(y_true_pop[rows], y_pred_pop[rows], groups, c, n_resamples=300,
                       seed=rep)["macro_f1_ci"]
        hits += ci[0] <= target <= ci[1]
    return hits / n_reps


def test_capture_bootstrap_covers_at_nominal_rate():
    # 200 reps: binomial SE of the coverage is 1.5 points; accept 0.89..0.99.
    cov = _bootstrap_coverage(200, group_level=True)
    assert 0.89 <= cov <= 0.99, cov


def test_image_bootstrap_undercovers_correlated_frames():
    # Why captures are resampled: ignoring the correlation gives too-narrow intervals.
    assert _bootstrap_coverage(100, group_level=False) < 0.85


def test_bootstrap_interval_contains_estimate_and_is_reproducible():
    probs, y_true, _ = make_arrays(2000, 4, seed=5)
    y_pred = probs.argmax(1)
    groups = np.arange(2000) // 2
    a = bootstrap(y_true, y_pred, groups, 4, n_resamples=100, seed=7)
    b = bootstrap(y_true, y_pred, groups, 4, n_resamples=100, seed=7)
    np.testing.assert_array_equal(a["f1_ci"], b["f1_ci"])
    f1 = per_class(confusion(y_true, y_pred, 4), list("abcd"))["f1"].to_numpy()
    assert np.all((a["f1_ci"][:, 0] <= f1 + 1e-9) & (f1 - 1e-9 <= a["f1_ci"][:, 1]))
    assert a["f1_ci"].shape == (4, 2)
    empty = bootstrap(np.array([], int), np.array([], int), None, 4)
    assert np.isnan(empty["macro_f1_ci"]).all()


def test_confusion_for_uses_cached_cells_and_filters():
    probs, y_true, _ = make_arrays(3000, 7, seed=9)
    labels = np.zeros((3000, 7), bool)
    labels[np.arange(3000), y_true] = True
    labels[::10, 3] = True  # some two-species images
    ev = evalset_from_arrays(probs, labels, primary=y_true)
    mask = np.random.default_rng(0).random(3000) < 0.4
    for policy in ("set", "primary"):
        t, p = targets(ev, policy=policy)
        np.testing.assert_array_equal(confusion_for(ev, policy=policy, mask=mask),
                                      confusion_matrix(t[mask], p[mask], labels=range(7)))
        np.testing.assert_array_equal(confusion_for(ev, policy=policy), confusion(t, p, 7))
        np.testing.assert_array_equal(confusion(t, p, 7, mask=mask),
                                      confusion_for(ev, policy=policy, mask=mask))
    sub = ev.subset(mask)
    assert "codes:set" in sub._cache  # carried along, not recomputed
    np.testing.assert_array_equal(confusion_for(sub), confusion_for(ev, mask=mask))


@pytest.mark.parametrize("n_classes", [3, 61, 64, 130])
def test_sequence_label_union_matches_groupby(n_classes):
    rng = np.random.default_rng(n_classes)
    n = 2000
    labels = rng.random((n, n_classes)) < 0.03
    labels[np.arange(n), rng.integers(0, n_classes, n)] = True
    seq = rng.integers(0, 700, n).astype(str)  # scattered frames
    probs = np.full((n, n_classes), 1 / n_classes, np.float32)
    ev = evalset_from_arrays(probs, labels, meta=pd.DataFrame({"image_id": seq, "seq_id": seq}))
    for how in ("mean", "max"):
        agg = aggregate_sequences(ev, how=how)
        ref = pd.DataFrame(labels).groupby(seq).any().loc[agg.meta["seq_id"]].to_numpy()
        np.testing.assert_array_equal(agg.labels, ref)
        np.testing.assert_allclose(agg.probs.sum(1), 1, atol=1e-5)


def test_bootstrap_does_not_depend_on_class_order():
    # Issue 17 case 9: the same predictions under a permuted class order (a manifest listing
    # the classes differently) give the same intervals, class for class.
    probs, y_true, _ = make_arrays(3000, 6, seed=11)
    y_pred = probs.argmax(1)
    groups = np.arange(3000) // 3
    perm = np.array([4, 2, 5, 0, 3, 1])  # old class k is new class perm[k]
    a = bootstrap(y_true, y_pred, groups, 6, n_resamples=200, seed=3)
    b = bootstrap(perm[y_true], perm[y_pred], groups, 6, n_resamples=200, seed=3)
    np.testing.assert_allclose(a["macro_f1_ci"], b["macro_f1_ci"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(a["accuracy_ci"], b["accuracy_ci"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(a["f1_ci"], b["f1_ci"][perm], rtol=0, atol=1e-12)


def test_evaluate_intervals_do_not_depend_on_manifest_class_order():
    probs, y_true, _ = make_arrays(2000, 5, seed=12)
    classes = ["zebra", "lion", "gazelle", "empty", "hyena"]
    seq = pd.Series(np.arange(2000) // 2).astype(str)
    meta = pd.DataFrame({"image_id": [f"i{i}" for i in range(2000)], "seq_id": seq})
    perm = np.array([3, 0, 4, 1, 2])
    inv = np.argsort(perm)
    ev_a = evalset_from_arrays(probs, y_true, classes=classes, meta=meta)
    ev_b = evalset_from_arrays(probs[:, inv], perm[y_true], classes=[classes[i] for i in inv],
                               meta=meta)
    ra, rb = (evaluate(ev, n_resamples=200) for ev in (ev_a, ev_b))
    np.testing.assert_allclose(ra["macro_f1_ci"], rb["macro_f1_ci"], rtol=0, atol=1e-12)
    f1_a = {r["class"]: r["f1_ci"] for r in ra["per_class"]}
    f1_b = {r["class"]: r["f1_ci"] for r in rb["per_class"]}
    for name in classes:
        np.testing.assert_allclose(f1_a[name], f1_b[name], rtol=0, atol=1e-12)


@pytest.mark.parametrize("base", [37, 3722, 3721 ** 2 + 1])  # 1 run; 2 runs of 61 classes
def test_capture_patterns_are_the_multisets_of_codes(base):
    """The bootstrap groups captures by the multiset of their frames' codes: frames in
    capture order (one pass) and shuffled (the sorting path) give the same patterns, equal to
    grouping the sorted tuples by hand, numbered by first capture."""
    from analysis.metrics import _group_patterns

    rng = np.random.default_rng(base)
    sizes = rng.integers(1, 4, 500)
    groups = np.repeat(np.arange(len(sizes)), sizes)
    code = rng.choice(rng.integers(1, base, 6), len(groups))  # few distinct codes: repeats
    want = pd.factorize(pd.Series([tuple(sorted(code[groups == g]))
                                   for g in range(len(sizes))]))[0]
    np.testing.assert_array_equal(_group_patterns(code, base, groups), want)
    perm = rng.permutation(len(groups))
    np.testing.assert_array_equal(_group_patterns(code[perm], base, groups[perm]), want)
    assert want.max() + 1 < len(sizes) / 2  # patterns do compress the captures
