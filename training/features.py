"""Cache of frozen-backbone features, so stage 1 trains only a linear head on CPU.

One file per (initial weights, input size, normalisation): ``cache_dir()/features/<key>.pt``
holding ``{"keys": [...], "features": (n, D) float32}``. An image's key is its resolved path,
mtime and byte size, so an edited image is recomputed. Runs that start from the same weights
(the demo's two runs) share the file. Unreadable images are not cached; they are reported.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from data.images import resolve
from data.paths import cache_dir
from training import checkpoint, distributed
from training.datasets import PredictImages, ShardedSampler, collate_predict
from training.distributed import DistInfo
from training.engine import Prep, infer

log = logging.getLogger(__name__)


def cache_file(weights_id: str, *, image_size: int, mean: Sequence[float],
               std: Sequence[float]) -> Path:
    tag = hashlib.sha256(repr((weights_id, image_size, tuple(mean), tuple(std))).encode())
    return cache_dir() / "features" / f"{weights_id}-{image_size}-{tag.hexdigest()[:8]}.pt"


def image_key(root: str | Path, file_name: str) -> str | None:
    """``path|mtime_ns|size`` of an image, or None when it cannot be found/stat'ed."""
    try:
        path = resolve(root, file_name)
        st = os.stat(path)
    except (ValueError, OSError):
        return None
    return f"{path}|{st.st_mtime_ns}|{st.st_size}"


def _read(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        return {}
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        return dict(zip(blob["keys"], blob["features"], strict=True))
    except Exception as exc:  # a damaged cache is rebuilt, never fatal
        log.warning("ignoring unreadable feature cache %s: %s", path, exc)
        return {}


def cached_features(model: torch.nn.Module, *, root: str | Path, file_names: Sequence[str],
                    path: Path, image_size: int, prep: Prep, info: DistInfo,
                    batch_size: int, workers: int,
                    dtype: torch.dtype | None) -> tuple[torch.Tensor, dict[int, str]]:
    """Pooled penultimate features of ``file_names`` (row i = file i), computing what is missing.

    Returns ``(features (n, D) float32 on CPU, failed {i: reason})``; rows of failed images
    are zero. Under torchrun the missing images are sharded over ranks; rank 0 writes the cache.
    """
    keys = [image_key(root, f) for f in file_names]
    known = _read(path)
    todo = [i for i, k in enumerate(keys) if k is None or k not in known]
    failed: dict[int, str] = {}
    if todo:
        log.info("computing backbone features for %d of %d images (cache %s)", len(todo),
                 len(keys), path.name)
        dataset = PredictImages(root, [file_names[i] for i in todo], image_size)
        sampler = ShardedSampler(len(todo), rank=info.rank, world_size=info.world_size,
                                 shuffle=False)
        loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler,
                            num_workers=workers, collate_fn=collate_predict,
                            pin_memory=prep.device.type == "cuda")
        out = infer(model, loader, prep, info, n_total=len(todo), dtype=dtype,
                    embeddings=True, desc="features")
        if info.is_main:
            for row, sub in enumerate(out.index):
                known[keys[todo[sub]]] = torch.from_numpy(out.embedding[row]).float()
            failed = {todo[sub]: reason for sub, reason in out.failed.items()}
            if known:  # nothing to write when every image failed
                checkpoint.save({"keys": list(known),
                                 "features": torch.stack(list(known.values()))}, path)
        failed = distributed.broadcast_from_main(failed, info)
        distributed.barrier()
        if not info.is_main:
            known = _read(path)
    dim = next(iter(known.values())).shape[0] if known else 0
    feats = torch.zeros((len(keys), dim), dtype=torch.float32)
    for i, k in enumerate(keys):
        if i in failed:
            continue
        if k is None or k not in known:
            failed[i] = "missing" if k is None else "not in the feature cache"
            continue
        feats[i] = known[k]
    return feats, failed

