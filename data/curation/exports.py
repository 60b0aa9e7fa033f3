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

from data.curation.camtrapdp import SAMPLING_DESIGNS, export_camtrapdp
from data.curation.coco import export_coco
from data.curation.common import ExportError
from data.curation.csv import export_csv
from data.curation.store import DecisionStore
from data.files import check_output

if TYPE_CHECKING:
    from data.cct import Dataset

FORMATS = ("coco", "csv", "camtrapdp")


def export(dataset: "Dataset", store: DecisionStore, out: str | Path, *, format: str,
           **camtrapdp) -> list[Path]:
    """Write one export (``format`` in FORMATS) and return the files written; ``camtrapdp``
    keywords (``utc_offset``, ``locations``, ``sampling_design``) go to
    :func:`export_camtrapdp`."""
    if format == "coco":
        return export_coco(dataset, store, out)
    if format == "csv":
        return [export_csv(store, out)]
    if format == "camtrapdp":
        return export_camtrapdp(dataset, store, out, **camtrapdp)
    raise ExportError(f"unknown export format {format!r}; expected one of {FORMATS}")


def download_name(dataset: "Dataset", format: str) -> str:
    """File name of :func:`export_bytes`: the file itself, or a zip when it writes several."""
    if format == "csv":
        return "decisions.csv"
    if format == "coco" and len(dataset.sources) == 1:
        return Path(dataset.sources[0]["path"]).name
    return f"traplens-{format}.zip"


def export_bytes(dataset: "Dataset", store: DecisionStore, *, format: str, **camtrapdp
                 ) -> bytes:
    """One :func:`export` as bytes for a download (zipped when it writes several files)."""
    from data.paths import cache_dir

    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        out = Path(tmp) / ("decisions.csv" if format == "csv" else "export")
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
    store = DecisionStore(db)
    dataset = load_dataset(args.dataset) if args.format != "csv" else None
    extra = ({"utc_offset": args.utc_offset, "locations": args.locations,
              "sampling_design": args.sampling_design} if args.format == "camtrapdp" else {})
    paths = export(dataset, store, args.out, format=args.format, **extra)
    for path in paths:
        print(path)
    if args.format == "camtrapdp" and args.locations is None:
        print("note: observations only; give --locations CSV (location,latitude,longitude) for "
              "a complete Camtrap DP package with deployments and media", file=sys.stderr)
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``export`` to ``python -m data``."""
    p = subparsers.add_parser(
        "export", help="export the curated dataset",
        description="coco: corrected COCO Camera Traps JSON (one file per input; --out is a "
                    ".json file for one input, else a folder); csv: the decisions table; "
                    "camtrapdp: a Camtrap DP 1.0 folder (deployments, media and "
                    "observations with --locations; else observations only).")
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
    p.set_defaults(func=_cmd_export)
