"""training.train on small demo subsets (CPU): run folder, resume, features cache, arguments."""
from __future__ import annotations

import csv
import json
import os
import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from data.cct import load_dataset
from data.runs import validate_predictions
from training import checkpoint as ckpt_io
from training import features, train
from training.config import TrainConfig, parse_args

SIZE = 64


def _cfg(demo, out, **kw) -> TrainConfig:
    base = dict(dataset=[str(p) for p in demo.json_paths], images=str(demo.images_root),
                out=str(out), image_size=SIZE, batch_size=16, epochs_frozen=1, epochs=0,
                limit=90, workers=0, device="cpu", split="sequence", val_fraction=0.2,
                test_fraction=0.1, seed=0)
    return TrainConfig(**{**base, **kw})


def _history(run) -> list[dict]:
    with open(run / "history.csv") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


@pytest.mark.slow
def test_smoke_run_writes_a_valid_run_folder(demo_small, tmp_path):
    out = tmp_path / "run"
    cfg = _cfg(demo_small, out, epochs_frozen=1, epochs=1, lr="auto", cache_features=True,
               predict_split="all", balanced=True)
    assert train.main(cfg) == out
    ds = load_dataset(demo_small.json_paths)
    manifest = json.loads((out / "manifest.json").read_text())
    missing = validate_predictions(pq.read_table(out / "predictions.parquet"), manifest,
                                   path=out, dataset_ids=ds.images["image_id"],
                                   dataset_classes=ds.classes)
    assert sorted(missing) == sorted(u["image_id"] for u in manifest["unreadable"])
    assert manifest["classes"] == ds.classes
    assert manifest["training"]["lr"] == "auto" and manifest["training"]["lr_resolved"] > 0
    assert manifest["training_summary"]["majority_val_macro_f1"] >= 0
    split = pd.read_parquet(out / "split.parquet")
    assert len(split) == len(ds.images) and set(split["split"]) == {"train", "val", "test"}
    assert split["used"].sum() <= 90
    assert json.loads((out / "classes.json").read_text()) == ds.classes
    history = _history(out)
    assert [(h["epoch"], h["stage"]) for h in history] == [("0", "1"), ("1", "2")]
    assert float(history[1]["backbone_lr"]) > 0 and float(history[1]["images_per_s"]) > 0
    assert (out / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in (ckpt_io.LAST, ckpt_io.BEST):
        state = torch.load(out / name, weights_only=True)
        assert state["classes"] == ds.classes and state["config"]["image_size"] == SIZE


class Killed(Exception):
    pass


@pytest.mark.slow
def test_resume_after_an_interrupt(demo_small, tmp_path, monkeypatch):
    out = tmp_path / "run"
    cfg = _cfg(demo_small, out, epochs_frozen=0, epochs=2, limit=40, patience=0)
    real = train.write_history

    def die_after_first_epoch(path, rows):
        real(path, rows)
        raise Killed  # as if killed right after epoch 0's checkpoint

    monkeypatch.setattr(train, "write_history", die_after_first_epoch)
    with pytest.raises(Killed):
        train.main(cfg)
    first = torch.load(out / ckpt_io.LAST, weights_only=True)
    assert first["next_epoch"] == 1 and len(first["history"]) == 1
    monkeypatch.setattr(train, "write_history", real)
    assert train.main(parse_args(_argv(cfg) + ["--resume"])) == out
    last = torch.load(out / ckpt_io.LAST, weights_only=True)
    assert [h["epoch"] for h in _history(out)] == ["0", "1"]
    assert last["epoch"] == 1 and last["next_epoch"] == 2
    assert last["scheduler"]["last_epoch"] == 2  # the scheduler continued, not restarted
    steps = {int(s["step"]) for s in last["optimizer"]["state"].values()}
    per_epoch = {int(s["step"]) for s in first["optimizer"]["state"].values()}
    assert steps == {2 * next(iter(per_epoch))}  # AdamW's moments carried over the kill
    assert (out / "predictions.parquet").is_file()


def _argv(cfg: TrainConfig) -> list[str]:
    argv = ["--dataset", *cfg.dataset, "--images", cfg.images, "--out", cfg.out]
    for key in ("image_size", "batch_size", "epochs_frozen", "epochs", "limit", "workers",
                "device", "split", "val_fraction", "test_fraction", "seed", "patience"):
        argv += [f"--{key.replace('_', '-')}", str(getattr(cfg, key))]
    return argv


def test_feature_cache_is_reused_and_tracks_edits(demo_small, tmp_path, monkeypatch):
    from training.distributed import DistInfo
    from training.engine import Prep
    from training.model import build_model

    root = tmp_path / "images"  # a private copy: the session's demo files stay untouched
    root.mkdir()
    files = []
    for src in sorted(demo_small.images_root.rglob("*.JPG"))[:6]:
        shutil.copy2(src, root / src.name)
        files.append(src.name)
    model = build_model("efficientnet_lite0", 3).eval()
    info = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    prep = Prep((0.5,) * 3, (0.5,) * 3, info.device, channels_last=False)
    path = tmp_path / "feats.pt"
    calls = []
    real = features.infer

    def counting(*a, **kw):
        calls.append(kw["n_total"])
        return real(*a, **kw)

    monkeypatch.setattr(features, "infer", counting)
    kw = dict(root=root, file_names=files, path=path, image_size=SIZE,
              prep=prep, info=info, batch_size=4, workers=0, dtype=None)
    a, failed = features.cached_features(model, **kw)
    b, _ = features.cached_features(model, **kw)
    assert calls == [6] and not failed and torch.equal(a, b) and a.shape == (6, 1280)
    touched = root / files[2]
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    c, _ = features.cached_features(model, **kw)
    assert calls == [6, 1] and torch.allclose(c, a, atol=1e-4)


@pytest.mark.parametrize("flag, value, message", [
    ("--empty-keep", "1.5", "--empty-keep: must be within [0, 1], got 1.5"),
    ("--lr", "fast", "argument --lr: expected a number or 'auto', got 'fast'"),
    ("--image-size", "8", "--image-size: must be >= 32, got 8"),
    ("--split", "random", "argument --split: invalid choice: 'random'"),
    ("--resume", "nowhere.pt", "--resume: no such checkpoint: nowhere.pt"),
    ("--val-fraction", "0", "--val-fraction: must be > 0 and leave room for training"),
    ("--limit", "3", "--limit: must be >= 10, got 3"),
])
def test_bad_arguments_give_one_line_errors(demo_small, tmp_path, capsys, flag, value, message):
    argv = ["--dataset", str(demo_small.json_paths[0]), "--images", str(demo_small.images_root),
            "--out", str(tmp_path / "r"), flag, value]
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and message in err


def test_missing_dataset_file_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        train.cli(["--dataset", str(tmp_path / "none.json"), "--images", str(tmp_path),
                   "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and "--dataset: no such file" in err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_amp_epoch(demo_small, tmp_path):
    out = tmp_path / "run"
    assert train.main(_cfg(demo_small, out, device="cuda", amp=True, epochs=1, workers=2)) == out
    assert len(_history(out)) == 2


@pytest.mark.slow
def test_torchrun_training_on_cpu(demo_small, tmp_path):
    """Two gloo processes train both stages; rank 0 alone writes one valid run folder."""
    import subprocess
    import sys
    from pathlib import Path

    from data.runs import load_run

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "ddp"
    cfg = _cfg(demo_small, out, epochs_frozen=1, epochs=1, limit=60)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc_per_node=2", "-m", "training.train", *_argv(cfg)],
                       cwd=root, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)})
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.count("epoch 1 (stage 2)") == 1  # only rank 0 logs
    assert [h["stage"] for h in _history(out)] == ["1", "2"]
    run = load_run(out)
    assert set(run.split) == {"val"} and len(run.image_ids) > 0
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("where, message", [
    ("dataset", "--out .*refusing to write the run folder over an input"),
    ("images", "--out .*refusing to write the run folder inside the input folder"),
    ("predictions", "--out .*predictions.parquet: exists and holds text data"),
])
def test_out_that_would_destroy_a_file_is_refused_at_parse_time(tmp_path, capsys, where,
                                                                 message):
    # Issue 17 case 1: training.train --out, before any loading or training.
    from training.config import parse_args

    images = tmp_path / "images"
    images.mkdir()
    data = tmp_path / "d.json"
    data.write_text('{"images": [], "annotations": [], "categories": []}')
    out = {"dataset": data, "images": images / "run", "predictions": tmp_path / "run"}[where]
    if where == "predictions":
        out.mkdir()
        (out / "predictions.parquet").write_text("my notes")
    with pytest.raises(SystemExit) as exc:
        parse_args(["--dataset", str(data), "--images", str(images), "--out", str(out)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1
    import re
    assert re.search(message, err), err
