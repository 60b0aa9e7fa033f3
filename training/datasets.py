"""Image datasets, samplers and the one preprocessing path shared by train, predict and infer.

Images are decoded through :func:`data.images.open_image` with ``size`` set, so JPEGs are
decoded in draft mode at a reduced scale (a 2048x1536 frame at 1/4 or 1/8 of its size), then
squashed to ``size x size`` (camera-trap animals sit anywhere in the frame; a centre crop would
cut them off) and handed over as uint8. Normalisation happens on the device, per batch.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from data.images import ImageError, open_in_root

log = logging.getLogger(__name__)


def to_uint8_tensor(img: Image.Image, size: int) -> torch.Tensor:
    """RGB PIL image -> (3, size, size) uint8 tensor, squashed (aspect ratio not kept)."""
    if img.mode != "RGB":
        img = img.convert("RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR, reducing_gap=3.0)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)


def normalize_batch(x: torch.Tensor, mean: Sequence[float], std: Sequence[float], *,
                    device: torch.device, channels_last: bool) -> torch.Tensor:
    """uint8 (N,3,H,W) batch -> normalised float32 on ``device``."""
    x = x.to(device, non_blocking=True).float().div_(255.0)
    m = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=device).view(1, 3, 1, 1)
    x = x.sub_(m).div_(s)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def load_image(root: str | Path, file_name: str, size: int) -> torch.Tensor:
    """One image as the model sees it at evaluation time.

    Raises ``ImageError`` (unreadable), ``UnsafePath`` (a ``ValueError``) or ``OSError``.
    """
    return to_uint8_tensor(open_in_root(root, file_name, size=size), size)


#: What a failed image read raises; such images are reported, never fatal.
IMAGE_FAILURES = (ImageError, ValueError, OSError)


def error_reason(exc: Exception) -> str:
    """The short reason of an image failure, for the manifest's ``unreadable`` list."""
    if isinstance(exc, FileNotFoundError):
        return "missing"
    reason = getattr(exc, "reason", None)
    return str(reason) if reason else f"{type(exc).__name__}: {exc}"


class PredictImages(Dataset):
    """Item i -> ``(i, uint8 tensor or None, reason or None)``; failures are reported, not fatal."""

    def __init__(self, root: str | Path, file_names: Sequence[str], size: int):
        self.root, self.file_names, self.size = str(root), list(file_names), size

    def __len__(self) -> int:
        return len(self.file_names)

    def __getitem__(self, i: int):
        try:
            return i, load_image(self.root, self.file_names[i], self.size), None
        except IMAGE_FAILURES as exc:
            return i, None, error_reason(exc)


def collate_predict(items):
    """Batch of readable images plus the (index, reason) pairs of unreadable ones."""
    good = [(i, x) for i, x, _ in items if x is not None]
    failed = [(i, r) for i, x, r in items if x is None]
    index = torch.tensor([i for i, _ in good], dtype=torch.long)
    images = (torch.stack([x for _, x in good]) if good
              else torch.zeros((0, 3, 1, 1), dtype=torch.uint8))
    return index, images, failed


class TrainImages(Dataset):
    """Training images with light augmentation; item -> ``(i, uint8 tensor, soft target)``.

    Augmentation: a random crop of 50-100 % of the frame at roughly the frame's aspect ratio,
    squashed to ``size x size``, and a horizontal flip. An unreadable image yields ``None`` and
    is skipped by :func:`collate_train` (counted in the log), never fatal.
    """

    def __init__(self, root: str | Path, file_names: Sequence[str], targets: np.ndarray,
                 size: int, *, augment: bool = True):
        self.root, self.file_names, self.size = str(root), list(file_names), size
        self.targets = torch.as_tensor(targets, dtype=torch.float32)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.file_names)

    def __getitem__(self, i: int):
        try:
            img = open_in_root(self.root, self.file_names[i], size=self.size)
        except IMAGE_FAILURES as exc:
            log.warning("skipping unreadable training image %s: %s", self.file_names[i],
                        error_reason(exc))
            return None
        if self.augment:
            img = self._random_crop(img)
            if torch.rand(()) < 0.5:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
        return i, to_uint8_tensor(img, self.size), self.targets[i]

    @staticmethod
    def _random_crop(img: Image.Image) -> Image.Image:
        w, h = img.size
        scale = float(torch.empty(()).uniform_(0.5, 1.0))
        ratio = math.exp(float(torch.empty(()).uniform_(math.log(0.8), math.log(1.25))))
        cw = min(w, round(w * math.sqrt(scale * ratio)))
        ch = min(h, round(h * math.sqrt(scale / ratio)))
        x0 = int(torch.randint(0, w - cw + 1, ()))
        y0 = int(torch.randint(0, h - ch + 1, ()))
        return img.crop((x0, y0, x0 + cw, y0 + ch))


def collate_train(items):
    items = [it for it in items if it is not None]
    if not items:
        return None
    index = torch.tensor([i for i, _, _ in items], dtype=torch.long)
    return index, torch.stack([x for _, x, _ in items]), torch.stack([t for _, _, t in items])


def soft_targets(label_matrix: np.ndarray) -> np.ndarray:
    """Soft targets over each image's label set: 1/k on each of its k classes.

    A capture showing a zebra and a wildebeest trains towards (0.5, 0.5): the model is asked to
    spread its belief over what is really there instead of being pushed to one arbitrary species.
    Rows without labels stay all-zero (callers drop them).
    """
    m = label_matrix.astype(np.float32)
    k = m.sum(axis=1, keepdims=True)
    return np.divide(m, k, out=np.zeros_like(m), where=k > 0)


class ShardedSampler(Sampler[int]):
    """Seeded shuffling (optionally class-balanced) split across ranks; call ``set_epoch``.

    Without balancing this is ``DistributedSampler``'s scheme: one permutation per epoch from
    ``seed + epoch``, padded to a multiple of the world size, every rank taking a stride.
    With ``weights`` it draws ``len`` indices with replacement in proportion to the weights.
    """

    def __init__(self, n: int, *, rank: int = 0, world_size: int = 1, seed: int = 0,
                 shuffle: bool = True, weights: np.ndarray | None = None):
        self.n, self.rank, self.world, self.seed = n, rank, world_size, seed
        self.shuffle = shuffle
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        self.epoch = 0
        self.per_rank = math.ceil(n / world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.per_rank

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        total = self.per_rank * self.world
        if self.weights is not None:
            order = torch.multinomial(self.weights, total, replacement=True, generator=g)
        else:
            order = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
            if total > self.n:
                order = torch.cat([order, order[: total - self.n]])
        return iter(order[self.rank:total:self.world].tolist())


def balanced_weights(primary: np.ndarray) -> np.ndarray:
    """Per-image sampling weights that give every (present) class the same expected share."""
    counts = np.bincount(primary)
    return 1.0 / counts[primary]
