"""Prediction throughput on CPU: ``training.predict`` against a naive baseline, same run.

Both sides run the same model (efficientnet_lite0, 224 px) at the same batch size over the same
full-size 2048x1536 Snapshot Serengeti JPEGs (the ten real fixture frames, copied to 128 files):

- naive: PIL full decode + torchvision ``Resize``/``ToTensor``/``Normalize`` in a plain
  ``DataLoader`` (no workers), ``torch.no_grad``;
- ours: ``training.predict.predict_run`` (JPEG draft-mode reduced decoding through
  ``data.images.open_image``, worker processes, uint8 batches normalised per batch,
  ``inference_mode``, channels_last), including writing the run folder.

Target: at least 2x the naive images/s.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from bench import figures

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "serengeti-s1"
N_IMAGES = 128
BATCH = 32
SIZE = 224
WORKERS = 2


class NaiveImages(Dataset):
    def __init__(self, paths, transform):
        self.paths, self.transform = paths, transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.transform(Image.open(self.paths[i]).convert("RGB"))


def _dataset(root: Path) -> tuple[Path, list[Path]]:
    sources = sorted(FIXTURES.rglob("*.JPG"))
    paths = []
    for i in range(N_IMAGES):
        dst = root / "images" / f"IMG{i:04d}.JPG"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sources[i % len(sources)], dst)
        paths.append(dst)
    doc = {"info": {"version": "bench"}, "categories": [{"id": 0, "name": "empty"},
                                                        {"id": 18, "name": "elephant"}],
           "images": [{"id": p.stem, "file_name": p.name, "frame_num": 1, "seq_id": f"S#{i}",
                       "seq_num_frames": 1, "width": 2048, "height": 1536, "corrupt": False,
                       "location": "B01", "datetime": "2010-08-19 18:24:57"}
                      for i, p in enumerate(paths)],
           "annotations": [{"id": f"a{i}", "image_id": p.stem, "category_id": 18,
                            "seq_id": f"S#{i}", "sequence_level_annotation": False}
                           for i, p in enumerate(paths)]}
    json_path = root / "bench.json"
    json_path.write_text(json.dumps(doc))
    return json_path, paths


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (the loader workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _timed(fn) -> tuple[float, float]:
    """(wall, cpu) seconds of ``fn()``."""
    w, c = time.perf_counter(), _cpu()
    fn()
    return time.perf_counter() - w, _cpu() - c


def _naive(model, paths, mean, std) -> tuple[float, float]:
    import torchvision.transforms as T

    tf = T.Compose([T.Resize((SIZE, SIZE)), T.ToTensor(), T.Normalize(mean, std)])
    loader = DataLoader(NaiveImages(paths, tf), batch_size=BATCH)

    def run():
        with torch.no_grad():
            for x in loader:
                model(x)
    return _timed(run)


def _ours(model, meta, json_path, root, out) -> tuple[float, float]:
    from data.cct import load_dataset
    from training.distributed import DistInfo
    from training.predict import predict_run

    dataset = load_dataset([json_path])
    info = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    split = pd.Series("test", index=dataset.images["image_id"].to_numpy())
    return _timed(lambda: predict_run(
        model, meta=meta, dataset=dataset, dataset_paths=[str(json_path)],
        images_root=root / "images", out=out, split=split, which="all",
        checkpoint_path=out / "none.pt", info=info, batch_size=BATCH, workers=WORKERS))


def main() -> None:
    from training.config import TrainConfig
    from training.model import LITE0_ARCH, build_model, normalization

    if not FIXTURES.is_dir():
        print(f"bench predict: skipped, fixtures absent: {FIXTURES}")
        return
    with tempfile.TemporaryDirectory(prefix="bench_predict_") as tmp:
        root = Path(tmp)
        json_path, paths = _dataset(root)
        model = build_model(LITE0_ARCH, 2, weights="auto").eval()
        mean, std = normalization(LITE0_ARCH, "auto")
        cfg = TrainConfig(dataset=[str(json_path)], images=str(root), out=str(root / "run"),
                          image_size=SIZE).to_dict()
        meta = {"classes": ["empty", "elephant"], "arch": LITE0_ARCH, "image_size": SIZE,
                "mean": list(mean), "std": list(std), "config": cfg, "epoch": 0}
        for p in paths:  # same page-cache state for both sides
            p.read_bytes()
        naive = _naive(model, paths, mean, std)
        ours = _ours(copy.deepcopy(model), meta, json_path, root, root / "run")
        print(f"{N_IMAGES} full-size 2048x1536 JPEGs, {SIZE} px, batch {BATCH}, "
              f"{torch.get_num_threads()} torch threads, load average {os.getloadavg()[0]:.1f}")
        for name, (wall, cpu) in (("naive (PIL full decode + torchvision)", naive),
                                  (f"training.predict ({WORKERS} workers)", ours)):
            print(f"  {name:38s} {N_IMAGES / wall:7.2f} images/s, "
                  f"{1000 * cpu / N_IMAGES:6.1f} CPU ms/image")
        print(f"  ratio: {naive[0] / ours[0]:.2f}x images/s, {naive[1] / ours[1]:.2f}x CPU "
              f"(target >= 2x images/s)")
        figures.record("predict", "images/s of training.predict over the naive loader",
                       naive[0] / ours[0], "x", target=2.0, op=">=",
                       baseline="naive (PIL full decode + torchvision)",
                       baseline_value=N_IMAGES / naive[0])


if __name__ == "__main__":
    main()
