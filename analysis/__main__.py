"""``python -m analysis report|issues``: evaluate a run folder against a dataset.

    python -m analysis report --dataset S1.json S2.json --run workspace/runs/r1 \\
        [--compare workspace/runs/r0] [--split test] [--policy set|primary] \\
        [--suspects N|all] [--train-sites FILE] [--json report.json] [--html report.html]
    python -m analysis issues --dataset S1.json --run workspace/runs/r1 --out issues.csv \\
        [--top N|all] [--kind inherited_label,missed_species,label_issue,top_loss] [--split S]
    python -m analysis mapping-template --run workspace/runs/r1 --dataset S1.json \\
        --out workspace/runs/r1/mapping.csv

``report`` also takes ``--mapping FILE`` (default: the run folder's ``mapping.csv``),
``--score-unknown`` and ``--taxon-level label|species|genus|family|order|class``.

``issues`` writes the full merged relabel ranking (``analysis.ranking.label_issues``, every
suspect) to CSV or Parquet, streamed in batches.

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

#: ``--taxon-level`` choices (``data.taxonomy.LEVELS``, spelled out so ``--help`` needs no import).
TAXON_LEVELS = ("label", "species", "genus", "family", "order", "class")


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line (no usage block) and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m analysis",
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
    rep.add_argument("--suspects", type=_count, default=100, metavar="N|all",
                     help="rows kept in the suspect and relabel-candidate lists (default: 100)")
    rep.add_argument("--mapping", metavar="FILE",
                     help="model_label,dataset_class CSV (default: mapping.csv in the run "
                          "folder, if any)")
    rep.add_argument("--score-unknown", action="store_true",
                     help="score images whose only labels the model cannot predict as errors "
                          "(default: leave them out, counted in label_space)")
    rep.add_argument("--taxon-level", choices=TAXON_LEVELS, default="label",
                     help="roll classes up to this taxonomic level for every metric "
                          "(default: label)")
    rep.add_argument("--train-sites", metavar="FILE",
                     help="sites the model trained on, for imported runs (one per line, or a "
                          "CSV with a 'site' or 'location' column); default: the run's "
                          "split.parquet")
    rep.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    tpl = sub.add_parser("mapping-template",
                         help="write a mapping.csv for the user to edit (model labels -> "
                              "dataset classes, filled where the names or the taxonomy agree)")
    tpl.add_argument("--run", required=True, metavar="RUN_DIR", help="run folder")
    tpl.add_argument("--dataset", nargs="+", required=True, metavar="JSON",
                     help="COCO Camera Traps file(s) to map onto")
    tpl.add_argument("--out", required=True, metavar="FILE.csv",
                     help="where to write it (RUN_DIR/mapping.csv is used by default)")
    tpl.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    iss = sub.add_parser("issues", help="write the full ranked relabel-candidate list")
    iss.add_argument("--dataset", nargs="+", required=True, metavar="JSON",
                     help="COCO Camera Traps file(s) the run predicted")
    iss.add_argument("--run", required=True, metavar="RUN_DIR", help="run folder to rank")
    iss.add_argument("--out", required=True, metavar="FILE.csv|.parquet",
                     help="where to write the ranking")
    iss.add_argument("--top", type=_count, default=None, metavar="N|all",
                     help="keep the N highest-ranked suspects (default: all)")
    iss.add_argument("--kind", type=_kinds, default=None, metavar="K1,K2",
                     help="keep suspects of these kinds: inherited_label, missed_species, "
                          "label_issue, top_loss (default: all)")
    iss.add_argument("--split", metavar="NAME", help="rank only this split (e.g. test)")
    iss.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    return parser


def _count(text: str) -> int | None:
    """``N`` (a positive integer) or ``all`` (None)."""
    if text.strip().lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}")
    return value


def _kinds(text: str) -> tuple[str, ...]:
    from analysis.issues import normalise_kinds

    try:
        return normalise_kinds(text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse (``OutputError``), before any work, outputs that would overwrite an input
    (dataset, run folder, images root) or an existing file of another kind."""
    from data.files import check_output

    inputs = [*args.dataset, args.run, getattr(args, "compare", None),
              getattr(args, "images", None)]
    outs = ([("--json", args.json, {"json"}, "JSON report"),
             ("--html", args.html, {"html"}, "HTML report")] if args.command == "report" else
            [("--out", args.out, {"text"} if Path(args.out).suffix.lower() == ".csv"
              else {"parquet"}, "issues table")])
    for flag, out, kinds, what in outs:
        if out:
            try:
                check_output(out, inputs=inputs, kinds=kinds, what=what)
            except ValueError as exc:
                raise type(exc)(f"{flag} {exc}") from None


def report(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from analysis.report import build_report, render_html, write_html, write_json
    from data.cct import load_dataset
    from data.paths import resolve_images_root
    from data.runs import load_run

    _check_outputs(args)
    if args.train_sites:  # a bad sites file fails before minutes of loading
        from analysis.decision import read_train_sites

        read_train_sites(args.train_sites)
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
                       n_resamples=args.resamples, k=args.suspects, mapping=args.mapping,
                       score_unknown=args.score_unknown, taxon_level=args.taxon_level,
                       train_sites_file=args.train_sites)
    steps.update()
    space = rep["label_space"]
    if space["kind"] != "identical" or space["n_not_scorable"]:
        print(f"note: run classes vs dataset classes: {space['kind']}; "
              f"{len(space['unknown_to_model'])} dataset class(es) unknown to the model, "
              f"{len(space['extra_in_model'])} model label(s) outside the dataset; "
              f"{space['n_not_scorable']} image(s) not scorable by this model "
              f"({'scored as errors' if space['scored_as_errors'] else 'left out'})",
              file=sys.stderr)
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
        root = resolve_images_root((run.manifest.get("dataset") or {}).get("images_root"),
                                   override=args.images)
        write_html(render_html(rep, images_root=root), args.html)
        steps.update()
    steps.close()
    for label, out in (("JSON", args.json), ("HTML", args.html)):
        if out:
            print(f"{label} report: {Path(out).resolve()}", file=sys.stderr)
    return 0


def issues(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from analysis.evalset import build_evalset, select_split
    from data.runs import load_run
    from analysis.issues import issue_queue, issue_table, write_issues
    from data.cct import load_dataset

    if Path(args.out).suffix.lower() not in (".csv", ".parquet"):
        raise ValueError(f"--out {args.out}: must end in .csv or .parquet")
    _check_outputs(args)
    steps = tqdm(total=4, desc="issues", unit="step", disable=args.quiet, file=sys.stderr)
    steps.set_postfix_str("dataset")
    dataset = load_dataset(args.dataset)
    steps.update()
    steps.set_postfix_str("run")
    run = load_run(args.run)
    ev = select_split(build_evalset(dataset, run), args.split)
    steps.update()
    steps.set_postfix_str("ranking")
    table = issue_table(ev)
    if args.kind is not None:
        table = issue_queue(ev, kinds=args.kind, issues=table)
    if args.top is not None:
        table = table.head(args.top)
    steps.update()
    steps.set_postfix_str("write")
    n = write_issues(table, args.out)
    steps.update()
    steps.close()
    print(f"{n} suspect(s) of {len(ev)} image(s): {Path(args.out).resolve()}", file=sys.stderr)
    return 0


def mapping_template(args: argparse.Namespace) -> int:
    from analysis.labelspace import write_mapping_template
    from data.cct import load_dataset
    from data.files import check_output
    from data.runs import read_manifest
    from data.taxonomy import load_taxonomy

    run = Path(args.run)
    check_output(args.out, inputs=[*args.dataset, run / "manifest.json",
                                   run / "predictions.parquet"], kinds=("text",),
                 what="--out")
    classes = read_manifest(run)["classes"]
    dataset = load_dataset(args.dataset)
    out = write_mapping_template(args.out, classes, dataset.classes, taxonomy=load_taxonomy())
    print(f"mapping template ({len(classes)} model labels): {Path(out).resolve()}",
          file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        command = {"issues": issues, "report": report, "mapping-template": mapping_template}
        return command[args.command](args)
    except (ValueError, OSError) as exc:
        # DatasetError, PredictionsError, CorrectionsError, ImageError are ValueErrors whose
        # message names the file and the problem; OSError: an output that cannot be written.
        print(f"analysis {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
