"""The loops: ``train_one_epoch``, ``evaluate``-style inference with gathering, head-on-features
training, and the validation scores.

Under AMP one optimizer step per batch goes: scale, backward, unscale, clip, step, update.
"""
from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score
from torch import nn
from tqdm import tqdm

from training.datasets import normalize_batch
from training.distributed import DistInfo, all_reduce_sum, gather_to_main

log = logging.getLogger(__name__)


# --- devices and precision ------------------------------------------------------------------

def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """bf16 where supported (CPU, Ampere+ GPUs), else fp16; ``None`` without AMP."""
    if not enabled:
        return None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """Loss scaling is needed for fp16 only; a disabled scaler still saves/loads its state."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


@dataclass
class Prep:
    """uint8 batch -> normalised model input on the device."""
    mean: Sequence[float]
    std: Sequence[float]
    device: torch.device
    channels_last: bool

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return normalize_batch(x, self.mean, self.std, device=self.device,
                               channels_last=self.channels_last)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, *,
                       label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy against soft targets (rows summing to 1), in float32."""
    return F.cross_entropy(logits.float(), targets, label_smoothing=label_smoothing)


def _bar(iterable, *, show: bool, desc: str, total: int | None = None):
    return tqdm(iterable, desc=desc, total=total, disable=not show, leave=False,
                dynamic_ncols=True, mininterval=1.0)


# --- one optimizer step ---------------------------------------------------------------------

def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                   scaler: torch.amp.GradScaler, params: Iterable[nn.Parameter],
                   clip: float) -> None:
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if clip > 0:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(list(params), clip)
    scaler.step(optimizer)
    scaler.update()


def _hits(logits: torch.Tensor, targets: torch.Tensor) -> int:
    """Predictions inside the image's label set."""
    pred = logits.argmax(1)
    return int((targets.gather(1, pred[:, None]) > 0).sum())


def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loader, prep: Prep,
                    info: DistInfo, *, epoch: int, scaler: torch.amp.GradScaler,
                    dtype: torch.dtype | None, clip: float, label_smoothing: float,
                    train_mode: bool = True) -> dict:
    """One pass over ``loader``; returns loss, accuracy and images/s summed over ranks."""
    model.train(train_mode)
    params = [p for p in model.parameters() if p.requires_grad]
    loss_sum, hits, seen = 0.0, 0, 0
    t0 = time.perf_counter()
    for batch in _bar(loader, show=info.is_main, desc=f"epoch {epoch} train"):
        if batch is None:
            continue
        _, images, targets = batch
        x = prep(images)
        targets = targets.to(prep.device, non_blocking=True)
        with autocast(prep.device, dtype):
            logits = model(x)
        loss = soft_cross_entropy(logits, targets, label_smoothing=label_smoothing)
        optimizer_step(loss, optimizer, scaler, params, clip)
        n = len(targets)
        loss_sum += float(loss.detach()) * n
        hits += _hits(logits.detach(), targets)
        seen += n
    seconds = time.perf_counter() - t0
    loss_sum, hits, seen = all_reduce_sum([loss_sum, hits, seen], info)
    return {"train_loss": loss_sum / max(seen, 1), "train_accuracy": hits / max(seen, 1),
            "images_per_s": seen / max(seconds, 1e-9), "train_images": int(seen)}


# --- inference with gathering ---------------------------------------------------------------

@dataclass
class Outputs:
    """Rows of one inference pass, by dataset index (ascending, no duplicates on rank 0)."""
    index: np.ndarray                  # (n,) int64
    logits: np.ndarray                 # (n, C) float32
    embedding: np.ndarray | None       # (n, D) float32
    failed: dict[int, str]             # dataset index -> reason

    @property
    def probs(self) -> np.ndarray:
        z = self.logits - self.logits.max(axis=1, keepdims=True)
        e = np.exp(z, dtype=np.float64)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def forward_with_features(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, pooled penultimate features) of a timm model."""
    feats = model.forward_head(model.forward_features(x), pre_logits=True)
    return model.get_classifier()(feats), feats


@torch.inference_mode()
def infer(model: nn.Module, loader, prep: Prep, info: DistInfo, *, n_total: int,
          dtype: torch.dtype | None, embeddings: bool = False,
          desc: str = "predict") -> Outputs | None:
    """Run ``model`` over a (sharded) loader of ``PredictImages``; gather on rank 0.

    Every rank keeps the dataset index with each row; rank 0 drops the duplicates that
    ``DistributedSampler``-style padding adds, sorts by index and checks that every one of the
    ``n_total`` items came back exactly once (as a row or as a failure). Other ranks get None.
    """
    model.eval()
    index, logits, feats, failed = [], [], [], {}
    for idx, images, bad in _bar(loader, show=info.is_main, desc=desc):
        failed.update(bad)
        if len(idx) == 0:
            continue
        with autocast(prep.device, dtype):
            out, f = forward_with_features(model, prep(images))
        index.append(idx.numpy())
        logits.append(out.float().cpu().numpy())
        if embeddings:
            feats.append(f.float().cpu().numpy())
    part = Outputs(index=np.concatenate(index) if index else np.zeros(0, np.int64),
                   logits=np.concatenate(logits) if logits else np.zeros((0, 0), np.float32),
                   embedding=np.concatenate(feats) if feats else None, failed=failed)
    parts = gather_to_main(part, info)
    if parts is None:
        return None
    return merge_outputs(parts, n_total=n_total)


def merge_outputs(parts: list[Outputs], *, n_total: int) -> Outputs:
    """Concatenate per-rank outputs, drop padding duplicates, sort by index, check the count."""
    # A rank without readable images has (0, 0) logits; its failures still count.
    rows = [p for p in parts if len(p.index)] or parts[:1]
    index = np.concatenate([p.index for p in rows])
    logits = np.concatenate([p.logits for p in rows])
    emb = None
    if any(p.embedding is not None for p in rows):
        emb = np.concatenate([p.embedding for p in rows if p.embedding is not None])
    failed: dict[int, str] = {}
    for p in parts:
        failed.update(p.failed)
    keep = np.unique(index, return_index=True)[1]  # first occurrence of each index, sorted
    index, logits = index[keep], logits[keep]
    emb = emb[keep] if emb is not None else None
    got = len(index) + len(set(failed) - set(index.tolist()))
    if got != n_total:
        raise RuntimeError(f"inference returned {got} distinct images, expected {n_total}")
    return Outputs(index=index.astype(np.int64), logits=logits, embedding=emb, failed=failed)


# --- stage 1 on cached features -------------------------------------------------------------

def train_head_epoch(head: nn.Module, feats: torch.Tensor, targets: torch.Tensor, sampler,
                     optimizer: torch.optim.Optimizer, info: DistInfo, *, batch_size: int,
                     clip: float, label_smoothing: float, scaler: torch.amp.GradScaler) -> dict:
    """One epoch of the classifier on precomputed (frozen-backbone) features."""
    head.train()
    order = torch.tensor(list(iter(sampler)), dtype=torch.long)
    loss_sum, hits, seen = 0.0, 0, 0
    t0 = time.perf_counter()
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        x, y = feats[idx], targets[idx]
        logits = head(x)
        loss = soft_cross_entropy(logits, y, label_smoothing=label_smoothing)
        optimizer_step(loss, optimizer, scaler, head.parameters(), clip)
        loss_sum += float(loss.detach()) * len(idx)
        hits += _hits(logits.detach(), y)
        seen += len(idx)
    seconds = time.perf_counter() - t0
    loss_sum, hits, seen = all_reduce_sum([loss_sum, hits, seen], info)
    return {"train_loss": loss_sum / max(seen, 1), "train_accuracy": hits / max(seen, 1),
            "images_per_s": seen / max(seconds, 1e-9), "train_images": int(seen)}


@torch.inference_mode()
def head_logits(head: nn.Module, feats: torch.Tensor, *, batch_size: int = 4096) -> np.ndarray:
    head.eval()
    return torch.cat([head(feats[i:i + batch_size]).float()
                      for i in range(0, len(feats), batch_size)]).cpu().numpy()


# --- scores ---------------------------------------------------------------------------------

def set_targets(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred) under the label-set policy of docs/architecture.md.

    y_pred is the argmax; y_true is y_pred when it is in the image's label set, otherwise the
    label-set class the model rated highest.
    """
    y_pred = probs.argmax(1)
    masked = np.where(labels, probs, -np.inf)
    y_true = np.where(labels[np.arange(len(y_pred)), y_pred], y_pred, masked.argmax(1))
    return y_true, y_pred


def scores(logits: np.ndarray, soft: np.ndarray) -> dict:
    """Validation loss, accuracy and macro-F1 (classes present in truth or prediction)."""
    if len(logits) == 0:
        return {"val_loss": float("nan"), "val_accuracy": float("nan"), "val_macro_f1": 0.0}
    t = torch.from_numpy(soft)
    loss = float(soft_cross_entropy(torch.from_numpy(logits), t))
    y_true, y_pred = set_targets(logits, soft > 0)
    return {"val_loss": loss, "val_accuracy": float((y_true == y_pred).mean()),
            "val_macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0))}


def majority_macro_f1(train_primary: np.ndarray, soft: np.ndarray) -> tuple[int, float]:
    """Macro-F1 on validation of always predicting the most common training class."""
    majority = int(np.bincount(train_primary).argmax())
    onehot = np.zeros_like(soft)
    onehot[:, majority] = 1.0
    y_true, y_pred = set_targets(onehot, soft > 0)
    return majority, float(f1_score(y_true, y_pred, average="macro", zero_division=0))


# --- learning-rate range test ---------------------------------------------------------------

def lr_range_test(params: list[nn.Parameter], loss_fn: Callable[[], torch.Tensor],
                  info: DistInfo, *, start: float = 1e-6, end: float = 1.0,
                  num_iter: int = 100, weight_decay: float = 0.0) -> dict:
    """Leslie Smith's range test: raise the LR exponentially, record the smoothed loss.

    ``loss_fn()`` computes the loss of the next training batch. The caller restores the
    weights afterwards. Returns ``{"lr": [...], "loss": [...], "suggestion": float}``
    (see :func:`suggest_lr`).
    """
    opt = torch.optim.AdamW(params, lr=start, weight_decay=weight_decay)
    gamma = (end / start) ** (1 / max(num_iter - 1, 1))
    lrs, losses, smooth, best = [], [], 0.0, float("inf")
    for i in range(num_iter):
        lr = start * gamma ** i
        for g in opt.param_groups:
            g["lr"] = lr
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = all_reduce_sum([float(loss.detach())], info)[0] / info.world_size
        smooth = 0.9 * smooth + 0.1 * value
        debiased = smooth / (1 - 0.9 ** (i + 1))
        lrs.append(lr)
        losses.append(debiased)
        best = min(best, debiased)
        if not np.isfinite(debiased) or debiased > 4 * best and i > 10:
            break
    return {"lr": lrs, "loss": losses, "suggestion": suggest_lr(lrs, losses)}


def suggest_lr(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """One tenth of the LR where the smoothed loss is lowest (fastai's ``lr_min``): robust to
    the noisy start of the curve, and safely below where the loss blows up."""
    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    finite = np.isfinite(losses)
    if not finite.any():
        raise ValueError("learning-rate range test: every loss was NaN or infinite")
    return float(lrs[np.flatnonzero(finite)[np.argmin(losses[finite])]] / 10)
