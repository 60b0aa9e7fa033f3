"""``python -m training.train``: fine-tune a pretrained backbone, then predict with it.

    python -m training.train --dataset S01.json --images ROOT --out runs/r1
    torchrun --nproc_per_node=4 -m training.train --dataset ... --device cuda --amp

Reads like torchvision's ``references/classification/train.py``: a flat :func:`main`, one
:func:`~training.engine.train_one_epoch` and one evaluation per epoch, checkpoints holding state
dicts and a plain-dict config, resume restoring model, optimizer, scheduler, scaler and epoch,
only rank 0 writing.

Two stages, as fastai's ``fine_tune``: stage 1 (``--epochs-frozen``) trains the classifier on a
frozen backbone (batch-norm statistics frozen too; with ``--cache-features`` on precomputed
features), stage 2 (``--epochs``) unfreezes everything with the backbone at
``lr * --backbone-lr-mult``. Each stage stops early after ``--patience`` epochs without a better
validation macro-F1; the best epoch's weights make the final predictions.

Targets: an image with k species in its label set trains towards 1/k on each (soft targets).
Filters (``--empty-keep``, ``--first-frame-only``) apply to the training split only; validation
and test keep every image, so runs with different filters are scored on the same images.
"""
from __future__ import annotations

import copy
import csv
import io
import json
import logging
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from data.cct import Dataset, load_dataset
from data.files import atomic_write
from data.images import resolve
from data.splits import split_images
from training import checkpoint as ckpt_io
from training import distributed
from training.config import TrainConfig, exit_on_error, parse_args
from training.datasets import (PredictImages, ShardedSampler, TrainImages, balanced_weights,
                               collate_predict, collate_train, soft_targets)
from training.distributed import DistInfo
from training.engine import (Prep, amp_dtype, autocast, head_logits, infer, lr_range_test,
                             majority_macro_f1, make_scaler, scores, soft_cross_entropy,
                             train_head_epoch, train_one_epoch)
from training.features import cache_file, cached_features
from training.lr_plot import save_lr_plot
from training.model import (backbone_parameters, build_model, head_parameters, normalization,
                            weights_id)
from training.predict import SPLIT_FILE, fractions, predict_run

log = logging.getLogger(__name__)

HISTORY_FIELDS = ("epoch", "stage", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                  "val_macro_f1", "lr", "backbone_lr", "images_per_s", "seconds")


# --- which images train, which validate -----------------------------------------------------

@dataclass
class Plan:
    split: pd.Series           # image_id -> train/val/test, every image of the dataset
    used: np.ndarray           # (n_images,) bool: trained or validated on
    train: np.ndarray          # row positions in dataset.images
    train_pool: np.ndarray     # training-split rows before --empty-keep / --first-frame-only
    val: np.ndarray
    soft: np.ndarray           # (n_images, C) float32 soft targets
    primary: np.ndarray        # (n_images,) first annotation's class index (-1: none)


def make_plan(dataset: Dataset, cfg: TrainConfig) -> Plan:
    """Split every image (whole sites or captures), then filter the training side only."""
    images = dataset.images
    ids = images["image_id"].to_numpy()
    split = split_images(images, by=cfg.split, fractions=fractions(cfg.to_dict()), seed=cfg.seed)
    split = split.reindex(ids).fillna("test").rename("split")
    side = split.to_numpy()
    labels, primary = dataset.label_arrays(ids, dataset.classes)
    on_disk = np.array([_exists(cfg.images, f) for f in images["file_name"].to_numpy()])
    usable = labels.any(axis=1) & on_disk
    rng = np.random.default_rng(cfg.seed)
    if cfg.limit is not None and usable.sum() > cfg.limit:
        keep = rng.choice(np.flatnonzero(usable), size=cfg.limit, replace=False)
        usable = np.isin(np.arange(len(ids)), keep)
    pool = usable & (side == "train")
    train = pool.copy()
    if cfg.first_frame_only:
        train &= images["frame_num"].to_numpy() == 1
    if cfg.empty_class in dataset.classes:
        e = dataset.classes.index(cfg.empty_class)
        only_empty = labels[:, e] & (labels.sum(axis=1) == 1)
        train &= ~(only_empty & (rng.random(len(ids)) >= cfg.empty_keep))
    elif cfg.empty_keep < 1:
        log.warning("--empty-keep: no class named %r in the dataset; nothing dropped",
                    cfg.empty_class)
    val = usable & (side == "val")
    for name, mask in (("training", train), ("validation", val)):
        if not mask.any():
            raise ValueError(f"{cfg.dataset[0]}: no {name} images left after the split by "
                             f"{cfg.split} and the filters ({int(usable.sum())} usable images)")
    return Plan(split=split, used=train | val, train=np.flatnonzero(train),
                train_pool=np.flatnonzero(pool),
                val=np.flatnonzero(val), soft=soft_targets(labels),
                primary=primary)


def _exists(root: str, file_name: str) -> bool:
    try:
        return resolve(root, file_name).is_file()
    except ValueError:
        return False


def write_plan(out: Path, plan: Plan, dataset: Dataset, cfg: dict) -> None:
    table = pd.DataFrame({"image_id": plan.split.index.astype(str),
                          "split": plan.split.to_numpy().astype(str), "used": plan.used})
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    atomic_write(out / SPLIT_FILE, buf.getvalue())
    atomic_write(out / "config.json", json.dumps(cfg, indent=2).encode())
    atomic_write(out / "classes.json", json.dumps(dataset.classes, indent=1).encode())


# --- stages ---------------------------------------------------------------------------------

def stage_of(epoch: int, cfg: TrainConfig) -> int:
    return 1 if epoch < cfg.epochs_frozen else 2


def stage_end(stage: int, cfg: TrainConfig) -> int:
    return cfg.epochs_frozen if stage == 1 else cfg.epochs_frozen + cfg.epochs


#: Stage 2 runs the head at a tenth of the stage-1 LR (fastai's fine_tune does the same kind
#: of drop), and the backbone lower still (``--backbone-lr-mult``).
STAGE2_LR_MULT = 0.1


def make_optimizer(model: torch.nn.Module, stage: int, cfg: TrainConfig, lr: float):
    """Stage 1: the head only, at ``lr``. Stage 2: head at ``lr / 10``, backbone at
    ``lr / 10 * backbone_lr_mult``; cosine decay over the stage's epochs."""
    for p in backbone_parameters(model):
        p.requires_grad_(stage == 2)
    if stage == 2:
        lr *= STAGE2_LR_MULT
    groups = [{"params": head_parameters(model), "lr": lr, "name": "head"}]
    if stage == 2:
        groups.insert(0, {"params": backbone_parameters(model), "lr": lr * cfg.backbone_lr_mult,
                          "name": "backbone"})
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=cfg.weight_decay)
    length = stage_end(stage, cfg) - (0 if stage == 1 else cfg.epochs_frozen)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(length, 1),
                                                       eta_min=lr * 0.01)
    return opt, sched


def wrap(module: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """DDP around the trainable part (built per stage: DDP only tracks trainable parameters)."""
    if not info.distributed:
        return module
    ids = [info.device.index] if info.device.type == "cuda" else None
    return DDP(module, device_ids=ids)


def current_lrs(opt: torch.optim.Optimizer) -> tuple[float, float]:
    by = {g.get("name"): g["lr"] for g in opt.param_groups}
    return by.get("head", float("nan")), by.get("backbone", 0.0)


# --- the run --------------------------------------------------------------------------------

def main(cfg: TrainConfig) -> Path | None:
    """Train, checkpoint every epoch, predict ``cfg.predict_split``; the run folder (rank 0)."""
    info = distributed.setup(cfg.device)
    try:
        return _run(cfg, info)
    finally:
        distributed.cleanup()


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _run(cfg: TrainConfig, info: DistInfo) -> Path | None:
    _seed(cfg.seed + info.rank)
    out = Path(cfg.out)
    device, cuda = info.device, info.device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    dataset = load_dataset(cfg.dataset)
    plan = make_plan(dataset, cfg)
    classes = dataset.classes
    mean, std = normalization(cfg.arch, cfg.weights)
    model = build_model(cfg.arch, len(classes), weights=cfg.weights)
    # channels_last on CPUs too: depthwise convolutions run about twice as fast there.
    model = model.to(device, memory_format=torch.channels_last)
    prep = Prep(mean, std, device, channels_last=True)
    dtype = amp_dtype(device, cfg.amp)
    scaler = make_scaler(device, dtype)
    majority, majority_f1 = majority_macro_f1(plan.primary[plan.train_pool], plan.soft[plan.val])
    log.info("%d training, %d validation images, %d classes; majority class %r scores "
             "val macro-F1 %.3f", len(plan.train), len(plan.val), len(classes),
             classes[majority], majority_f1)

    st = {"next_epoch": 0, "best_f1": -1.0, "best_epoch": -1, "bad_epochs": 0, "history": [],
          "lr": cfg.lr, "stage": 0}
    resumed = ckpt_io.load(cfg.resume) if cfg.resume else None
    if resumed is not None:
        _check_resumable(resumed, cfg, classes)
        model.load_state_dict(resumed["model"])
        st.update({k: resumed[k] for k in st})
        log.info("resumed from %s at epoch %d", cfg.resume, st["next_epoch"])
    best_state = _initial_best(out, resumed)
    run_cfg = cfg.to_dict()
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_plan(out, plan, dataset, run_cfg)

    total = cfg.epochs_frozen + cfg.epochs
    feats = None
    if cfg.cache_features and st["next_epoch"] < cfg.epochs_frozen:
        feats = _stage1_features(model, plan, dataset, cfg, prep, info, dtype)
    loaders = _Loaders(plan, dataset, cfg, info)
    if st["lr"] == "auto":
        st["lr"] = _find_lr(model, cfg, info, out, loaders, prep, dtype, feats)
    run_cfg["lr_resolved"] = float(st["lr"])

    stage, opt, sched, trainable = 0, None, None, None
    epoch = st["next_epoch"]
    while epoch < total:
        if stage_of(epoch, cfg) != stage:
            stage = stage_of(epoch, cfg)
            opt, sched = make_optimizer(model, stage, cfg, float(st["lr"]))
            if resumed is not None and resumed["stage"] == stage:
                opt.load_state_dict(resumed["optimizer"])
                sched.load_state_dict(resumed["scheduler"])
                scaler.load_state_dict(resumed["scaler"])
            elif st["stage"] != stage:
                st["bad_epochs"] = 0
            use_feats = stage == 1 and feats is not None
            trainable = wrap(model.get_classifier() if use_feats else model, info)
        t0 = time.perf_counter()
        head_lr, bb_lr = current_lrs(opt)
        if stage == 1 and feats is not None:
            sampler = loaders.train_sampler(subset=np.flatnonzero(feats.train_ok))
            sampler.set_epoch(epoch)
            stats = train_head_epoch(trainable, feats.train, feats.targets, sampler, opt, info,
                                     batch_size=cfg.batch_size, clip=cfg.clip_grad_norm,
                                     label_smoothing=cfg.label_smoothing, scaler=scaler)
            val = scores(head_logits(model.get_classifier(), feats.val),
                         plan.soft[plan.val][feats.val_ok])
        else:
            loader = loaders.train(epoch)
            stats = train_one_epoch(trainable, opt, loader, prep, info, epoch=epoch,
                                    scaler=scaler, dtype=dtype, clip=cfg.clip_grad_norm,
                                    label_smoothing=cfg.label_smoothing, train_mode=stage == 2)
            val = _evaluate(model, loaders, plan, prep, info, dtype)
        sched.step()
        row = {"epoch": epoch, "stage": stage, **stats, **val, "lr": head_lr,
               "backbone_lr": bb_lr, "seconds": time.perf_counter() - t0}
        st["history"].append({k: row[k] for k in HISTORY_FIELDS})
        improved = val["val_macro_f1"] > st["best_f1"] + 1e-9
        if improved:
            st.update(best_f1=val["val_macro_f1"], best_epoch=epoch, bad_epochs=0)
            best_state = copy.deepcopy(model.state_dict())
        else:
            st["bad_epochs"] += 1
        stop = cfg.patience > 0 and st["bad_epochs"] >= cfg.patience
        st["next_epoch"] = stage_end(stage, cfg) if stop else epoch + 1
        st["stage"] = stage
        log.info("epoch %d (stage %d): train loss %.4f acc %.3f | val loss %.4f acc %.3f "
                 "macro-F1 %.3f (best %.3f @%d, majority %.3f) | lr %.2g | %.0f img/s | %.0f s%s",
                 epoch, stage, stats["train_loss"], stats["train_accuracy"], val["val_loss"],
                 val["val_accuracy"], val["val_macro_f1"], st["best_f1"], st["best_epoch"],
                 majority_f1, head_lr, stats["images_per_s"], row["seconds"],
                 " | early stop" if stop else "")
        if info.is_main:
            meta = _meta(model, cfg, run_cfg, classes, mean, std, epoch)
            state = {**meta, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                     "scaler": scaler.state_dict(), **st}
            ckpt_io.save(state, out / ckpt_io.LAST)
            if improved:
                ckpt_io.save(state, out / ckpt_io.BEST)
            write_history(out / "history.csv", st["history"])
        epoch = st["next_epoch"]

    if best_state is not None:
        model.load_state_dict(best_state)
    summary = {"best_epoch": st["best_epoch"], "best_val_macro_f1": st["best_f1"],
               "majority_class": classes[majority], "majority_val_macro_f1": majority_f1,
               "n_train": int(len(plan.train)), "n_val": int(len(plan.val)),
               "epochs_run": len(st["history"])}
    if info.is_main:
        atomic_write(out / "train_summary.json", json.dumps(summary, indent=2).encode())
    distributed.barrier()
    meta = _meta(model, cfg, run_cfg, classes, mean, std, st["best_epoch"])
    # The best weights still have the initial backbone when they come from stage 1: the cached
    # features then stand in for the backbone's forward pass.
    frozen = cfg.cache_features and st["best_epoch"] < cfg.epochs_frozen
    return predict_run(model, meta=meta, dataset=dataset, dataset_paths=cfg.dataset,
                       images_root=cfg.images, out=out, split=plan.split,
                       which=cfg.predict_split, checkpoint_path=out / ckpt_io.BEST, info=info,
                       batch_size=cfg.batch_size, workers=cfg.workers,
                       embeddings=cfg.embeddings, amp=cfg.amp,
                       embedding_dim=cfg.embedding_dim, extra={"training_summary": summary},
                       feature_cache=_feature_cache(cfg, prep) if frozen else None)


def _meta(model, cfg: TrainConfig, run_cfg: dict, classes, mean, std, epoch: int) -> dict:
    return {"model": model.state_dict(), "config": run_cfg, "classes": list(classes),
            "arch": cfg.arch, "image_size": cfg.image_size, "mean": list(mean),
            "std": list(std), "epoch": epoch}


def _initial_best(out: Path, resumed: dict | None):
    if resumed is None or resumed["best_epoch"] < 0:
        return None
    best = out / ckpt_io.BEST
    return ckpt_io.load(best)["model"] if best.is_file() else resumed["model"]


def _check_resumable(state: dict, cfg: TrainConfig, classes: list[str]) -> None:
    if list(state["classes"]) != list(classes) or state["arch"] != cfg.arch:
        raise ckpt_io.CheckpointError(f"{cfg.resume}: trained for {state['arch']} on "
                                      f"{len(state['classes'])} classes; cannot resume "
                                      f"{cfg.arch} on {len(classes)}")
    if state["image_size"] != cfg.image_size:
        raise ckpt_io.CheckpointError(f"{cfg.resume}: image size {state['image_size']} "
                                      f"differs from --image-size {cfg.image_size}")


class _Loaders:
    """Train and validation loaders built once (persistent workers on CUDA)."""

    def __init__(self, plan: Plan, dataset: Dataset, cfg: TrainConfig, info: DistInfo):
        self.plan, self.cfg, self.info = plan, cfg, info
        self.cuda = info.device.type == "cuda"
        files = dataset.images["file_name"].to_numpy()
        self.train_set = TrainImages(cfg.images, files[plan.train], plan.soft[plan.train],
                                     cfg.image_size)
        self.val_set = PredictImages(cfg.images, files[plan.val], cfg.image_size)
        self._train_loader = self._val_loader = None
        self._sampler = None

    def _kw(self) -> dict:
        w = self.cfg.workers
        return {"num_workers": w, "pin_memory": self.cuda,
                "persistent_workers": self.cuda and w > 0}

    def train_sampler(self, *, subset: np.ndarray | None = None) -> ShardedSampler:
        primary = self.plan.primary[self.plan.train]
        if subset is not None:
            primary = primary[subset]
        weights = balanced_weights(primary) if self.cfg.balanced else None
        return ShardedSampler(len(primary), rank=self.info.rank,
                              world_size=self.info.world_size, seed=self.cfg.seed,
                              weights=weights)

    def train(self, epoch: int) -> DataLoader:
        if self._train_loader is None:
            self._sampler = self.train_sampler()
            self._train_loader = DataLoader(self.train_set, batch_size=self.cfg.batch_size,
                                            sampler=self._sampler, collate_fn=collate_train,
                                            drop_last=False, **self._kw())
        self._sampler.set_epoch(epoch)
        return self._train_loader

    def val(self) -> DataLoader:
        if self._val_loader is None:
            sampler = ShardedSampler(len(self.val_set), rank=self.info.rank,
                                     world_size=self.info.world_size, shuffle=False)
            self._val_loader = DataLoader(self.val_set, batch_size=self.cfg.batch_size,
                                          sampler=sampler, collate_fn=collate_predict,
                                          **self._kw())
        return self._val_loader


def _evaluate(model, loaders: _Loaders, plan: Plan, prep: Prep, info: DistInfo, dtype) -> dict:
    """Validation scores on rank 0, broadcast so every rank takes the same early-stop decision."""
    out = infer(model, loaders.val(), prep, info, n_total=len(plan.val), dtype=dtype,
                desc="val")
    result = None
    if out is not None:
        result = scores(out.logits, plan.soft[plan.val][out.index])
    return distributed.broadcast_from_main(result, info)


def _feature_cache(cfg: TrainConfig, prep: Prep) -> Path:
    return cache_file(weights_id(cfg.arch, cfg.weights), image_size=cfg.image_size,
                      mean=prep.mean, std=prep.std)


@dataclass
class Stage1Features:
    """Frozen-backbone features of the readable training and validation images."""
    train: torch.Tensor        # (n_train_ok, D) on the device
    targets: torch.Tensor      # (n_train_ok, C) soft targets on the device
    train_ok: np.ndarray       # (len(plan.train),) bool
    val: torch.Tensor          # (n_val_ok, D)
    val_ok: np.ndarray         # (len(plan.val),) bool


def _stage1_features(model, plan: Plan, dataset: Dataset, cfg: TrainConfig, prep: Prep,
                     info: DistInfo, dtype) -> Stage1Features:
    files = dataset.images["file_name"].to_numpy()
    rows = np.concatenate([plan.train, plan.val])
    feats, failed = cached_features(model, root=cfg.images, file_names=files[rows],
                                    path=_feature_cache(cfg, prep),
                                    image_size=cfg.image_size, prep=prep, info=info,
                                    batch_size=cfg.batch_size, workers=cfg.workers, dtype=dtype)
    ok = np.ones(len(rows), bool)
    ok[list(failed)] = False
    if failed:
        log.warning("%d training/validation images unreadable, left out: e.g. %s",
                    len(failed), files[rows][next(iter(failed))])
    n = len(plan.train)
    feats = feats.to(prep.device)
    keep = torch.as_tensor(ok, device=prep.device)
    targets = torch.as_tensor(plan.soft[plan.train][ok[:n]], device=prep.device)
    return Stage1Features(train=feats[:n][keep[:n]], targets=targets, train_ok=ok[:n],
                          val=feats[n:][keep[n:]], val_ok=ok[n:])


def _find_lr(model, cfg: TrainConfig, info: DistInfo, out: Path, loaders: _Loaders, prep: Prep,
             dtype, feats: Stage1Features | None) -> float:
    """LR range test on the first stage's trainable parameters; weights restored after."""
    stage = stage_of(0, cfg)
    saved = copy.deepcopy(model.state_dict())
    make_optimizer(model, stage, cfg, 1e-3)  # sets requires_grad for the stage
    g = torch.Generator().manual_seed(cfg.seed)
    if stage == 1 and feats is not None:
        head = wrap(model.get_classifier(), info)
        n = len(feats.train)

        def loss_fn():
            idx = torch.randint(0, n, (min(cfg.batch_size, n),), generator=g)
            return soft_cross_entropy(head(feats.train[idx]), feats.targets[idx])
        params = head_parameters(model)
    else:
        net = wrap(model, info)
        net.train(stage == 2)
        batches = _cycle(lambda: loaders.train(0))

        def loss_fn():
            _, images, targets = next(batches)
            with autocast(prep.device, dtype):
                logits = net(prep(images))
            return soft_cross_entropy(logits, targets.to(prep.device))
        params = [p for p in model.parameters() if p.requires_grad]
    result = lr_range_test(params, loss_fn, info, num_iter=100, weight_decay=cfg.weight_decay)
    model.load_state_dict(saved)
    lr = result["suggestion"]
    log.info("learning-rate range test suggests %.3g", lr)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_lr_plot(result["lr"], result["loss"], lr, out / "lr_find.png")
        pd.DataFrame({"lr": result["lr"], "loss": result["loss"]}).to_csv(
            out / "lr_find.csv", index=False)
    return float(lr)


def _cycle(make):
    while True:
        for batch in make():
            if batch is not None:
                yield batch


def write_history(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write(path, buf.getvalue().encode())


def cli(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        out = main(cfg)
    except (ValueError, OSError) as exc:  # DatasetError, WeightsError, ..., unwritable --out
        exit_on_error("python -m training.train", exc)
    if out is not None:
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
