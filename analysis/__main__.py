"""``python -m analysis report``: evaluate a run folder against a dataset, write JSON and HTML.

    python -m analysis report --dataset S1.json S2.json --run workspace/runs/r1 \\
        [--compare workspace/runs/r0] [--split test] [--policy set|primary] \\
        [--json report.json] [--html report.html]

Bad input (unreadable dataset, a run folder that breaks the contract, an unknown split) prints
one line naming the file and the problem and exits with status 2. Dataset images without a
prediction are reported, not fatal.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("analysis")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analysis",
                                     description="TrapLens analysis engine")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="evaluate a run: JSON and self-contained HTML report")
    rep.add_argument("--dataset", nargs="+", required=True, metavar="JSON",
                     help="COCO Camera Traps file(s) the run predicted")
    rep.add_argument("--run", required=True, metavar="RUN_DIR", help="run folder to evaluate")
    rep.add_argument("--compare", metavar="RUN_DIR", help="baseline run folder to compare with")
    rep.add_argument("--split", metavar="NAME", help="evaluate only this split (e.g. test)")
    rep.add_argument("--policy", choices=("set", "primary"), default="set",
                     help="multi-species scoring (default: set)")
    rep.add_argument("--aggregation", choices=("mean", "max", "vote"), default="mean",
                     help="frame aggregation for sequence-level metrics (default: mean)")
    rep.add_argument("--resamples", type=int, default=200, metavar="N",
                     help="bootstrap resamples for the intervals (default: 200)")
    rep.add_argument("--images", metavar="ROOT",
                     help="image root for the HTML thumbnails (default: the run manifest's)")
    rep.add_argument("--json", metavar="OUT", help="write the JSON report here")
    rep.add_argument("--html", metavar="OUT", help="write the HTML report here")
    rep.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    return parser


def report(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from analysis.report import build_report, render_html, write_html, write_json
    from data.cct import load_dataset
    from data.runs import load_run

    steps = tqdm(total=4 + bool(args.html), desc="report", unit="step", disable=args.quiet,
                 file=sys.stderr)
    steps.set_postfix_str("dataset")
    dataset = load_dataset(args.dataset)
    steps.update()
    steps.set_postfix_str("run")
    run = load_run(args.run)
    baseline = load_run(args.compare) if args.compare else None
    steps.update()
    steps.set_postfix_str("diagnostics")
    rep = build_report(dataset, run, compare_run=baseline, split=args.split,
                       policy=args.policy, aggregation=args.aggregation,
                       n_resamples=args.resamples)
    steps.update()
    missing = rep["run"]["missing_predictions"]
    if missing["count"]:
        print(f"note: {missing['count']} dataset image(s) have no prediction in {run.path}, "
              f"e.g. {missing['examples'][0]}", file=sys.stderr)
    if args.json:
        write_json(rep, args.json)
    elif not args.html:
        json.dump(rep, sys.stdout, indent=1, allow_nan=False)
        sys.stdout.write("\n")
    steps.update()
    if args.html:
        steps.set_postfix_str("html")
        root = args.images or (run.manifest.get("dataset") or {}).get("images_root")
        write_html(render_html(rep, images_root=root), args.html)
        steps.update()
    steps.close()
    for label, out in (("JSON", args.json), ("HTML", args.html)):
        if out:
            print(f"{label} report: {Path(out).resolve()}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return report(args)
    except (ValueError, OSError) as exc:
        # DatasetError, PredictionsError, CorrectionsError, ImageError are ValueErrors whose
        # message names the file and the problem; OSError: an output that cannot be written.
        print(f"analysis report: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
