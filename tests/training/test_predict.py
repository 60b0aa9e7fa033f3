"""training.predict: the run-folder contract, unreadable images, torchrun parity, infer."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from data.cct import load_dataset
from data.images import open_image
from data.runs import load_run, validate_predictions
from training import checkpoint as ckpt_io
from training import predict
from training.config import TrainConfig
from training.infer import classify, load_classifier
from training.model import LITE0_ARCH, build_model, normalization

ROOT = Path(__file__).resolve().parents[2]
SIZE = 64


def write_checkpoint(path: Path, classes: list[str], *, seed: int = 0) -> Path:
    """An untrained-head checkpoint (pretrained backbone, random head) in the real format."""
    torch.manual_seed(seed)
    model = build_model(LITE0_ARCH, len(classes), weights="auto")
    torch.nn.init.normal_(model.get_classifier().weight, std=0.05)  # non-uniform outputs
    mean, std = normalization(LITE0_ARCH, "auto")
    cfg = TrainConfig(dataset=["x.json"], images=".", out=str(path.parent), image_size=SIZE)
    return ckpt_io.save({"model": model.state_dict(), "classes": classes, "arch": LITE0_ARCH,
                         "image_size": SIZE, "mean": list(mean), "std": list(std),
                         "config": cfg.to_dict(), "epoch": 0}, path)


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _run_cli(args: list[str], *, torchrun: int = 0) -> subprocess.CompletedProcess:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                 f"--nproc_per_node={torchrun}"] if torchrun else [sys.executable])
    return subprocess.run([*launcher, "-m", "training.predict", *args], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    from data.demo import make_demo

    return make_demo(tmp_path_factory.mktemp("demo37"), n_images=37, seed=1)


@pytest.fixture(scope="module")
def small_ckpt(small_demo, tmp_path_factory):
    classes = load_dataset(small_demo.json_paths, cache=False).classes
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoint_best.pt", classes)


def _predict_args(demo, ckpt, out, *extra):
    return ["--checkpoint", str(ckpt), "--dataset", *map(str, demo.json_paths),
            "--images", str(demo.images_root), "--out", str(out), "--split", "all",
            "--batch-size", "4", "--workers", "0", "--device", "cpu", *extra]


def test_predictions_follow_the_contract(small_demo, small_ckpt, tmp_path):
    out = tmp_path / "run"
    assert predict.main(_predict_args(small_demo, small_ckpt, out, "--embeddings")) == 0
    ds = load_dataset(small_demo.json_paths)
    manifest = json.loads((out / "manifest.json").read_text())
    table = pq.read_table(out / "predictions.parquet")
    missing = validate_predictions(table, manifest, path=out, dataset_ids=ds.images["image_id"],
                                   dataset_classes=ds.classes)
    assert sorted(missing) == sorted(u["image_id"] for u in manifest["unreadable"])
    assert manifest["model"]["checkpoint"] == os.path.relpath(small_ckpt, out)
    assert manifest["model"]["input_size"] == SIZE
    assert set(table.column("split").to_pylist()) <= {"train", "val", "test"}
    assert table.schema.field("embedding").type.list_size == 1280
    run = load_run(out)
    assert run.probs.shape == (manifest["n_predictions"], len(ds.classes))


def test_reduced_embeddings_keep_the_full_ones_geometry(small_demo, small_ckpt, tmp_path):
    """--embedding-dim 8: float16 (n, 8), the reduction beside the run maps the full
    embedding onto the stored one, and the manifest says so."""
    from data.embeddings import PCA_FILE, load_pca

    full, small = tmp_path / "full", tmp_path / "small"
    assert predict.main(_predict_args(small_demo, small_ckpt, full, "--embeddings")) == 0
    assert predict.main(_predict_args(small_demo, small_ckpt, small, "--embeddings",
                                      "--embedding-dim", "8")) == 0
    a, b = load_run(full), load_run(small)
    assert b.embedding.shape == (len(a.embedding), 8) and b.embedding.dtype == np.float16
    info = json.loads((small / "manifest.json").read_text())["embedding"]
    assert info["dim"] == 8 and info["source_dim"] == 1280 and info["reduction"] == PCA_FILE
    params = load_pca(small)
    np.testing.assert_allclose(params.transform(a.embedding), b.embedding.astype(np.float32),
                               atol=0.05, rtol=0.01)
    assert load_pca(full) is None


def test_embedding_dim_needs_embeddings(small_demo, small_ckpt, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        predict.main(_predict_args(small_demo, small_ckpt, tmp_path / "r", "--embedding-dim", "8"))
    assert exc.value.code == 2 and "--embedding-dim 8" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_matches_a_single_process(small_demo, small_ckpt, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    a = _run_cli(_predict_args(small_demo, small_ckpt, one))
    assert a.returncode == 0, a.stderr[-2000:]
    b = _run_cli(_predict_args(small_demo, small_ckpt, two), torchrun=2)
    assert b.returncode == 0, b.stderr[-2000:]
    ra, rb = load_run(one), load_run(two)
    assert list(rb.image_ids) == list(ra.image_ids)  # same ids, same order, no padding rows
    np.testing.assert_allclose(rb.probs, ra.probs, atol=1e-5)
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (one, two))
    assert mb["unreadable"] == ma["unreadable"] and mb["prediction"]["world_size"] == 2


def test_cached_features_give_the_same_predictions(small_demo, small_ckpt, tmp_path):
    from training.distributed import DistInfo

    model, meta = predict.load_for_inference(small_ckpt, torch.device("cpu"))
    ds = load_dataset(small_demo.json_paths)
    info = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    split = predict.split_for(ds, meta["config"], small_ckpt)
    kw = dict(meta=meta, dataset=ds, dataset_paths=[str(p) for p in small_demo.json_paths],
              images_root=small_demo.images_root, split=split, which="all",
              checkpoint_path=small_ckpt, info=info, batch_size=8, workers=0)
    full = load_run(predict.predict_run(model, out=tmp_path / "full", **kw))
    cached = load_run(predict.predict_run(model, out=tmp_path / "cached",
                                          feature_cache=tmp_path / "f.pt", **kw))
    assert list(cached.image_ids) == list(full.image_ids)
    np.testing.assert_allclose(cached.probs, full.probs, atol=1e-4)
    assert cached.manifest["unreadable"] == full.manifest["unreadable"]


def _bad_images_dataset(bad_images: Path, tmp_path: Path) -> Path:
    names = sorted(p.name for p in bad_images.glob("*.jpg")) + ["gone.jpg"]
    doc = {"info": {"version": "test"}, "categories": [{"id": 0, "name": "empty"},
                                                       {"id": 18, "name": "elephant"}],
           "images": [{"id": Path(n).stem, "file_name": n, "frame_num": 1,
                       "seq_id": f"SER_S1#X01#1#{i}", "seq_num_frames": 1, "width": -1,
                       "height": -1, "corrupt": False, "location": "X01",
                       "datetime": "2010-08-19 18:24:57"} for i, n in enumerate(names)],
           "annotations": [{"id": f"a{i}", "image_id": Path(n).stem, "category_id": 18,
                            "seq_id": f"SER_S1#X01#1#{i}", "season": "S1",
                            "sequence_level_annotation": False, "count": "1"}
                           for i, n in enumerate(names)]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    return path


def test_unreadable_images_are_listed_not_fatal(bad_images, tmp_path):
    data = _bad_images_dataset(bad_images, tmp_path)
    ckpt = write_checkpoint(tmp_path / "ckpt" / "c.pt", ["empty", "elephant"])
    out = tmp_path / "run"
    r = _run_cli(["--checkpoint", str(ckpt), "--dataset", str(data), "--images",
                  str(bad_images), "--out", str(out), "--split", "all", "--workers", "0"])
    assert r.returncode == 0, r.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    reasons = {u["image_id"]: u["reason"] for u in manifest["unreadable"]}
    assert set(reasons) == {"african_elephants_truncated_file", "gone"}
    assert reasons["gone"] == "missing"
    assert set(load_run(out).image_ids) == {"african_elephants", "african_elephants_bw",
                                            "african_elephants_cmyk",
                                            "african_elephants_with_exif_orientation"}


@pytest.mark.parametrize("change, message", [
    ({"--checkpoint": "nope.pt"}, "--checkpoint: no such file: nope.pt"),
    ({"--images": "no/such/dir"}, "--images: not a folder: no/such/dir"),
    ({"--batch-size": "0"}, "--batch-size: must be >= 1, got 0"),
    ({"--split": "dev"}, "argument --split: invalid choice: 'dev'"),
])
def test_bad_arguments_give_one_line_errors(small_demo, small_ckpt, tmp_path, capsys, change,
                                            message):
    args = _predict_args(small_demo, small_ckpt, tmp_path / "r")
    for flag, value in change.items():
        args[args.index(flag) + 1] = value
    with pytest.raises(SystemExit) as exc:
        predict.main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_foreign_checkpoint_one_line_error(small_demo, tmp_path, capsys):
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"garbage")
    with pytest.raises(SystemExit) as exc:
        predict.main(_predict_args(small_demo, bogus, tmp_path / "r"))
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and "not a readable checkpoint" in err


def test_infer_classify(small_demo, small_ckpt):
    bundle = load_classifier(small_ckpt)
    image = open_image(next(iter(sorted(small_demo.images_root.rglob("*.JPG")))))
    top = classify(bundle, image, k=3)
    assert len(top) == 3 and all(c in bundle.classes for c, _ in top)
    probs = [p for _, p in top]
    assert probs == sorted(probs, reverse=True)
    everything = classify(bundle, image, k=100)
    assert len(everything) == len(bundle.classes)
    assert sum(p for _, p in everything) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="k must be >= 1"):
        classify(bundle, image, k=0)


def test_checkpoint_whose_weights_do_not_fit_is_refused(tmp_path):
    ckpt = write_checkpoint(tmp_path / "c.pt", ["a", "b"])
    state = torch.load(ckpt, weights_only=True)
    ckpt_io.save({**state, "classes": ["a", "b", "c"]}, ckpt)  # head has 2 outputs, not 3
    with pytest.raises(ckpt_io.CheckpointError, match=r"do not fit efficientnet_lite0 with 3 "
                                                      r"classes .*size mismatch for classifier"):
        load_classifier(ckpt)


def test_empty_split_is_a_one_line_error(small_demo, small_ckpt, tmp_path, capsys):
    ckpt = tmp_path / "checkpoint_best.pt"
    ckpt.write_bytes(small_ckpt.read_bytes())
    ids = load_dataset(small_demo.json_paths, cache=False).images["image_id"]
    pd.DataFrame({"image_id": ids, "split": "train"}).to_parquet(tmp_path / predict.SPLIT_FILE)
    args = _predict_args(small_demo, ckpt, tmp_path / "r")
    args[args.index("--split") + 1] = "val"
    with pytest.raises(SystemExit) as exc:
        predict.main(args)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1
    assert "--split val: none of the" in err and "Traceback" not in err


def test_nothing_readable_writes_a_run_listing_every_image(small_demo, small_ckpt, tmp_path,
                                                           capsys):
    # Issue 17 case 6: an image root where nothing is readable (every file missing).
    empty_root = tmp_path / "no_images"
    empty_root.mkdir()
    args = _predict_args(small_demo, small_ckpt, tmp_path / "r")
    args[args.index("--images") + 1] = str(empty_root)
    with pytest.raises(SystemExit) as exc:
        predict.main(args)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    n = len(load_dataset(small_demo.json_paths, cache=False).images)
    assert f"none of the {n} images could be read; see {tmp_path / 'r' / 'manifest.json'}" in err
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert len(manifest["unreadable"]) == n and manifest["n_predictions"] == 0
    assert {u["reason"] for u in manifest["unreadable"]} == {"missing"}


@pytest.mark.parametrize("where, message", [
    ("dataset", "refusing to write the run folder over an input"),
    ("inside_images", "refusing to write the run folder inside the input folder"),
    ("file", "exists and is a file (sqlite data), but the run folder is a folder"),
    ("foreign_manifest", "holds parquet data, not a previous run manifest"),
])
def test_out_that_would_destroy_a_file_is_refused_before_work(small_demo, small_ckpt, tmp_path,
                                                              capsys, where, message):
    # Issue 17 case 1: training.predict --out, before loading anything.
    out = {"dataset": small_demo.json_paths[0],
           "inside_images": small_demo.images_root / "run",
           "file": tmp_path / "curation.sqlite",
           "foreign_manifest": tmp_path / "r"}[where]
    if where == "file":
        out.write_bytes(b"SQLite format 3\x00 keep me")
    if where == "foreign_manifest":
        out.mkdir()
        (out / "manifest.json").write_bytes(b"PAR1 not a manifest")
    before = out.read_bytes() if out.is_file() else None
    with pytest.raises(SystemExit) as exc:
        predict.main(_predict_args(small_demo, small_ckpt, out))
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and message in err, err
    if before is not None:
        assert out.read_bytes() == before
