"""``python -m training.predict``: a checkpoint + a dataset -> a run folder.

    python -m training.predict --checkpoint runs/r1/checkpoint_best.pt \\
        --dataset S01.json S02.json --images ROOT --out runs/r1 --split all
    torchrun --nproc_per_node=4 -m training.predict ...   # same output, sharded

Writes ``predictions.parquet`` and ``manifest.json`` through :func:`data.runs.write_run` (the
one writer, which validates the contract). Images that cannot be read are listed in the
manifest's ``unreadable`` with their reason; they never stop the run.
"""
from __future__ import annotations

import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from data.cct import Dataset, load_dataset
from data.embeddings import PCA_FILE, reduce, save_pca
from data.runs import write_run
from data.splits import split_images
from training import checkpoint as ckpt_io
from training import distributed
from training.config import ConfigError, OneLineParser, check_inputs, exit_on_error
from training.datasets import PredictImages, ShardedSampler, collate_predict
from training.distributed import DistInfo
from training.engine import Outputs, Prep, amp_dtype, head_logits, infer
from training.features import cached_features
from training.model import build_model

log = logging.getLogger(__name__)

SPLIT_FILE = "split.parquet"


class NothingReadable(ConfigError):
    """No image of the split could be read (the run folder written lists every one)."""


def software_versions() -> dict:
    import timm
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "timm": timm.__version__,
            "numpy": np.__version__, "pandas": pd.__version__}


def fractions(config: dict) -> tuple[float, float, float]:
    val, test = float(config["val_fraction"]), float(config["test_fraction"])
    return (1.0 - val - test, val, test)


def split_for(dataset: Dataset, config: dict, checkpoint_path: str | Path) -> pd.Series:
    """image_id -> train/val/test as the training run split them.

    Read from ``split.parquet`` beside the checkpoint (images it does not list were never seen
    by training: ``test``); without that file, recomputed from the checkpoint's config.
    """
    path = Path(checkpoint_path).parent / SPLIT_FILE
    ids = dataset.images["image_id"]
    if path.is_file():
        saved = pd.read_parquet(path, columns=["image_id", "split"]).set_index("image_id")["split"]
        return pd.Series(ids.map(saved).fillna("test").to_numpy(), index=ids.to_numpy(),
                         name="split")
    log.warning("%s not found: recomputing the split from the checkpoint's config", path)
    split = split_images(dataset.images, by=config["split"], fractions=fractions(config),
                         seed=int(config["seed"]))
    return split.reindex(ids.to_numpy()).fillna("test").rename("split")


def load_for_inference(path: str | Path, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """Model (eval mode, channels_last) and the checkpoint's metadata."""
    state = ckpt_io.load(path)
    model = build_model(state["arch"], len(state["classes"]), weights="none")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:  # torch: "Error(s) in loading state_dict ..." (many lines)
        raise ckpt_io.CheckpointError(f"{path}: weights do not fit {state['arch']} with "
                                      f"{len(state['classes'])} classes "
                                      f"({' '.join(str(exc).split())[:300]})") from exc
    # channels_last pays on CPUs too: depthwise convolutions run about twice as fast.
    model.eval().to(device, memory_format=torch.channels_last)
    meta = {k: v for k, v in state.items() if k not in ("model", "optimizer", "scheduler",
                                                        "scaler")}
    return model, meta


def unknown_categories(dataset: Dataset, classes: list[str], image_ids: np.ndarray
                       ) -> list[dict]:
    """Dataset categories the model does not know, with the number of ``image_ids`` carrying
    each (the manifest's ``unknown_categories``, in dataset order; zero-image ones included).

    The checkpoint's classes need not be the dataset's: predictions are written in checkpoint
    class order and analysis aligns the two (``analysis.labelspace``).
    """
    known = set(classes)
    unknown = [c for c in dataset.classes if c not in known]
    if not unknown:
        return []
    labels = dataset.labels
    rows = labels[labels["image_id"].isin(pd.Index(image_ids))
                  & labels["class"].astype(str).isin(unknown)]
    counts = rows.drop_duplicates(["image_id", "class"])["class"].astype(str).value_counts()
    return [{"category": c, "n_images": int(counts.get(c, 0))} for c in unknown]


def build_manifest(*, meta: dict, dataset: Dataset, dataset_paths: list[str],
                   images_root: str | Path, out: Path, checkpoint_path: str | Path,
                   unreadable: list[dict], extra: dict | None = None) -> dict:
    return {
        "run_id": out.name,
        "classes": list(meta["classes"]),
        "dataset": {"paths": [str(Path(p).resolve()) for p in dataset_paths],
                    "sha256": [s.get("sha256") for s in dataset.sources],
                    "images_root": str(Path(images_root).resolve())},
        "model": {"arch": meta["arch"],
                  "checkpoint": os.path.relpath(Path(checkpoint_path).resolve(), out.resolve()),
                  "input_size": int(meta["image_size"]), "mean": list(meta["mean"]),
                  "std": list(meta["std"]), "epoch": meta.get("epoch")},
        "training": dict(meta["config"]),
        "software": software_versions(),
        "unreadable": unreadable,
        **(extra or {}),
    }


def predict_run(model: torch.nn.Module, *, meta: dict, dataset: Dataset,
                dataset_paths: list[str], images_root: str | Path, out: str | Path,
                split: pd.Series, which: str, checkpoint_path: str | Path, info: DistInfo,
                batch_size: int = 64, workers: int = 2, embeddings: bool = False,
                amp: bool = False, extra: dict | None = None,
                feature_cache: Path | None = None,
                embedding_dim: int | None = None) -> Path | None:
    """Predict the images of ``which`` split (or ``all``) and write the run folder (rank 0).

    ``feature_cache``: when the model's backbone is still the initial (frozen) one, its pooled
    features can come from ``training.features`` (computed once, shared between runs) and only
    the classifier runs; same numbers as the full forward pass up to float rounding.
    ``embedding_dim``: with ``embeddings``, store them reduced to that many PCA dimensions
    (``data.embeddings.reduce``, float16) and keep the reduction beside the run.
    Returns the run folder on rank 0, None on other ranks.
    """
    out = Path(out)
    images = dataset.images
    row_split = split.reindex(images["image_id"].to_numpy()).to_numpy()
    mask = np.ones(len(images), bool) if which == "all" else row_split == which
    if not mask.any():
        raise ConfigError(f"--split {which}: none of the {len(images)} dataset images is in that "
                          f"split (images that training never saw count as test)")
    ids = images["image_id"].to_numpy()[mask]
    files = images["file_name"].to_numpy()[mask]
    cuda = info.device.type == "cuda"
    model.to(memory_format=torch.channels_last)
    prep = Prep(meta["mean"], meta["std"], info.device, channels_last=True)
    dtype = amp_dtype(info.device, amp)
    size = int(meta["image_size"])
    t0 = time.perf_counter()
    if feature_cache is not None:
        out_ = _infer_from_features(model, images_root, files, feature_cache, size=size,
                                    prep=prep, info=info, batch_size=batch_size,
                                    workers=workers, dtype=dtype, embeddings=embeddings)
    else:
        dataset_ = PredictImages(images_root, files, size)
        sampler = ShardedSampler(len(dataset_), rank=info.rank, world_size=info.world_size,
                                 shuffle=False)
        loader = DataLoader(dataset_, batch_size=batch_size, sampler=sampler,
                            num_workers=workers, collate_fn=collate_predict, pin_memory=cuda)
        out_ = infer(model, loader, prep, info, n_total=len(dataset_), dtype=dtype,
                     embeddings=embeddings, desc=f"predict {which}")
    seconds = time.perf_counter() - t0
    if out_ is None:
        return None
    rate = len(files) / max(seconds, 1e-9)
    log.info("predicted %d images (%d unreadable) in %.1f s: %.1f images/s", len(out_.index),
             len(out_.failed), seconds, rate)
    unreadable = [{"image_id": str(ids[i]), "reason": r} for i, r in sorted(out_.failed.items())]
    unknown = unknown_categories(dataset, meta["classes"], ids)
    if unknown:
        log.warning("%d dataset categories are unknown to the model (e.g. %s): their images "
                    "are listed in the manifest's unknown_categories", len(unknown),
                    unknown[0]["category"])
    manifest = build_manifest(meta=meta, dataset=dataset, dataset_paths=dataset_paths,
                              images_root=images_root, out=out,
                              checkpoint_path=checkpoint_path, unreadable=unreadable,
                              extra={"prediction": {"split": which, "world_size": info.world_size,
                                                    "images_per_s": round(rate, 2),
                                                    "device": str(info.device),
                                                    "from_cached_features":
                                                        feature_cache is not None},
                                     "unknown_categories": unknown,
                                     **(extra or {})})
    if not len(out_.index):  # nothing readable: a run folder that lists every failure
        write_run(out, manifest=manifest, image_ids=np.zeros(0, str),
                  probs=np.zeros((0, len(meta["classes"])), np.float32), split="all")
        raise NothingReadable(f"none of the {len(files)} images could be read; see "
                              f"{out / 'manifest.json'} ('unreadable'), e.g. "
                              f"{files[0]}: {unreadable[0]['reason'] if unreadable else '?'}")
    probs = out_.probs  # in checkpoint class order, which the manifest records
    emb, emb_info = stored_embedding(out_.embedding, embedding_dim, out)
    if emb_info:
        manifest["embedding"] = emb_info
    return write_run(out, manifest=manifest, image_ids=ids[out_.index].astype(str), probs=probs,
                     split=row_split[mask][out_.index].astype(str), embedding=emb)


def stored_embedding(embedding: np.ndarray | None, dim: int | None,
                     out: Path) -> tuple[np.ndarray | None, dict]:
    """The embedding as stored (float16, PCA-reduced to ``dim`` when given) and its manifest
    entry; a reduction is written beside the run (``data.embeddings.PCA_FILE``)."""
    if embedding is None:
        return None, {}
    info = {"dim": int(embedding.shape[1]), "source_dim": int(embedding.shape[1]),
            "reduction": None}
    if dim is None or dim >= embedding.shape[1]:
        (out / PCA_FILE).unlink(missing_ok=True)  # a stale reduction would misplace uploads
        return embedding.astype(np.float16), info
    reduced, params = reduce(embedding, dim=dim)
    out.mkdir(parents=True, exist_ok=True)
    save_pca(out, params)
    log.info("embeddings reduced %d -> %d dimensions (PCA on %d images, %.1f %% of the "
             "variance kept)", embedding.shape[1], dim, params.n_fit,
             100 * float(params.explained_variance_ratio.sum()))
    return reduced, {**info, "dim": int(dim), "reduction": PCA_FILE,
                     "explained_variance": round(float(params.explained_variance_ratio.sum()), 4)}


def _infer_from_features(model, root, files, cache: Path, *, size: int, prep: Prep,
                         info: DistInfo, batch_size: int, workers: int, dtype,
                         embeddings: bool) -> Outputs | None:
    feats, failed = cached_features(model, root=root, file_names=files, path=cache,
                                    image_size=size, prep=prep, info=info,
                                    batch_size=batch_size, workers=workers, dtype=dtype)
    if not info.is_main:
        return None
    ok = np.setdiff1d(np.arange(len(files)), np.fromiter(failed, np.int64, len(failed)))
    rows = feats[torch.as_tensor(ok)].to(prep.device)
    return Outputs(index=ok.astype(np.int64),
                   logits=head_logits(model.get_classifier(), rows),
                   embedding=rows.cpu().numpy() if embeddings else None, failed=failed)


def build_parser() -> OneLineParser:
    p = OneLineParser(prog="python -m training.predict",
                      description="Predict a dataset with a checkpoint; write a run folder.")
    p.add_argument("--checkpoint", required=True, metavar="CKPT")
    p.add_argument("--dataset", nargs="+", required=True, metavar="JSON")
    p.add_argument("--images", required=True, metavar="ROOT")
    p.add_argument("--out", required=True, metavar="RUN_DIR")
    p.add_argument("--split", choices=("val", "test", "all"), default="all")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--amp", action="store_true")
    p.add_argument("--embeddings", action="store_true",
                   help="also store float16 penultimate-layer embeddings")
    p.add_argument("--embedding-dim", type=int, default=None, metavar="D",
                   help="with --embeddings: store them reduced to D PCA dimensions (64: 7.2 M "
                        "images in 0.92 GB); the reduction is kept beside the run")
    return p


def _check_args(args) -> None:
    check_inputs(dataset=args.dataset, images=args.images, batch_size=args.batch_size,
                 workers=args.workers, out=args.out, other_inputs=[args.checkpoint])
    if not Path(args.checkpoint).is_file():
        raise ConfigError(f"--checkpoint: no such file: {args.checkpoint}")
    if args.embedding_dim is not None and (args.embedding_dim < 1 or not args.embeddings):
        raise ConfigError(f"--embedding-dim {args.embedding_dim}: needs --embeddings and a "
                          "positive number of dimensions")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: CUDA is not available on this machine")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        _check_args(args)
        info = distributed.setup(args.device)
        try:
            model, meta = load_for_inference(args.checkpoint, info.device)
            dataset = load_dataset(args.dataset)
            split = split_for(dataset, meta["config"], args.checkpoint)
            out = predict_run(model, meta=meta, dataset=dataset, dataset_paths=args.dataset,
                              images_root=args.images, out=args.out, split=split,
                              which=args.split, checkpoint_path=args.checkpoint, info=info,
                              batch_size=args.batch_size, workers=args.workers,
                              embeddings=args.embeddings, amp=args.amp,
                              embedding_dim=args.embedding_dim)
        finally:
            distributed.cleanup()
    except (ValueError, OSError) as exc:  # ConfigError, CheckpointError, ..., unreadable files
        exit_on_error(parser.prog, exc)
    if out is not None:
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
