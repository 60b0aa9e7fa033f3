"""A genuinely trained CPU run over a small demo dataset, for tests that need a real model.

``build_trained_demo_run(root)`` writes a 600-image demo dataset (seed 0) and trains the demo
configuration of ``scripts/demo.py`` on it (frozen-backbone features, 160 px, head only),
predicting every image. About 1-2 minutes on two cores. Used session-scoped by the analysis
tests to check that diagnostics recover what ``demo_truth.json`` planted.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from data.paths import ENV_VAR

N_IMAGES = 600
SEED = 0


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
