"""Run every benchmark (``bench/bench_*.py``, each with ``main()``), or those named.

    python -m bench                          # all
    python -m bench data analysis            # bench_data.py and bench_analysis.py only
    python -m bench analysis --json out.json # also write every figure, target and baseline
    python -m bench --scale full             # every target at its stated size (7.2 M images)

Exits 1 when a bench fails or any figure misses its target (the misses are listed last).
"""
from __future__ import annotations

import argparse
import json
import os
import pkgutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import bench
from bench import figures


def main(argv: list[str]) -> int:
    names = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules(bench.__path__)
                   if m.name.startswith("bench_"))
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks, from {names}")
    parser.add_argument("--json", metavar="FILE", help="write every figure here (JSON)")
    parser.add_argument("--scale", choices=bench.SCALES, default=None,
                        help=f"default: 1 M images, the suite under 10 minutes; full: 7.2 M, "
                             f"every target at its stated size (or ${bench.SCALE_ENV})")
    args = parser.parse_args(argv)
    if args.scale:
        os.environ[bench.SCALE_ENV] = args.scale
    try:
        print(f"bench scale: {bench.scale()}", flush=True)
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    wanted = args.names or names
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        print(f"bench: unknown benchmark(s) {unknown}; choose from {names}", file=sys.stderr)
        return 2
    failed: list[str] = []
    recorded: list[figures.Figure] = []
    total = 0.0
    with tempfile.TemporaryDirectory(prefix="traplens-bench-") as tmp:
        for name in wanted:
            print(f"\n=== bench {name} ===", flush=True)
            t0 = time.perf_counter()
            part = Path(tmp) / f"{name}.jsonl"
            env = {**os.environ, figures.ENV: str(part)}
            # A fresh process each: peak memory and cold-start figures must not inherit the
            # previous benchmark's heap or caches.
            code = f"import bench.bench_{name} as b; b.main()"
            if subprocess.run([sys.executable, "-c", code], env=env).returncode:
                failed.append(name)
            recorded += figures.read(part)
            took = time.perf_counter() - t0
            total += took
            print(f"=== {name} done in {took:.1f} s ===", flush=True)
    print(f"bench: {len(wanted)} bench(es) at the {bench.scale()} scale in {total:.0f} s")
    missed = figures.misses(recorded)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"benches": wanted, "failed": failed,
             "figures": [{**asdict(f), "met": f.met} for f in recorded]}, indent=2) + "\n")
        print(f"bench: {len(recorded)} figures written to {args.json}")
    for f in missed:
        print(f"bench: target missed: {f.bench} / {f.name}: {f.value:g} {f.unit} "
              f"(target {f.op} {f.target:g})", file=sys.stderr)
    if failed:
        print(f"bench: failed: {failed}", file=sys.stderr)
    return 1 if failed or missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
