"""Embedding map benchmark (issue 14): map and lasso selection at 200,000 and 1,000,000 points.

A seeded synthetic 64-D float16 embedding (20 clusters, the reduced form predict stores). The
drawn 200,000 are mapped with :func:`analysis.embedding.project_2d` (method "auto": UMAP when
umap-learn is importable, else t-SNE; fitted on a 2,000-image sample, the others placed from
their nearest sampled neighbours; printed, not a target: it runs once per run and is cached).
All 1,000,000 get linear (PCA) coordinates for the selection timings, which do not depend on
how the map was made. Then, at 200,000 and 1,000,000 points:

- map layer: :func:`density_grid` (256 x 256) + :func:`sample_points` (the drawn 200,000)
- lasso selection (a 200-vertex hand-drawn outline) with :func:`select_polygon`, against the
  named baseline "plain numpy ray casting" (every edge tested against every point, the usual
  vectorised textbook pass) on the same points in the same run; both must select the same
  images                                                                  target < 2 s
- box selection (:func:`select_box`)                                      target < 2 s

Exits non-zero when a target is missed or the two selections differ.

    python -m bench embedding     # TRAPLENS_BENCH_MAP_SAMPLE overrides the 2,000 fit sample
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from analysis.embedding import (density_grid, project_2d, resolve_method, sample_points,
                                select_box, select_polygon)
from bench import figures

SIZES = (200_000, 1_000_000)
DIM = 64
FIT_SAMPLE = int(os.environ.get("TRAPLENS_BENCH_MAP_SAMPLE", "2000"))
DRAWN = 200_000
TARGET_S = 2.0


def embeddings(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, DIM)).astype(np.float32) * 4
    out = np.empty((n, DIM), dtype=np.float16)
    label = rng.integers(0, 20, n)
    for start in range(0, n, 250_000):
        part = label[start:start + 250_000]
        out[start:start + len(part)] = centres[part] + rng.standard_normal(
            (len(part), DIM), dtype=np.float32)
    return out


def lasso(xy: np.ndarray, m: int = 200, seed: int = 1) -> np.ndarray:
    """A wobbly closed outline around the middle third of the map, as a hand draws it."""
    rng = np.random.default_rng(seed)
    centre = np.median(xy, axis=0)
    span = (np.percentile(xy, 95, axis=0) - np.percentile(xy, 5, axis=0)) / 3
    t = np.linspace(0, 2 * np.pi, m, endpoint=False)
    r = 1 + 0.25 * np.sin(5 * t) + 0.05 * rng.standard_normal(m)
    return centre + np.c_[np.cos(t), np.sin(t)] * r[:, None] * span


def plain_ray_casting(xy: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Baseline: the textbook vectorised even-odd pass, every edge against every point."""
    px, py = xy[:, 0].astype(np.float64), xy[:, 1].astype(np.float64)
    inside = np.zeros(len(xy), dtype=bool)
    x1, y1 = poly[:, 0], poly[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    for a, b, c, d in zip(x1, y1, x2, y2):
        if b == d:
            continue
        crosses = (b > py) != (d > py)
        inside ^= crosses & (px < a + (py - b) * (c - a) / (d - b))
    return inside


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main() -> None:
    failures = []
    n_max = max(SIZES)
    emb, dt = timed(embeddings, n_max)
    print(f"  synthetic embedding {n_max:,} x {DIM} float16 made in {dt:.1f} s", flush=True)
    method = resolve_method("auto")
    _, dt = timed(project_2d, emb[:DRAWN], method="auto", sample=FIT_SAMPLE, seed=0,
                  max_iter=250)
    figures.record("embedding", f"map projection of {DRAWN:,} points ({method} on "
                   f"{FIT_SAMPLE:,}, the rest placed)", dt, "s")
    print(f"  map projection of the drawn sample ({method} fitted on {FIT_SAMPLE:,}, "
          f"{DRAWN - FIT_SAMPLE:,} placed by nearest sampled neighbours): {dt:.1f} s "
          "(once per run, cached beside it; not a target)", flush=True)
    # Selection cost does not depend on how the map was made: linear coordinates for all.
    xy, dt = timed(project_2d, emb, method="pca", seed=0)
    print(f"  linear (PCA) map of all {n_max:,} images: {dt:.1f} s", flush=True)
    del emb
    for n in SIZES:
        pts = xy[:n]
        (grid, _, _), t_grid = timed(density_grid, pts, bins=256)
        drawn, t_draw = timed(sample_points, n, DRAWN, 0)
        figures.record("embedding", f"density layer + drawn sample at {n:,} points",
                       t_grid + t_draw, "s", target=TARGET_S)
        print(f"  n={n:,}: density grid 256x256 {t_grid * 1e3:.0f} ms ({int(grid.sum()):,} "
              f"counted), drawn sample {len(drawn):,} in {t_draw * 1e3:.0f} ms", flush=True)
        poly = lasso(pts)
        sel, t_sel = timed(select_polygon, pts, poly)
        base, t_base = timed(plain_ray_casting, pts, poly)
        same = bool(np.array_equal(sel, base))
        ok = t_sel < TARGET_S and same
        figures.record("embedding", f"lasso selection at {n:,} points", t_sel, "s",
                       target=TARGET_S, baseline="plain numpy ray casting",
                       baseline_value=t_base)
        figures.record("embedding", f"lasso selection at {n:,} points equals the baseline's",
                       float(same), "bool", target=1.0, op=">=")
        print(f"  n={n:,}: lasso selection ({len(poly)} vertices, {int(sel.sum()):,} selected) "
              f"{t_sel * 1e3:.0f} ms vs plain numpy ray casting {t_base * 1e3:.0f} ms "
              f"({t_base / max(t_sel, 1e-9):.1f}x), same set: {same}; target < {TARGET_S:g} s: "
              f"{'ok' if ok else 'MISSED'}", flush=True)
        if not ok:
            failures.append(f"lasso selection at {n:,}")
        lo, hi = np.percentile(pts, [30, 70], axis=0)
        box, t_box = timed(select_box, pts, x_range=(lo[0], hi[0]), y_range=(lo[1], hi[1]))
        ok = t_box < TARGET_S
        figures.record("embedding", f"box selection at {n:,} points", t_box, "s",
                       target=TARGET_S)
        print(f"  n={n:,}: box selection ({int(box.sum()):,} selected) {t_box * 1e3:.0f} ms; "
              f"target < {TARGET_S:g} s: {'ok' if ok else 'MISSED'}", flush=True)
        if not ok:
            failures.append(f"box selection at {n:,}")
    if failures:
        print(f"  bench embedding: missed {failures}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
