"""Known-answer tests for analysis.sequences: frame accuracy, capture metrics, suspects."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.evalset import aggregate_sequences, evalset_from_arrays, targets
from analysis.metrics import confusion, summary
from analysis.sequences import (SUSPECT_COLUMNS, frame_accuracy, level_summary, missed_species,
                                suspects)
from tests.synth import softmax


def planted_captures(*, empty: str = "empty", n_caps: int = 400, seed: int = 0):
    """Captures of 1-3 frames with planted inherited labels and missed second species.

    Classes: ``empty`` first, then s1..s5. s1 and s2 are annotated together in some captures
    (so they co-occur); in others s2 is truly there but only s1 is annotated (missed). Returns
    ``(ev, inherited_ids, missed_ids)``; distractors that must NOT come out: a single-frame
    capture the model calls empty, and confident s4 on s3 captures (s3/s4 never co-occur).
    """
    rng = np.random.default_rng(seed)
    classes = [empty, "s1", "s2", "s3", "s4", "s5"]
    rows, inherited, missed = [], [], []
    for cap in range(n_caps):
        kind = rng.choice(["empty", "plain", "inherit", "both", "missed", "lookalike",
                           "lone_empty"], p=[0.25, 0.3, 0.12, 0.08, 0.1, 0.1, 0.05])
        n_frames = 1 if kind == "lone_empty" else int(rng.integers(2, 4))
        species = {"both": 1, "missed": 1, "lookalike": 3}.get(kind, int(rng.integers(1, 6)))
        labels = [0] if kind == "empty" else [species, 2] if kind == "both" else [species]
        for f in range(1, n_frames + 1):
            image_id = f"cap{cap:03d}_f{f}"
            boost = np.zeros(len(classes))
            if kind == "empty":
                boost[0] = 5
            elif kind == "inherit" and f >= 2:
                boost[0] = 6  # the animal has left; the label stayed
                inherited.append(image_id)
            elif kind == "missed":
                boost[[1, 2]] = [3, 5]  # s2 dominates, only s1 annotated
                missed.append(image_id)
            elif kind == "lookalike":
                boost[[3, 4]] = [2, 5]  # confident s4, labelled s3: a misidentification
            elif kind == "lone_empty":
                boost[0] = 6  # one frame only: no other frame to inherit from
            else:
                boost[labels] = 5
            rows.append((image_id, f"cap{cap:03d}", f, n_frames, labels, boost))
    ids = np.array([r[0] for r in rows], dtype=object)
    logits = rng.normal(0, 0.3, (len(rows), len(classes))) + np.array([r[5] for r in rows])
    label_mat = np.zeros((len(rows), len(classes)), bool)
    for i, r in enumerate(rows):
        label_mat[i, r[4]] = True
    meta = pd.DataFrame({"image_id": ids, "seq_id": [r[1] for r in rows],
                         "frame_num": [r[2] for r in rows],
                         "seq_num_frames": [r[3] for r in rows], "split": "test"})
    ev = evalset_from_arrays(softmax(logits), label_mat, classes=classes, meta=meta,
                             image_ids=ids, primary=np.array([r[4][0] for r in rows]))
    return ev, set(inherited), set(missed)


@pytest.mark.parametrize("empty", ["empty", "blank"])
def test_suspects_recover_exactly_what_was_planted(empty):
    ev, inherited, missed = planted_captures(empty=empty)
    out = suspects(ev, empty_class=empty)
    assert list(out.columns) == SUSPECT_COLUMNS
    assert set(out.loc[out["kind"] == "inherited_label", "image_id"]) == inherited
    assert set(out.loc[out["kind"] == "missed_species", "image_id"]) == missed
    assert (np.diff(out["score"].to_numpy()) <= 0).all()
    assert out["score"].between(0, 1).all()
    inh = out[out["kind"] == "inherited_label"]
    assert (inh["suggested"] == empty).all()
    assert (out.loc[out["kind"] == "missed_species", "suggested"] == "s1,s2").all()
    assert (out["seq_id"] == out["image_id"].str[:6]).all()


def test_inherited_label_reason_and_score_are_exact():
    classes = ["empty", "zebra", "wildebeest"]
    probs = np.array([[0.04, 0.94, 0.02], [0.97, 0.02, 0.01], [0.90, 0.05, 0.05],
                      [0.99, 0.005, 0.005]], np.float32)
    labels = np.array([[0, 1, 0], [0, 1, 0], [0, 1, 1], [0, 1, 0]], bool)
    meta = pd.DataFrame({"image_id": ["a", "b", "c", "d"], "seq_id": ["s", "s", "s", None],
                         "frame_num": [1, 2, 3, 1],
                         "seq_num_frames": pd.array([pd.NA, pd.NA, pd.NA, 1], dtype="Int16")})
    ev = evalset_from_arrays(probs, labels, classes=classes, meta=meta,
                             image_ids=meta["image_id"].to_numpy(object))
    out = suspects(ev).set_index("image_id")
    assert list(out.index) == ["b", "c"]  # d has no capture: nothing to inherit from
    assert out.loc["b", "reason"] == ("frame 2 of 3: model says empty (0.97) but labelled "
                                      "zebra; frame 1 shows zebra (0.94)")
    assert out.loc["b", "score"] == pytest.approx(0.97 * 0.94)
    assert out.loc["c", "reason"] == ("frame 3 of 3: model says empty (0.90) but labelled "
                                      "zebra, wildebeest; frame 1 shows zebra (0.94)")


def test_missed_species_reason_names_the_partner_and_rate():
    ev, _, missed = planted_captures()
    out = missed_species(ev)
    assert set(out["image_id"]) == missed
    both = ev.labels[:, 1] & ev.labels[:, 2]
    s1_caps = ev.meta.loc[ev.labels[:, 1], "seq_id"].nunique()
    rate = ev.meta.loc[both, "seq_id"].nunique() / s1_caps
    for reason in out["reason"]:
        assert reason.startswith(("model says s2 (", "frame "))
        assert reason.endswith(f"; not in labels [s1]; s2 is annotated with s1 in {rate:.0%} "
                               f"of s1 captures")


def test_missed_species_spreads_capture_evidence_to_its_frames():
    classes = ["empty", "zebra", "wildebeest", "impala"]
    probs = np.array([[0.02, 0.17, 0.80, 0.01],   # cap a, frame 1: wildebeest clear
                      [0.02, 0.85, 0.10, 0.03],   # cap a, frame 2: mostly zebra
                      [0.90, 0.05, 0.03, 0.02],   # cap a, frame 3: the herd has left
                      [0.02, 0.50, 0.46, 0.02],   # cap b: zebra + wildebeest annotated
                      [0.05, 0.10, 0.05, 0.80]],  # cap c: impala seen, never with zebra
                     np.float32)
    labels = np.array([[0, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0], [0, 1, 0, 0]],
                      bool)
    meta = pd.DataFrame({"image_id": list("abcde"), "seq_id": ["a", "a", "a", "b", "c"],
                         "frame_num": [1, 2, 3, 1, 1], "seq_num_frames": [3, 3, 3, 1, 1]})
    ev = evalset_from_arrays(probs, labels, classes=classes, meta=meta,
                             image_ids=meta["image_id"].to_numpy(object))
    out = missed_species(ev).set_index("image_id")
    assert sorted(out.index) == ["a", "b"]  # not c (left), d (annotated), e (no companion)
    assert out.loc["a", "score"] == pytest.approx(0.80)
    assert out.loc["b", "score"] == pytest.approx(np.sqrt(0.10 * 0.80))  # own x capture
    assert out.loc["a", "reason"] == ("model says wildebeest (0.80); not in labels [zebra]; "
                                      "wildebeest is annotated with zebra in 33% of zebra "
                                      "captures")
    assert out.loc["b", "reason"].startswith("frame 2 of 3: model says wildebeest (0.10) "
                                             "here, 0.80 on frame 1; not in labels [zebra]")
    assert (out["suggested"] == "zebra,wildebeest").all()
    # A frame whose own evidence is too faint drops out (score 0.28 < 0.75 * 0.4).
    assert list(missed_species(ev, min_prob=0.4)["image_id"]) == ["a"]


def test_missed_species_needs_cooccurrence():
    ev, _, missed = planted_captures()
    # Without any capture annotated with both s1 and s2, nothing supports "missed".
    assert missed_species(ev, min_cooccurrence=10_000).empty
    cooc = np.zeros((6, 6), int)
    cooc[3, 4] = cooc[4, 3] = 5  # pretend s3/s4 co-occur: the look-alikes become suspects
    got = missed_species(ev, cooc=cooc)
    assert set(got["suggested"]) == {"s3,s4"} and not set(got["image_id"]) & missed


def test_suspects_options():
    ev, inherited, missed = planted_captures()
    only = suspects(ev, kinds=("missed_species",))
    assert set(only["kind"]) == {"missed_species"}
    no_empty = suspects(ev, empty_class=None)
    assert set(no_empty["kind"]) == {"missed_species"}
    assert suspects(ev, min_confidence=0.999, min_missed=0.999).empty
    with pytest.raises(ValueError, match="empty class 'nothing' is not a class"):
        suspects(ev, empty_class="nothing")
    with pytest.raises(ValueError, match="unknown kind"):
        suspects(ev, kinds=("ghost",))


def test_suspects_on_scattered_frames_equal_sorted():
    ev, inherited, _ = planted_captures(seed=3)
    perm = np.random.default_rng(0).permutation(len(ev))
    a = suspects(ev)
    b = suspects(ev.subset(perm))
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("policy", ["set", "primary"])
def test_frame_accuracy_known_answer(policy):
    ev, inherited, _ = planted_captures()
    got = frame_accuracy(ev, policy=policy)
    y_true, y_pred = targets(ev, policy=policy)
    frame = ev.meta["frame_num"].to_numpy()
    assert got["frame_num"].tolist() == [1, 2, 3]
    for _, r in got.iterrows():
        sel = frame == r["frame_num"]
        assert r["n"] == sel.sum()
        assert r["accuracy"] == pytest.approx((y_true == y_pred)[sel].mean())
    # Planted inherited labels sit at frames 2-3: their accuracy is lower than frame 1's.
    acc = got.set_index("frame_num")["accuracy"]
    assert acc[2] < acc[1] and acc[3] < acc[1]


@pytest.mark.parametrize("how", ["mean", "max", "vote"])
def test_level_summary_matches_metrics_on_aggregated_captures(how):
    ev, _, _ = planted_captures()
    table = level_summary(ev, how=how)
    seq = aggregate_sequences(ev, how=how)
    expect = summary(confusion(*targets(seq, policy="set"), seq.n_classes))
    assert table.loc["sequence", "n"] == seq.meta["seq_id"].nunique() == expect["n"]
    assert table.loc["sequence", "macro_f1"] == pytest.approx(expect["macro_f1"])
    assert table.loc["image", "n"] == len(ev)
