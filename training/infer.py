"""Classify one image with a trained checkpoint (the dashboard's "Try the model" page).

Same preprocessing as ``training.predict``: shrunk to the checkpoint's input size on its short
side, squashed to a square (``training.datasets.to_uint8_tensor``) and normalised with the
checkpoint's mean and std. (An already decoded image misses only the JPEG draft-mode decode.)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from training.datasets import normalize_batch, to_uint8_tensor
from training.engine import forward_with_features
from training.predict import load_for_inference


@dataclass
class ModelBundle:
    """A loaded classifier and what is needed to feed it."""
    model: torch.nn.Module
    classes: list[str]
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    device: torch.device
    checkpoint: Path


def load_classifier(checkpoint_path: str | Path, *, device: str = "cpu") -> ModelBundle:
    """Load a checkpoint (``torch.load(weights_only=True)``) for inference.

    Raises ``training.checkpoint.CheckpointError`` (a ``ValueError``) for a missing or foreign
    file.
    """
    dev = torch.device(device)
    model, meta = load_for_inference(checkpoint_path, dev)
    return ModelBundle(model=model, classes=list(meta["classes"]),
                       image_size=int(meta["image_size"]), mean=tuple(meta["mean"]),
                       std=tuple(meta["std"]), device=dev, checkpoint=Path(checkpoint_path))


@torch.inference_mode()
def classify(model_bundle: ModelBundle, pil_image: Image.Image, *,
             k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most probable classes of one image, as ``(class name, probability)``."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    probs, _ = probabilities_and_embedding(model_bundle, pil_image)
    probs = torch.from_numpy(probs)
    top = probs.topk(min(k, len(model_bundle.classes)))
    return [(model_bundle.classes[i], float(p)) for p, i in zip(top.values, top.indices)]


@torch.inference_mode()
def probabilities_and_embedding(model_bundle: ModelBundle,
                                pil_image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """One image's class probabilities (C,) in ``classes`` order and its pooled
    penultimate-layer embedding (D,), float32: what ``training.predict --embeddings``
    stores for a dataset image (before any ``--embedding-dim`` reduction)."""
    b = model_bundle
    img = pil_image.convert("RGB") if pil_image.mode != "RGB" else pil_image
    short = min(img.size)
    if short > b.image_size:  # what data.images.open_image(size=...) does after its draft decode
        scale = b.image_size / short
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.LANCZOS)
    x = to_uint8_tensor(img, b.image_size)[None]
    x = normalize_batch(x, b.mean, b.std, device=b.device, channels_last=True)
    logits, feats = forward_with_features(b.model, x)
    return (logits.float().softmax(dim=1)[0].cpu().numpy(),
            feats.float()[0].cpu().numpy())
