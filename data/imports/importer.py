"""``python -m data import-predictions``: another model's predictions as an ordinary run folder.

    python -m data import-predictions --format speciesnet|megadetector|csv FILE
        --dataset JSON... --out RUN_DIR [--images ROOT] [--mapping CSV] [--threshold T]
        [--run-id NAME]

Adding a format: a module beside ``speciesnet.py`` with ``read(path) -> Source``, its name in
:data:`FORMATS` and a branch in :func:`read_source`.
"""
from __future__ import annotations

import argparse
import logging
import platform
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from data.cct import load_dataset
from data.imports import megadetector, speciesnet, table
from data.imports.common import (DETECTOR_FILE, LABEL_MAP_FILE, LISTED, UNMAPPED,
                                 UNMATCHED_FILE, Source, build_run, check_run_output,
                                 sha256_file, write_imported_run)
from data.taxonomy.mapping import read_mapping

log = logging.getLogger(__name__)

FORMATS = ("speciesnet", "megadetector", "csv")


def read_source(path: str | Path, *, format: str, threshold: float | None = None) -> Source:
    """Parse a predictions file of ``format`` (``--threshold`` is MegaDetector's only)."""
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if threshold is not None and format != "megadetector":
        raise ValueError(f"--threshold applies to --format megadetector only, not {format}")
    if format == "speciesnet":
        return speciesnet.read(path)
    if format == "megadetector":
        return megadetector.read(path, threshold=megadetector.DEFAULT_THRESHOLD
                                 if threshold is None else threshold)
    return table.read(path)


def _listed(items: Sequence) -> dict:
    return {"count": len(items), "examples": list(items[:LISTED])}


def import_predictions(path: str | Path, *, format: str, dataset: Sequence[str | Path],
                       out: str | Path, images: str | Path | None = None,
                       mapping: str | Path | None = None, threshold: float | None = None,
                       run_id: str | None = None) -> dict:
    """Import a predictions file as a run folder; return the manifest written.

    The run's classes are the dataset's classes then ``unmapped`` (a detector run: animal,
    human, vehicle, empty); see docs/formats.md, "Importing other models' predictions".

    Raises
    ------
    ValueError
        ``ImportFormatError`` (the file), ``DatasetError``, ``LabelSpaceError`` (the mapping),
        ``OutputError`` (``out``); nothing is written then.
    """
    path, out = Path(path), Path(out)
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ValueError(f"--threshold {threshold} is outside [0, 1]")
    check_run_output(out, inputs=[path, *map(Path, dataset)]
                     + ([Path(mapping)] if mapping else []))
    source = read_source(path, format=format, threshold=threshold)
    ds = load_dataset([str(p) for p in dataset])
    explicit = None
    if mapping is not None:
        if source.detector_only:
            raise ValueError(f"{mapping}: --mapping does not apply to a detector-only file "
                             "(its classes are animal, human, vehicle, empty)")
        explicit = read_mapping(mapping, model_classes=None, dataset_classes=ds.classes,
                                keep_unmapped=True)
    built = build_run(source, ds, mapping=explicit)
    unmapped = {d["model_label"]: d["n_predicted"] for d in built.label_counts
                if d["dataset_class"] == UNMAPPED and d["n_predicted"]}
    n_unmapped = int((built.probs.argmax(axis=1) == built.classes.index(UNMAPPED)).sum()) \
        if UNMAPPED in built.classes else 0
    manifest = {
        "run_id": run_id or out.name,
        "classes": built.classes,
        "dataset": {"paths": [str(Path(p).resolve()) for p in dataset],
                    "sha256": [s.get("sha256") for s in ds.sources],
                    "images_root": str(Path(images).resolve()) if images else None},
        "model": {"arch": f"imported {source.format}", "checkpoint": None, "input_size": None,
                  "version": source.model_version},
        "training": None,
        "software": {"python": platform.python_version(), "numpy": np.__version__,
                     "pandas": pd.__version__},
        "imported": True,
        "source": {"format": source.format, "file": str(path.resolve()),
                   "sha256": sha256_file(path), "model_version": source.model_version,
                   "records": len(source.records), **source.info},
        "detector_only": source.detector_only,
        "partial_probabilities": built.partial,
        "unreadable": [{"image_id": f["image_id"], "reason": f"{f['record']}: the model "
                        "reports a failure"} for f in built.failures],
        "import": {
            "matched": int(len(built.image_ids)),
            "unmatched_predictions": _listed([k for _, k in built.unmatched]),
            "images_without_prediction": _listed(built.without_prediction),
            "failures": _listed([f["key"] for f in built.failures]),
            "unmapped": {"images": n_unmapped, "labels": unmapped},
            "shared_taxa": built.shared,
            "mapping_file": str(Path(mapping).resolve()) if mapping else None,
            "files": {"unmatched": UNMATCHED_FILE, "label_map": LABEL_MAP_FILE,
                      "detector_scores": DETECTOR_FILE if built.detector_conf is not None
                      else None},
        },
    }
    write_imported_run(out, built, manifest=manifest)
    log.info("imported %s: %d predictions into %s", path, len(built.image_ids), out)
    return manifest


def summary_lines(manifest: dict, out: str | Path) -> list[str]:
    """What the command prints: counts, the first few unmatched, unmapped, shared taxa."""
    imp = manifest["import"]
    lines = [f"imported {imp['matched']:,} predictions from {manifest['source']['file']} "
             f"({manifest['source']['format']}) into {out}: {len(manifest['classes'])} classes"
             + (", top-k probabilities (the rest spread evenly)"
                if manifest["partial_probabilities"] else "")]
    for key, what in (("unmatched_predictions", "predictions match no dataset image"),
                      ("images_without_prediction", "dataset images have no prediction"),
                      ("failures", "images failed in the model")):
        got = imp[key]
        if got["count"]:
            lines.append(f"  {got['count']:,} {what}, e.g. {', '.join(got['examples'][:3])} "
                         f"(all in {Path(out) / UNMATCHED_FILE})")
    if imp["unmapped"]["images"]:
        labels = ", ".join(f"{k} ({v})" for k, v in list(imp["unmapped"]["labels"].items())[:5])
        lines.append(f"  {imp['unmapped']['images']:,} images predicted a label no dataset "
                     f"class contains (scored as wrong, class 'unmapped'): {labels}; edit "
                     f"{Path(out) / LABEL_MAP_FILE} and pass it as --mapping to change this")
    for taxon, classes in imp["shared_taxa"].items():
        lines.append(f"  {taxon} is shared by {', '.join(classes)}: predictions go to "
                     f"{classes[0]}; score them together at species level "
                     "(--taxon-level species)")
    return lines


def _command(args: argparse.Namespace) -> int:
    manifest = import_predictions(args.file, format=args.format, dataset=args.dataset,
                                  out=args.out, images=args.images, mapping=args.mapping,
                                  threshold=args.threshold, run_id=args.run_id)
    print("\n".join(summary_lines(manifest, args.out)))
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``import-predictions``."""
    p = subparsers.add_parser(
        "import-predictions", help="import SpeciesNet, MegaDetector or CSV predictions as a run",
        description="Write another model's predictions as an ordinary run folder (manifest + "
                    "predictions) that every page, the report and Compare runs use. Bad input: "
                    "one line naming the file, the record and the reason, exit 2, nothing "
                    "written.")
    p.add_argument("file", metavar="FILE", help="the predictions file")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--dataset", nargs="+", required=True, metavar="JSON",
                   help="COCO Camera Traps file(s) the predictions are for")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder to write")
    p.add_argument("--images", metavar="ROOT", default=None, help="image root (recorded)")
    p.add_argument("--mapping", metavar="CSV", default=None,
                   help="model_label,dataset_class file; overrides the taxonomy's matches")
    p.add_argument("--threshold", type=float, default=None,
                   help=f"MegaDetector: detections below it do not count "
                        f"(default {megadetector.DEFAULT_THRESHOLD})")
    p.add_argument("--run-id", metavar="NAME", default=None, help="run id (default: folder name)")
    p.set_defaults(func=_command)
