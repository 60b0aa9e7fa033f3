"""The export formats behind one entry point: ``export(dataset, store, out, format=...)``,
its download variant and the ``export`` command of ``python -m data``.

One module per format (:mod:`~data.curation.coco`, :mod:`~data.curation.csv`,
:mod:`~data.curation.camtrapdp`); adding a format means a new module and a line here.
"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from data.curation.camtrapdp import (MISSING_WITHOUT_LOCATIONS, SAMPLING_DESIGNS,
                                     export_camtrapdp)
from data.curation.coco import coco_targets, export_coco
from data.curation.common import ExportError
from data.curation.csv import export_decisions, export_labels
from data.curation.store import DecisionStore
from data.files import check_output

if TYPE_CHECKING:
    from data.cct import Dataset

FORMATS = ("coco", "csv", "decisions", "camtrapdp")
#: File name of a one-file export whose ``--out`` is a folder.
CSV_NAMES = {"csv": "labels.csv", "decisions": "decisions.csv"}
CAMTRAPDP_FILES = ("deployments.csv", "media.csv", "observations.csv", "datapackage.json")


def output_files(format: str, out: str | Path, sources: list[Path]) -> list[Path]:
    """The files an export writes (``sources``: the dataset files, for ``coco``)."""
    out = Path(out)
    if format == "coco":
        return coco_targets(sources, out)
    if format in CSV_NAMES:
        return [out / CSV_NAMES[format] if out.is_dir() else out]
    if format == "camtrapdp":
        if out.exists() and not out.is_dir():
            raise ExportError(f"--out {out}: Camtrap DP is a folder, and this is a file")
        return [out / name for name in CAMTRAPDP_FILES]
    raise ExportError(f"unknown export format {format!r}; expected one of {FORMATS}")


def check_outputs(format: str, out: str | Path, sources: list[Path], *,
                  inputs: list[str | Path | None]) -> list[Path]:
    """Refuse, before any work, an export that would overwrite one of ``inputs`` (the dataset
    files, the decisions database, the sites CSV, the run folder) or a file that is not a
    previous export of the same kind (:func:`data.files.check_output`)."""
    targets = output_files(format, out, sources)
    for target in targets:
        kinds = ("cct-json",) if format == "coco" else (
            ("json",) if format == "camtrapdp" and target.suffix == ".json" else ("text",))
        check_output(target, inputs=[*sources, *inputs], kinds=kinds, what=f"{format} export")
    return targets


def export(dataset: "Dataset", store: DecisionStore, out: str | Path, *, format: str,
           **camtrapdp) -> list[Path]:
    """Write one export (``format`` in FORMATS) and return the files written; ``camtrapdp``
    keywords (``utc_offset``, ``locations``, ``sampling_design``, ``run``, ``human``) go to
    :func:`export_camtrapdp`. Outputs are checked first (:func:`check_outputs`)."""
    sources = [Path(s["path"]) for s in dataset.sources] if dataset is not None else []
    run = camtrapdp.get("run")
    check_outputs(format, out, sources, inputs=[store.path, camtrapdp.get("locations"),
                                                getattr(run, "path", run)])
    if format == "coco":
        return export_coco(dataset, store, out)
    if format == "csv":
        return [export_labels(dataset, store, out)]
    if format == "decisions":
        return [export_decisions(store, out)]
    return export_camtrapdp(dataset, store, out, **camtrapdp)


def download_name(dataset: "Dataset", format: str) -> str:
    """File name of :func:`export_bytes`: the file itself, or a zip when it writes several."""
    if format in CSV_NAMES:
        return CSV_NAMES[format]
    if format == "coco" and len(dataset.sources) == 1:
        return Path(dataset.sources[0]["path"]).name
    return f"traplens-{format}.zip"


def export_bytes(dataset: "Dataset", store: DecisionStore, *, format: str, **camtrapdp
                 ) -> bytes:
    """One :func:`export` as bytes for a download (zipped when it writes several files)."""
    from data.paths import cache_dir

    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        out = Path(tmp) / CSV_NAMES.get(format, "export")
        paths = export(dataset, store, out, format=format, **camtrapdp)
        if not download_name(dataset, format).endswith(".zip"):
            return paths[0].read_bytes()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in paths:
                zf.write(p, p.name)
        return buf.getvalue()


def check_export_out(out: str | Path, *, format: str, dataset_paths: list[str],
                     decisions: str | Path, locations: str | Path | None = None) -> None:
    """Refuse (:class:`~data.files.OutputError`), before any work, an ``--out`` that would
    overwrite an input (dataset, decisions database, locations) or a file of another kind."""
    out = Path(out)
    inputs = [*dataset_paths, decisions, locations]
    if format == "camtrapdp" or (format == "coco" and out.suffix.lower() != ".json"):
        check_output(out, inputs=inputs, folder=True, what=f"{format} export folder")
        names = ([Path(p).name for p in dataset_paths] if format == "coco" else
                 ["deployments.csv", "media.csv", "observations.csv", "datapackage.json"])
        files = [out / n for n in names]
    else:
        files = [out / "decisions.csv" if format == "csv" and out.is_dir() else out]
    for f in files:
        kinds = {"cct-json"} if format == "coco" else {"json"} if f.suffix == ".json" else {"text"}
        check_output(f, inputs=inputs, kinds=kinds, what=f"{format} export")


def _cmd_export(args: argparse.Namespace) -> int:
    from data.cct import load_dataset
    from data.paths import curation_db

    db = Path(args.decisions or curation_db())
    check_export_out(args.out, format=args.format, dataset_paths=args.dataset, decisions=db,
                     locations=args.locations)
    if not db.exists():
        raise ExportError(f"--decisions {db}: no such decisions database")
    if args.format != "camtrapdp" and (args.run or args.run_only):
        raise ExportError(f"--run: only the camtrapdp format exports predictions, not "
                          f"{args.format}")
    if args.run_only and not args.run:
        raise ExportError("--run-only needs --run RUN_DIR")
    # before any work: an output that is an input (or not a previous export) is refused
    check_outputs(args.format, args.out, [Path(p) for p in args.dataset],
                  inputs=[db, args.locations, args.run])
    store = DecisionStore(db)
    dataset = load_dataset(args.dataset) if args.format != "decisions" else None
    extra = ({"utc_offset": args.utc_offset, "locations": args.locations,
              "sampling_design": args.sampling_design, "run": args.run,
              "human": not args.run_only} if args.format == "camtrapdp" else {})
    paths = export(dataset, store, args.out, format=args.format, **extra)
    for path in paths:
        print(path)
    if args.format == "camtrapdp" and args.locations is None:
        print(f"note: incomplete Camtrap DP package: {MISSING_WITHOUT_LOCATIONS}",
              file=sys.stderr)
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``export`` to ``python -m data``."""
    p = subparsers.add_parser(
        "export", help="export the curated dataset",
        description="coco: corrected COCO Camera Traps JSON (one file per input; --out is a "
                    ".json file for one input, else a folder); csv: the labelled image table "
                    "(one row per image and species); decisions: the decisions log; "
                    "camtrapdp: a Camtrap DP 1.0.2 folder (deployments, media, observations; "
                    "complete with --locations, and with a run's predictions with --run).")
    p.add_argument("--dataset", nargs="+", required=True, metavar="JSON")
    p.add_argument("--decisions", metavar="DB",
                   help="SQLite file (default: $TRAPLENS_HOME/curation.sqlite)")
    p.add_argument("--out", required=True, metavar="PATH")
    p.add_argument("--format", choices=FORMATS, required=True)
    p.add_argument("--utc-offset", default="+03:00",
                   help="camera clock's UTC offset for Camtrap DP times (default +03:00, EAT)")
    p.add_argument("--locations", metavar="CSV",
                   help="camtrapdp: camera sites with coordinates, columns location, latitude, "
                        "longitude [, coordinateUncertainty in metres]")
    p.add_argument("--sampling-design", choices=SAMPLING_DESIGNS, default="systematicRandom",
                   help="camtrapdp: the project's sampling design (default systematicRandom, "
                        "Snapshot Serengeti's grid)")
    p.add_argument("--run", metavar="RUN_DIR",
                   help="camtrapdp: also export this run's predictions as machine observations")
    p.add_argument("--run-only", action="store_true",
                   help="camtrapdp: the run's predictions alone, without the labels")
    p.set_defaults(func=_cmd_export)
