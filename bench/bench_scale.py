"""Beyond one machine: confusion + per-class metrics of the bench run over Parquet partitions
(Dask, one task per row group) against the in-memory result, which must be identical.

The run is bench_analysis's synthetic run (1 M x 61; 7.2 M x 61 at the full scale) (generated there if absent). The baseline
is the in-memory path the dashboard uses (``data.runs.load_run`` then one ``np.bincount``).
On one machine Dask is not meant to be faster: the figure shows the partitioned form is exact
and what it costs; see docs/architecture.md, "Beyond one machine".
"""
from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from bench import figures
from bench.bench_analysis import N_CLASSES, N_IMAGES, bench_run_dir, generate, image_ids, truth_arrays


def main() -> None:
    import dask

    from analysis.metrics import confusion, per_class
    from analysis.partitions import row_group_confusion
    from data.runs import PREDICTIONS, load_run

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    run_dir = bench_run_dir()
    if not (run_dir / PREDICTIONS).exists():
        print(f"  generating {N_IMAGES:,} x {N_CLASSES} synthetic predictions ...", flush=True)
        generate(run_dir, N_IMAGES, N_CLASSES)
    y, _, cap, frame = truth_arrays(N_IMAGES, N_CLASSES)
    classes = [f"class{i:02d}" for i in range(N_CLASSES)]

    t0 = time.perf_counter()
    run = load_run(run_dir)
    cm_mem = confusion(y, run.probs.argmax(axis=1), N_CLASSES)
    t_mem = time.perf_counter() - t0
    del run

    truth = pd.Series(y, index=pd.Index(image_ids(cap, frame)))  # the broadcast look-up
    path = str(run_dir / PREDICTIONS)
    groups = pq.ParquetFile(path).metadata.num_row_groups
    t0 = time.perf_counter()
    tasks = [dask.delayed(row_group_confusion)(path, g, truth=truth, n_classes=N_CLASSES)
             for g in range(groups)]
    cm_dask = sum(dask.compute(*tasks, scheduler="threads", num_workers=2))
    t_dask = time.perf_counter() - t0

    same = bool(np.array_equal(cm_mem, cm_dask)) and per_class(cm_mem, classes).equals(
        per_class(cm_dask, classes))
    print(f"  {N_IMAGES:,} images x {N_CLASSES} classes, {groups} Parquet row groups")
    print(f"  in memory (load_run + bincount): {t_mem:6.1f} s")
    print(f"  dask over row groups (2 threads): {t_dask:6.1f} s; identical confusion and "
          f"per-class metrics: {same}", flush=True)
    figures.record("scale", "confusion + per-class metrics over Parquet partitions (dask), s",
                   t_dask, "s", baseline="in memory: load_run + bincount", baseline_value=t_mem)
    figures.record("scale", "partitioned result identical to in-memory (1 = yes)", float(same),
                   "bool", target=1, op=">=")


if __name__ == "__main__":
    main()
