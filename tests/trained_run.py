"""A genuinely trained CPU run over a small demo dataset, for tests that need a real model.

``build_trained_demo_run(root)`` writes a 600-image demo dataset (seed 0) and trains the demo
configuration of ``scripts/demo.py`` on it (frozen-backbone features, 160 px, head only),
predicting every image. About 30-60 s on two cores. Used session-scoped by the analysis tests
to check that diagnostics recover what ``demo_truth.json`` planted.

The one change to the demo configuration is the split: a model has learnt the planted labels of
the images it trained on, so recovery is measured on out-of-sample images only, and the demo's
70/15/15 site split leaves all 9 planted missed-species frames (and 7 of the 10 inherited
labels) in training. The 600 images sit on 8 sites; a 50/25/25 site split with seed 4
(``TrainConfig.seed`` drives the split and the training alike) puts 7 inherited-label and 6
missed-species frames out of sample (290 images), while the model still trains on 125 images
(val macro F1 about 0.5 against 0.07 for the majority class). Training behaviour is the
demo's; only these three configuration values differ.
Cross-fitting (K site folds, every frame out of sample once) would measure all 19 but needs
control over which sites each fold holds out, which ``TrainConfig`` does not offer.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from data.paths import ENV_VAR

N_IMAGES = 600
SEED = 0
#: Site split of the trained run (train = the rest) and its seed; see the module docstring.
#: A new seed or fractions must keep >= 5 planted frames of each kind out of sample (the
#: recovery test asserts it).
VAL_FRACTION = 0.25
TEST_FRACTION = 0.25
SPLIT_SEED = 4


@dataclass(frozen=True)
class TrainedRun:
    dataset_paths: list[Path]
    images_root: Path
    run_dir: Path
    truth: Path


def build_trained_demo_run(root: Path) -> TrainedRun:
    from data.demo import make_demo
    from scripts.demo import demo_config
    from training.train import main as train

    root = Path(root)
    demo = make_demo(root / "demo", n_images=N_IMAGES, seed=SEED)
    run_dir = root / "runs" / "trained"
    cfg = demo_config([str(p) for p in demo.json_paths], str(demo.images_root), str(run_dir),
                      workers=0)
    cfg = replace(cfg, val_fraction=VAL_FRACTION, test_fraction=TEST_FRACTION, seed=SPLIT_SEED)
    # Session fixtures are set up before the per-test TRAPLENS_HOME: keep the caches under root.
    saved = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = str(root / "home")
    try:
        train(cfg)
    finally:
        if saved is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = saved
    return TrainedRun(dataset_paths=list(demo.json_paths), images_root=demo.images_root,
                      run_dir=run_dir, truth=demo.truth)
