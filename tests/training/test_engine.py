"""Loops' building blocks: gathering, samplers, targets, scores, LR suggestion, checkpoints."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from training import checkpoint as ckpt_io
from training.datasets import ShardedSampler, balanced_weights, soft_targets
from training.engine import (Outputs, majority_macro_f1, merge_outputs, scores, set_targets,
                             suggest_lr)


def _part(index, n_classes=3, failed=None):
    index = np.asarray(index, np.int64)
    logits = np.stack([np.full(n_classes, float(i)) + np.arange(n_classes) for i in index]) \
        if len(index) else np.zeros((0, n_classes), np.float32)
    return Outputs(index=index, logits=logits.astype(np.float32), embedding=None,
                   failed=failed or {})


@pytest.mark.parametrize("n, world", [(7, 2), (10, 3), (5, 4), (1, 2)])
def test_sharded_sampler_covers_everything_once_plus_padding(n, world):
    shards = [list(ShardedSampler(n, rank=r, world_size=world, shuffle=False))
              for r in range(world)]
    assert {len(s) for s in shards} == {-(-n // world)}
    flat = [i for s in shards for i in s]
    assert sorted(set(flat)) == list(range(n))
    assert len(flat) - n == (-n) % world  # only DistributedSampler-style padding repeats


def test_merge_drops_padding_duplicates_and_sorts():
    # 7 items over 2 ranks, stride sharding: rank 0 [0,2,4,6], rank 1 [1,3,5,0(pad)]
    parts = [_part([0, 2, 4, 6]), _part([1, 3, 5, 0])]
    out = merge_outputs(parts, n_total=7)
    assert out.index.tolist() == list(range(7))
    assert np.allclose(out.logits[:, 0], np.arange(7))


def test_merge_counts_failures_and_checks_the_total():
    parts = [_part([0, 2], failed={4: "truncated"}), _part([1, 3])]
    out = merge_outputs(parts, n_total=5)
    assert out.failed == {4: "truncated"}
    with pytest.raises(RuntimeError, match="returned 5 distinct images, expected 6"):
        merge_outputs(parts, n_total=6)


def test_merge_keeps_failures_of_a_rank_without_readable_images():
    empty = Outputs(index=np.zeros(0, np.int64), logits=np.zeros((0, 0), np.float32),
                    embedding=None, failed={1: "truncated", 3: "missing"})
    out = merge_outputs([_part([0, 2]), empty], n_total=4)
    assert out.index.tolist() == [0, 2]
    assert out.failed == {1: "truncated", 3: "missing"}


def test_sharded_sampler_is_seeded_per_epoch_and_balanced():
    s = ShardedSampler(50, seed=3)
    s.set_epoch(0)
    a = list(s)
    s.set_epoch(1)
    assert list(s) != a and sorted(list(s)) == list(range(50))
    s.set_epoch(0)
    assert list(s) == a
    primary = np.array([0] * 90 + [1] * 10)
    b = ShardedSampler(100, seed=0, weights=balanced_weights(primary))
    drawn = primary[list(b) * 1]
    assert 0.3 < drawn.mean() < 0.7  # rare class ~50 % instead of 10 %


def test_soft_targets_spread_over_the_label_set():
    labels = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0]], bool)
    np.testing.assert_allclose(soft_targets(labels), [[1, 0, 0], [0, .5, .5], [0, 0, 0]])


def test_set_targets_policy():
    probs = np.array([[.1, .7, .2], [.6, .1, .3], [.2, .3, .5]])
    labels = np.array([[0, 1, 1], [0, 1, 1], [1, 0, 0]], bool)
    y_true, y_pred = set_targets(probs, labels)
    assert y_pred.tolist() == [1, 0, 2]
    assert y_true.tolist() == [1, 2, 0]  # in-set prediction kept; else best-rated label


def test_scores_match_sklearn():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 4)).astype(np.float32)
    truth = rng.integers(0, 4, 40)
    soft = np.eye(4, dtype=np.float32)[truth]
    s = scores(logits, soft)
    assert s["val_macro_f1"] == pytest.approx(f1_score(truth, logits.argmax(1), average="macro"))
    assert s["val_accuracy"] == pytest.approx((truth == logits.argmax(1)).mean())
    ref = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(truth))
    assert s["val_loss"] == pytest.approx(float(ref), rel=1e-5)


def test_majority_baseline():
    soft = np.eye(3, dtype=np.float32)[[0, 0, 1, 2]]
    cls, f1 = majority_macro_f1(np.array([0, 0, 0, 1]), soft)
    assert cls == 0
    assert f1 == pytest.approx(f1_score([0, 0, 1, 2], [0, 0, 0, 0], average="macro",
                                        zero_division=0))


def test_suggest_lr_is_a_tenth_of_the_minimum():
    lrs = np.logspace(-6, 0, 61)
    losses = 2 + (np.log10(lrs) + 2) ** 2  # minimum at 1e-2
    losses[:3] += np.array([0.5, -0.4, 0.3])  # a noisy start must not matter
    assert suggest_lr(lrs, losses) == pytest.approx(1e-3, rel=1e-6)
    with pytest.raises(ValueError, match="NaN or infinite"):
        suggest_lr([1e-3, 1e-2], [np.nan, np.inf])


def test_checkpoint_roundtrip_weights_only(tmp_path):
    state = {"model": {"w": torch.ones(2)}, "classes": ["a", "b"], "arch": "x",
             "image_size": 64, "mean": [0.5] * 3, "std": [0.5] * 3,
             "config": {"lr": 0.1, "dataset": ["d.json"], "limit": None}}
    path = ckpt_io.save(state, tmp_path / "c.pt")
    assert not list(tmp_path.glob(".*tmp"))
    back = torch.load(path, weights_only=True)
    assert back["config"] == state["config"] and torch.equal(back["model"]["w"], torch.ones(2))


@pytest.mark.parametrize("content, match", [
    (b"not a checkpoint", "not a readable checkpoint"),
    (None, "no such checkpoint"),
])
def test_checkpoint_errors(tmp_path, content, match):
    path = tmp_path / "c.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ckpt_io.CheckpointError, match=match):
        ckpt_io.load(path)


def test_checkpoint_without_metadata_refused(tmp_path):
    torch.save({"model": {}}, tmp_path / "c.pt")
    with pytest.raises(ckpt_io.CheckpointError, match=r"checkpoint lacks \['classes'"):
        ckpt_io.load(tmp_path / "c.pt")
