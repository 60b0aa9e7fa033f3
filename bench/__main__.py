"""Run every benchmark (``bench/bench_*.py``, each with ``main()``), or those named.

    python -m bench                 # all
    python -m bench data analysis   # bench_data.py and bench_analysis.py only
"""
from __future__ import annotations

import pkgutil
import subprocess
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
    failed = []
    for name in wanted:
        print(f"\n=== bench {name} ===", flush=True)
        t0 = time.perf_counter()
        # A fresh process each: peak memory and cold-start figures must not inherit the
        # previous benchmark's heap or caches.
        code = f"import bench.bench_{name} as b; b.main()"
        if subprocess.run([sys.executable, "-c", code]).returncode:
            failed.append(name)
        print(f"=== {name} done in {time.perf_counter() - t0:.1f} s ===", flush=True)
    if failed:
        print(f"bench: failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
