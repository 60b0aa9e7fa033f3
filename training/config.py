"""Training configuration: one dataclass, its argparse parser and its checks.

The resolved config travels as a plain dict (``dataclasses.asdict``) in checkpoints and in the
run manifest, so ``torch.load(weights_only=True)`` reads checkpoints back.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn


class ConfigError(ValueError):
    """An option value that cannot work; the message names the option and the value."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (``prog: error: ...``) and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


@dataclass
class TrainConfig:
    dataset: list[str]
    images: str
    out: str
    arch: str = "efficientnet_lite0"
    weights: str = "auto"
    image_size: int = 224
    batch_size: int = 64
    epochs_frozen: int = 1
    epochs: int = 5
    lr: float | str = 1e-3
    backbone_lr_mult: float = 0.1
    weight_decay: float = 0.01
    label_smoothing: float = 0.0
    clip_grad_norm: float = 1.0
    patience: int = 3
    split: str = "location"
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    empty_keep: float = 0.1
    empty_class: str = "empty"
    first_frame_only: bool = False
    balanced: bool = False
    limit: int | None = None
    cache_features: bool = False
    predict_split: str = "val"
    embeddings: bool = False
    embedding_dim: int | None = None
    device: str = "auto"
    amp: bool = False
    workers: int = 2
    seed: int = 0
    resume: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _lr(text: str) -> float | str:
    if text == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def build_parser() -> OneLineParser:
    d = TrainConfig(dataset=[], images="", out="")
    p = OneLineParser(prog="python -m training.train",
                      description="Fine-tune a pretrained backbone on COCO Camera Traps data "
                                  "and write a run folder with predictions.")
    p.add_argument("--dataset", nargs="+", required=True, metavar="JSON",
                   help="COCO Camera Traps JSON file(s), e.g. one per season")
    p.add_argument("--images", required=True, metavar="ROOT", help="image root folder")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder to write")
    p.add_argument("--arch", default=d.arch, help="timm model name (default %(default)s)")
    p.add_argument("--weights", default=d.weights,
                   help="'auto' (packaged ImageNet weights, efficientnet_lite0 only), "
                        "a local state-dict file, or 'none'")
    p.add_argument("--image-size", type=int, default=d.image_size)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--epochs-frozen", type=int, default=d.epochs_frozen,
                   help="stage 1 epochs: head only, backbone frozen")
    p.add_argument("--epochs", type=int, default=d.epochs,
                   help="stage 2 epochs: everything trains, backbone at a lower LR")
    p.add_argument("--lr", type=_lr, default=d.lr,
                   help="head learning rate, or 'auto' (LR range test, plot in the run folder)")
    p.add_argument("--backbone-lr-mult", type=float, default=d.backbone_lr_mult,
                   help="stage 2 backbone LR = lr * this")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--clip-grad-norm", type=float, default=d.clip_grad_norm)
    p.add_argument("--patience", type=int, default=d.patience,
                   help="early stopping: epochs without a better val macro-F1, per stage")
    p.add_argument("--split", choices=("location", "sequence", "image"), default=d.split,
                   help="keep whole sites or whole captures on one side of the split; image: "
                        "the original project's random image split (leaks sites and captures)")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction)
    p.add_argument("--test-fraction", type=float, default=d.test_fraction)
    p.add_argument("--empty-keep", type=float, default=d.empty_keep,
                   help="fraction of empty training images kept (the original project: 0.1)")
    p.add_argument("--empty-class", default=d.empty_class)
    p.add_argument("--first-frame-only", action="store_true",
                   help="train on the first frame of each capture only")
    p.add_argument("--balanced", action="store_true", help="class-balanced sampling")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="use at most N images (smoke runs)")
    p.add_argument("--cache-features", action="store_true",
                   help="stage 1 trains the head on cached frozen-backbone features "
                        "(no augmentation; fast on CPU)")
    p.add_argument("--predict-split", choices=("val", "test", "all"), default=d.predict_split,
                   help="which images the final prediction covers")
    p.add_argument("--embeddings", action="store_true",
                   help="store float16 penultimate-layer embeddings with the predictions")
    p.add_argument("--embedding-dim", type=int, default=d.embedding_dim, metavar="D",
                   help="with --embeddings: store them reduced to D PCA dimensions (64: 7.2 M "
                        "images in 0.92 GB); the reduction is kept beside the run")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=d.device)
    p.add_argument("--amp", action="store_true", help="mixed precision (bf16 where supported)")
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT",
                   help="continue from CKPT (default RUN_DIR/checkpoint_last.pt)")
    return p


def check_inputs(*, dataset, images, batch_size: int, workers: int, out=None,
                 other_inputs=()) -> None:
    """The checks ``training.train`` and ``training.predict`` share, naming the option; ``out``
    (the run folder) must not overwrite an input (``data.runs.check_run_out``)."""
    from data.runs import check_run_out

    for path in dataset:
        if not Path(path).is_file():
            raise ConfigError(f"--dataset: no such file: {path}")
    if not Path(images).is_dir():
        raise ConfigError(f"--images: not a folder: {images}")
    if batch_size < 1:
        raise ConfigError(f"--batch-size: must be >= 1, got {batch_size}")
    if workers < 0:
        raise ConfigError(f"--workers: must be >= 0, got {workers}")
    if out is not None:
        try:
            check_run_out(out, inputs=[*dataset, images, *other_inputs])
        except ValueError as exc:
            raise ConfigError(f"--out {exc}") from None


def check(cfg: TrainConfig) -> TrainConfig:
    """Refuse values that cannot work, naming the option; resolve ``--resume``."""
    check_inputs(dataset=cfg.dataset, images=cfg.images, batch_size=cfg.batch_size,
                 workers=cfg.workers, out=cfg.out)
    if cfg.image_size < 32:
        raise ConfigError(f"--image-size: must be >= 32, got {cfg.image_size}")
    for name, value in {"--epochs-frozen": cfg.epochs_frozen, "--epochs": cfg.epochs,
                        "--patience": cfg.patience}.items():
        if value < 0:
            raise ConfigError(f"{name}: must be >= 0, got {value}")
    if cfg.epochs_frozen + cfg.epochs < 1:
        raise ConfigError("--epochs-frozen + --epochs: at least one epoch is needed, got 0")
    for name, value in {"--empty-keep": cfg.empty_keep, "--val-fraction": cfg.val_fraction,
                        "--test-fraction": cfg.test_fraction,
                        "--backbone-lr-mult": cfg.backbone_lr_mult}.items():
        if not 0 <= value <= 1:
            raise ConfigError(f"{name}: must be within [0, 1], got {value}")
    if not (0 < cfg.val_fraction and cfg.val_fraction + cfg.test_fraction < 1):
        raise ConfigError(f"--val-fraction: must be > 0 and leave room for training, "
                          f"got {cfg.val_fraction} (test {cfg.test_fraction})")
    if cfg.limit is not None and cfg.limit < 10:
        raise ConfigError(f"--limit: must be >= 10, got {cfg.limit}")
    if cfg.lr != "auto" and not (isinstance(cfg.lr, (int, float)) and cfg.lr > 0):
        raise ConfigError(f"--lr: must be > 0 or 'auto', got {cfg.lr!r}")
    if cfg.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: CUDA is not available on this machine")
    if cfg.resume == "auto":
        cfg.resume = str(Path(cfg.out) / "checkpoint_last.pt")
    if cfg.resume is not None and not Path(cfg.resume).is_file():
        raise ConfigError(f"--resume: no such checkpoint: {cfg.resume}")
    return cfg


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """Parse and check; on a bad value print one line and exit 2."""
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    try:
        return check(TrainConfig(**args))
    except ConfigError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")


def exit_on_error(prog: str, exc: BaseException) -> NoReturn:
    """One line on stderr and exit status 2 (for errors found after parsing)."""
    sys.stderr.write(f"{prog}: error: {exc}\n")
    raise SystemExit(2)
