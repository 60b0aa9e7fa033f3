"""training.predict on a dataset whose categories differ from the checkpoint's classes: a
demo-class checkpoint (14 classes) predicts the real 61-category Snapshot Serengeti slice."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from analysis.__main__ import main as analysis_main
from data.cct import load_dataset
from data.demo.generate import SPECIES_WEIGHTS
from training import checkpoint as ckpt_io
from training import predict
from training.config import TrainConfig
from training.model import build_model

SLICE = Path("/work/shared/fixtures/serengeti-s1")
SLICE_JSON = SLICE / "SnapshotSerengetiS01-slice.json"
DEMO_CLASSES = ["empty", *SPECIES_WEIGHTS]  # the demo's 14 classes


@pytest.mark.slow
@pytest.mark.skipif(not SLICE_JSON.is_file(), reason="Snapshot Serengeti slice fixture absent")
def test_demo_checkpoint_predicts_the_real_slice(tmp_path, capsys):
    torch.manual_seed(0)
    model = build_model("test_efficientnet", len(DEMO_CLASSES), weights="none")
    cfg = TrainConfig(dataset=["x.json"], images=".", out=str(tmp_path), image_size=64)
    ckpt = ckpt_io.save({"model": model.state_dict(), "classes": DEMO_CLASSES,
                         "arch": "test_efficientnet", "image_size": 64, "mean": [0.5] * 3,
                         "std": [0.25] * 3, "config": cfg.to_dict(), "epoch": 0},
                        tmp_path / "checkpoint_best.pt")
    out = tmp_path / "run"
    assert predict.main(["--checkpoint", str(ckpt), "--dataset", str(SLICE_JSON),
                         "--images", str(SLICE), "--out", str(out), "--device", "cpu",
                         "--workers", "0", "--batch-size", "4"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["classes"] == DEMO_CLASSES
    ds = load_dataset([SLICE_JSON], cache=False)
    unknown = {u["category"]: u["n_images"] for u in manifest["unknown_categories"]}
    assert set(unknown) == set(ds.classes) - set(DEMO_CLASSES) and len(unknown) == 61 - 14
    # The slice's labels: elephant, empty (known); mongoose, monkeyvervet (unknown), 3 images
    # each (an image without a file has no prediction and is not counted).
    assert 2 <= unknown["mongoose"] <= 3 and 2 <= unknown["monkeyvervet"] <= 3
    assert unknown["hare"] == 0 and sum(unknown.values()) == unknown["mongoose"] + \
        unknown["monkeyvervet"]
    rep_path = tmp_path / "report.json"
    code = analysis_main(["report", "--dataset", str(SLICE_JSON), "--run", str(out),
                          "--json", str(rep_path), "--html", str(tmp_path / "r.html"),
                          "--resamples", "20", "-q"])
    assert code == 0, capsys.readouterr().err
    ls = json.loads(rep_path.read_text())["label_space"]
    assert ls["kind"] == "subset"  # the demo's 14 classes are among the 61
    assert {u["class"]: u["n_images"] for u in ls["unknown_to_model"]} == unknown
    assert ls["n_not_scorable"] == sum(unknown.values()) and not ls["scored_as_errors"]
    assert "not scorable" in (tmp_path / "r.html").read_text()
