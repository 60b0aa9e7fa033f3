"""Checkpoints: state dicts plus plain Python values, written atomically.

A checkpoint is ``{"model", "optimizer", "scheduler", "scaler", "epoch", "next_epoch", "stage",
"config", "classes", "arch", "image_size", "mean", "std", "lr", "history", "best_f1",
"best_epoch", "bad_epochs"}``:
tensors, numbers, strings, lists and dicts only, so ``torch.load(weights_only=True)`` reads it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from data.files import atomic_write

LAST = "checkpoint_last.pt"
BEST = "checkpoint_best.pt"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or lacks what is needed."""


REQUIRED = ("model", "classes", "arch", "image_size", "mean", "std", "config")


def save(state: dict[str, Any], path: str | Path) -> Path:
    """Write a checkpoint atomically."""
    return atomic_write(path, write=lambda fh: torch.save(state, fh))


def load(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; refuse one without the needed keys."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    missing = [k for k in REQUIRED if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}")
    return state
