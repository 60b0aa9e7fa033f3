"""`make bench`: speed targets measured against a named baseline in the same run.

Two scales: ``default`` (``make bench``: 1 M images where a target names more, so the whole
suite stays under 10 minutes on a 2-core machine) and ``full`` (``make bench SCALE=full`` or
``TRAPLENS_BENCH_SCALE=full``: every target at the size it states, 7.2 M images x 61
classes, the full Snapshot Serengeti; about 20 GB of free disk and most of 24 GB of RAM).
A bench's own size variable (e.g. ``TRAPLENS_BENCH_PRED_IMAGES``) overrides both.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

SCALE_ENV = "TRAPLENS_BENCH_SCALE"
SCALES = ("default", "full")


def scale() -> str:
    """The bench scale from ``$TRAPLENS_BENCH_SCALE`` (``default`` when unset)."""
    value = os.environ.get(SCALE_ENV, "default") or "default"
    if value not in SCALES:
        raise ValueError(f"{SCALE_ENV}={value!r}: choose one of {', '.join(SCALES)}")
    return value


def size(env: str, *, default: int, full: int) -> int:
    """A bench's size: ``$env`` when set, else ``full`` at the full scale, else ``default``.

    >>> size("TRAPLENS_NO_SUCH_VARIABLE", default=10, full=72) in (10, 72)
    True
    """
    if os.environ.get(env):
        return int(os.environ[env])
    return full if scale() == "full" else default


def back_memory(gib: float) -> None:
    """Touch ``gib`` GiB in a throw-away process, so that what is measured next is the code,
    not the virtual machine (``TRAPLENS_BENCH_BACK_GIB`` overrides ``gib``; 0 skips).

    A VM whose host backs guest memory lazily (as this project's Firecracker VMs do) charges
    ~2 s per GiB the first time a page is touched after a while, ten times what a kernel
    charges to fault in and zero a page: a multi-GB first call then measures the host, and
    whichever of two measured programs runs first pays for both. The throw-away process
    shares nothing with the bench (no file, array or cache of TrapLens); the measured
    processes still fault in and zero every page they use.
    """
    gib = float(os.environ.get("TRAPLENS_BENCH_BACK_GIB", gib))
    if gib <= 0:
        print("  memory not backed beforehand (TRAPLENS_BENCH_BACK_GIB=0): first calls include "
              "the host's first-touch cost", flush=True)
        return
    code = f"import numpy as np; np.ones({int(gib * 2**30)}, np.uint8)"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    dt = time.perf_counter() - t0
    print(f"  host memory backed beforehand: {gib:g} GiB touched in a separate process in "
          f"{dt:.1f} s ({dt / gib:.2f} s/GiB; TRAPLENS_BENCH_BACK_GIB=0 skips)", flush=True)
