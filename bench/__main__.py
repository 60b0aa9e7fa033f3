"""Run every benchmark (``bench/bench_*.py``, each with ``main()``), or those named.

    python -m bench                 # all
    python -m bench data analysis   # bench_data.py and bench_analysis.py only
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import bench


def main(argv: list[str]) -> int:
    names = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules(bench.__path__)
                   if m.name.startswith("bench_"))
    wanted = argv or names
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        print(f"bench: unknown benchmark(s) {unknown}; choose from {names}", file=sys.stderr)
        return 2
    for name in wanted:
        print(f"\n=== bench {name} ===", flush=True)
        t0 = time.perf_counter()
        importlib.import_module(f"bench.bench_{name}").main()
        print(f"=== {name} done in {time.perf_counter() - t0:.1f} s ===", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
