"""``python -m data {validate,demo,decide,import-decisions,export,import-predictions}``.

Each subcommand comes from a module's ``register_cli(subparsers)``, imported below, which adds
its parser and sets ``func``: ``func(args) -> int`` (the exit code). Bad input (``ValueError``
subclasses such as ``DatasetError``), unreadable files and SQLite failures of the decisions
store (locked past the busy timeout, disk full) end in one line on stderr and exit 2, never a
traceback.
"""
from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import sys
from collections.abc import Sequence

from data.cct import ValidationReport, validate
from data.curation import exports as export_cli
from data.curation import store as curation_cli
from data.demo import generate as demo_cli
from data.imports import importer as import_cli

MAX_LISTED = 40  # sites/seasons printed by the human-readable summary
log = logging.getLogger("data")


def _print_report(report: ValidationReport) -> None:
    s = report.summary
    print("Dataset: " + ", ".join(s["files"]))
    for key in ("images", "annotations", "labels", "sequences", "categories", "classes_present",
                "multi_species_images", "images_without_annotations", "images_without_size",
                "corrupt_flagged"):
        print(f"  {key.replace('_', ' '):<28}{s[key]:>12,}")
    empty = s["empty_fraction"]
    print(f"  {'empty fraction':<28}{'n/a' if empty is None else f'{empty:.1%}':>12}")
    for title, key in (("images per season", "per_season"), ("images per site", "per_site")):
        items = list(s[key].items())
        more = ""
        if len(items) > MAX_LISTED:
            more = f" ... and {len(items) - MAX_LISTED:,} more (--json lists all)"
            items = items[:MAX_LISTED]
        print(f"  {title}: " + ", ".join(f"{k} {v:,}" for k, v in items) + more)
    if not report.problems:
        print("No problems found.")
        return
    print(f"{len(report.problems):,} problem(s) (warnings; the data is usable): "
          + ", ".join(f"{k} {v:,}" for k, v in s["problem_counts"].items()))
    for p in report.problems:
        print(f"  {p.kind:<22} {p.id}  {p.detail}")


def _validate(args: argparse.Namespace) -> int:
    report = validate(args.files, images_root=args.images, cache=not args.no_cache)
    if not report.usable:
        print(f"error: {report.problems[0].detail}", file=sys.stderr)
        if args.json:
            print(json.dumps(report.to_dict(), indent=1))
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        _print_report(report)
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``validate``."""
    p = subparsers.add_parser(
        "validate", help="summarise COCO Camera Traps files and list every problem",
        description="Summary (images, annotations, sequences, categories, multi-species "
                    "images, empty fraction, per season and site) and every problem with the "
                    "offending id. Exit 0 when usable (problems are warnings), 2 when not.")
    p.add_argument("files", nargs="+", metavar="FILE", help="COCO-CT JSON file(s), merged")
    p.add_argument("--images", metavar="ROOT", default=None,
                   help="image root: also check every file exists and decodes")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-cache", action="store_true", help="ignore the table cache")
    p.set_defaults(func=_validate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m data",
                                     description="TrapLens data tools")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # In the order of ``--help``.
    register_cli(sub)
    demo_cli.register_cli(sub)
    curation_cli.register_cli(sub)
    export_cli.register_cli(sub)
    import_cli.register_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:  # the only SQLite here is the decisions store
        print(f"error: decisions database: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
