"""``make demo``: the demo dataset, two trained runs, then whatever dashboard exists.

    python -m scripts.demo              # build what is missing, then serve the dashboard
    python -m scripts.demo --no-serve   # build only

Runs, as the original Snapshot Serengeti project compared them (both predict every image, so
the dashboard can show train, val and test):

- ``baseline``: all frames, 90 % of the empty training images dropped (``--empty-keep 0.1``);
- ``first-frames``: the first frame of each capture only (same empty-keep);
- ``random-split``: as ``baseline`` but split by IMAGE at random, as the original project did
  (Norouzzadeh et al. 2018): its test images share sites and captures with training, and the
  Generalisation page shows how much that flatters the model against the location split.

Then two imported runs, so the dashboard shows other models' output out of the box: the
baseline's predictions are written as a SpeciesNet predictions file and a detector-only
MegaDetector file (``workspace/imports/``, labels from the taxonomy table) and imported with
``python -m data import-predictions``'s function: ``speciesnet-demo`` and
``megadetector-demo``.

CPU budget (2 cores): inputs are 160 px (the demo frames are 512x384 and the animals large, so
160 px keeps them recognisable at a third of the cost of 224 px); stage 1 trains the classifier
on frozen-backbone features cached under ``cache_dir()`` and shared by both runs; the fine-tuning
stage is skipped (``epochs=0``), as it would cost minutes per epoch on two cores. Existing runs
are reused: a rerun goes straight to the dashboard.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path

from data.paths import demo_dir, runs_dir

ROOT = Path(__file__).resolve().parents[1]
N_IMAGES = 3000
SEED = 0
IMAGE_SIZE = 160
#: The demo runs carry their full embeddings (1280-D float16, 7.7 MB for 3,000 images) for the
#: embedding map, "more like this" and OOD warnings. Not reduced: a PCA fitted on the demo's
#: frames projects away the directions in which a real photo differs from them, and the OOD
#: distance then misses it (measured: a real Serengeti frame at the 100th percentile of
#: validation distances in the full space, the 50th after PCA to 64-D).
EMBEDDING_DIM = None
RUNS = {"baseline": {"first_frame_only": False}, "first-frames": {"first_frame_only": True},
        "random-split": {"first_frame_only": False, "split": "image"}}
#: Imported runs made from the baseline's predictions: run name -> source format.
IMPORTS = {"speciesnet-demo": "speciesnet", "megadetector-demo": "megadetector"}

log = logging.getLogger("scripts.demo")


def demo_config(dataset: list[str], images: str, out: str, *, first_frame_only: bool = False,
                split: str = "location", workers: int = 2):
    """The demo's training configuration (also used by tests/trained_run.py)."""
    from training.config import TrainConfig

    return TrainConfig(dataset=dataset, images=images, out=out, image_size=IMAGE_SIZE,
                       batch_size=64, epochs_frozen=12, epochs=0, lr="auto", patience=4,
                       split=split, val_fraction=0.15, test_fraction=0.15,
                       empty_keep=0.1, first_frame_only=first_frame_only, cache_features=True,
                       predict_split="all", embeddings=True, embedding_dim=EMBEDDING_DIM,
                       device="cpu", workers=workers, seed=SEED)


def ensure_dataset(root: Path, *, n_images: int) -> tuple[list[str], str]:
    """The demo dataset's JSON files and image root, generated when absent."""
    from data.demo import generate as demo

    jsons = [root / demo.JSON_NAMES[s] for s in demo.SEASONS]
    if not (root / demo.TRUTH_NAME).is_file() or not all(p.is_file() for p in jsons):
        log.info("generating the demo dataset (%d images) in %s", n_images, root)
        demo.make_demo(root, n_images=n_images, seed=SEED, progress=True)
    return [str(p) for p in jsons], str(root / demo.IMAGES_DIR)


def is_complete(run_dir: Path) -> bool:
    return (run_dir / "manifest.json").is_file() and (run_dir / "predictions.parquet").is_file()


def has_embeddings(run_dir: Path) -> bool:
    import pyarrow.parquet as pq

    return "embedding" in pq.read_schema(run_dir / "predictions.parquet").names


def add_embeddings(dataset: list[str], images: str, run_dir: Path) -> None:
    """Predict an existing demo run again, this time storing its embeddings."""
    from training.predict import main as predict

    log.info("adding embeddings to run %r", run_dir.name)
    predict(["--checkpoint", str(run_dir / "checkpoint_best.pt"), "--dataset", *dataset,
             "--images", images, "--out", str(run_dir), "--split", "all", "--device", "cpu",
             "--embeddings", *([] if EMBEDDING_DIM is None else
                               ["--embedding-dim", str(EMBEDDING_DIM)])])


def ensure_runs(dataset: list[str], images: str, runs: Path) -> dict[str, dict]:
    summaries = {}
    for name, options in RUNS.items():
        run_dir = runs / name
        if not is_complete(run_dir):
            from training.train import main as train

            log.info("training run %r", name)
            train(demo_config(dataset, images, str(run_dir), **options))
        elif not has_embeddings(run_dir):  # a run made before the demo carried embeddings
            add_embeddings(dataset, images, run_dir)
        summary = run_dir / "train_summary.json"
        summaries[name] = json.loads(summary.read_text()) if summary.is_file() else {}
    return summaries


def ensure_imports(dataset: list[str], images: str, runs: Path, *,
                   source: str = "baseline") -> list[str]:
    """Write the source run's predictions as SpeciesNet and MegaDetector files and import
    them (runs of :data:`IMPORTS` that exist are kept); returns the runs imported now."""
    from data.cct import load_dataset
    from data.imports import import_predictions, megadetector, speciesnet
    from data.imports.importer import summary_lines
    from data.runs import load_run

    todo = [name for name in IMPORTS if not is_complete(runs / name)]
    if not todo or not is_complete(runs / source):
        return []
    run, ds = load_run(runs / source), load_dataset(dataset)
    file_name = ds.images.set_index("image_id")["file_name"]
    paths = [str(Path(images) / file_name[i]) for i in run.image_ids]
    failed = [str(Path(images) / file_name[u["image_id"]])
              for u in run.manifest.get("unreadable", []) if u["image_id"] in file_name.index]
    exports = runs.parent / "imports"
    exports.mkdir(parents=True, exist_ok=True)
    writers = {"speciesnet": speciesnet.export, "megadetector": megadetector.export}
    for name in todo:
        fmt = IMPORTS[name]
        path = writers[fmt](exports / f"{name}.json", file_paths=paths, probs=run.probs,
                            classes=run.classes, failed=failed)
        manifest = import_predictions(path, format=fmt, dataset=dataset, out=runs / name,
                                      images=images)
        print("\n".join(summary_lines(manifest, runs / name)), flush=True)
    return todo


def ensure_projections(runs: Path) -> None:
    """The embedding map's 2-D projection of every demo run with embeddings, cached beside the
    run now, so the dashboard's first visit of the map does not wait for t-SNE."""
    from analysis.embedding import cached_projection
    from data.runs import load_run

    for name in RUNS:
        run_dir = runs / name
        if is_complete(run_dir) and has_embeddings(run_dir):
            run = load_run(run_dir)
            t0 = time.perf_counter()
            cached_projection(run_dir, run.embedding, run.image_ids)
            log.info("embedding map of %s ready in %.1f s", name, time.perf_counter() - t0)


def report(summaries: dict[str, dict]) -> None:
    for name, s in summaries.items():
        if s:
            print(f"run {name:13s} val macro-F1 {s['best_val_macro_f1']:.3f} (epoch "
                  f"{s['best_epoch']}) vs majority-class baseline "
                  f"{s['majority_val_macro_f1']:.3f} ({s['majority_class']}); "
                  f"{s['n_train']} train / {s['n_val']} val images", flush=True)


def serve(dataset: list[str], images: str, runs: Path) -> None:
    if not (ROOT / "dashboard" / "__main__.py").is_file():
        print("dashboard/__main__.py does not exist yet: nothing to serve", flush=True)
        return
    argv = [sys.executable, "-m", "dashboard", "--dataset", *dataset, "--images", images,
            "--runs", str(runs)]
    print("serving:", " ".join(argv), flush=True)
    print("presenting: open /story?present=1 (or switch on presenter mode): the findings, "
          "one screen each; the arrow keys step through them", flush=True)
    os.chdir(ROOT)
    os.execv(sys.executable, argv)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.demo", description=__doc__.split("\n")[0])
    p.add_argument("--no-serve", action="store_true", help="build the runs, do not serve")
    p.add_argument("--n-images", type=int, default=N_IMAGES)
    p.add_argument("--dataset-only", action="store_true",
                   help="only make sure the demo dataset exists; print DATASET=(...) IMAGES=... "
                        "for a shell's eval (scripts/gpu-check.sh)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    dataset, images = ensure_dataset(demo_dir(), n_images=args.n_images)
    if args.dataset_only:
        print(f"DATASET=({' '.join(map(shlex.quote, dataset))}) IMAGES={shlex.quote(images)}")
        return 0
    runs = runs_dir()
    report(ensure_runs(dataset, images, runs))
    ensure_imports(dataset, images, runs)
    ensure_projections(runs)
    print(f"demo ready in {time.perf_counter() - t0:.1f} s: runs in {runs}", flush=True)
    if not args.no_serve:
        serve(dataset, images, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
