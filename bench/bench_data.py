"""Loader benchmark: ``data.cct.load_dataset`` vs ``json.load`` + ``pandas.DataFrame``.

Builds (once, reused from the work folder cache) a synthetic file in the exact shape of the
published Snapshot Serengeti metadata: indent 1, bare NaN tokens, string count bins, sentinels,
1-3 frame captures with the sequence label copied onto each frame, ~70 % empty, a few
multi-species captures. Each measurement runs in its own subprocess so its peak RSS
(``VmHWM``) is clean:

- ``load_dataset`` cold (empty table cache: parse + build tables + write the cache),
- ``load_dataset`` warm (map the cached Arrow tables; untouched files are not hashed),
- baseline: ``json.load`` then ``pd.DataFrame(images)`` and ``pd.DataFrame(annotations)``.

Targets (issue 16), cold ``load_dataset`` against the baseline in the same run: at most
0.4x its wall time and at most 0.6x its peak RSS. A missed target exits non-zero.

    python -m bench data            # N images from $TRAPLENS_BENCH_IMAGES (default 1,000,000)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import back_memory, figures

N_IMAGES = int(os.environ.get("TRAPLENS_BENCH_IMAGES", "1000000"))
BASELINE = "json.load + pandas.DataFrame"
TARGETS = {"seconds": ("wall", 0.4), "peak_rss": ("peak RSS", 0.6)}  # cold / baseline, at most
ROOT = Path(__file__).resolve().parents[1]
SPECIES = ["zebra", "wildebeest", "gazellethomsons", "gazellegrants", "elephant", "giraffe",
           "buffalo", "impala", "hartebeest", "warthog", "lionfemale", "hyenaspotted",
           "guineafowl", "topi", "eland", "baboon", "ostrich", "koribustard", "dikdik",
           "reedbuck"]
COUNTS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11-50", "51+"]

_IMAGE = """  {{
   "id": "{iid}",
   "file_name": "{iid}.JPG",
   "frame_num": {frame},
   "seq_id": "{seq}",
   "width": {w},
   "height": {h},
   "corrupt": false,
   "location": "{loc}",
   "seq_num_frames": {n},
   "datetime": "{dt}"
  }}"""
_ANN = """  {{
   "sequence_level_annotation": true,
   "id": "{aid}",
   "image_id": "{iid}",
   "category_id": {cat},
   "seq_id": "{seq}",
   "season": "{season}",
   "datetime": "{dt}",
   "subject_id": "ASG{subject:07d}",
   "count": {count},
   "standing": {b0},
   "resting": {b1},
   "moving": {b2},
   "interacting": {b3},
   "young_present": {b4},
   "location": "{loc}"
  }}"""


def synthetic_file(n_images: int = N_IMAGES, *, seed: int = 0) -> Path:
    """Write (or reuse) the synthetic all-seasons-shaped file under the work folder cache."""
    from data.files import atomic_write
    from data.paths import cache_dir

    out = cache_dir() / "bench" / f"serengeti-synthetic-{n_images}-s{seed}.json"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cats = [{"id": 0, "name": "empty"}, {"id": 1, "name": "human"}] + [
        {"id": k + 2, "name": s} for k, s in enumerate(SPECIES)]
    t0 = time.perf_counter()

    def write(fh) -> None:
        fh.write('{\n "info": {\n  "version": "2.0",\n  "description": "synthetic"\n },\n')
        fh.write(' "categories": ' + json.dumps(cats, indent=1).replace("\n", "\n ") + ",\n")
        fh.write(' "images": [\n')
        anns: list[str] = []
        ann_file = tempfile.TemporaryFile("w+")
        written, cap, base = 0, 0, np.datetime64("2010-07-01T00:00:00")
        first = True
        while written < n_images:
            season = f"S{1 + min(9, cap * 10 // (n_images // 2 + 1))}"  # ~2 frames/capture
            site = f"{'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[cap % 26]}{(cap // 26) % 10:02d}"
            roll = 1 + (cap // 260) % 12
            n = min(int(rng.integers(1, 4)), n_images - written)
            seq = f"SER_{season}#{site}#{roll}#{cap}"
            empty = rng.random() < 0.7
            labels = [0] if empty else [2 + int(rng.integers(0, len(SPECIES)))]
            if not empty and rng.random() < 0.03:
                labels.append(2 + int(rng.integers(0, len(SPECIES))))
            t = base + np.timedelta64(int(cap * 97 + rng.integers(0, 90)), "s")
            for f in range(1, n + 1):
                iid = f"{season}/{site}/{site}_R{roll}/{season}_{site}_R{roll}_PICT{written:07d}"
                dt = "unknown" if rng.random() < 0.002 else str(t).replace("T", " ")
                w, h = (-1, -1) if rng.random() < 0.003 else (2048, 1536)
                fh.write(("" if first else ",\n") + _IMAGE.format(
                    iid=iid, frame=f, seq=seq, w=w, h=h, loc=site, n=n, dt=dt))
                first = False
                for cat in dict.fromkeys(labels):
                    sp = cat != 0
                    beh = ([f"{x:.2f}" for x in rng.random(5)] if sp else ["NaN"] * 5)
                    anns.append(_ANN.format(
                        aid=f"{cap:08x}-{f}-{cat}", iid=iid, cat=cat, seq=seq, season=season,
                        dt=dt, subject=cap, loc=site,
                        count=f'"{COUNTS[int(rng.integers(0, len(COUNTS)))]}"' if sp else "NaN",
                        b0=beh[0], b1=beh[1], b2=beh[2], b3=beh[3], b4=beh[4]))
                written += 1
            cap += 1
            if len(anns) > 50_000:
                ann_file.write(",\n".join(anns) + ",\n")
                anns.clear()
        ann_file.write(",\n".join(anns))
        fh.write('\n ],\n "annotations": [\n')
        ann_file.seek(0)
        while block := ann_file.read(1 << 24):
            fh.write(block)
        ann_file.close()
        fh.write("\n ]\n}\n")

    atomic_write(out, write=write, text=True)
    print(f"wrote {out} ({out.stat().st_size / 1e9:.2f} GB, {n_images:,} images) in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return out


_CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
mode, path = sys.argv[1], sys.argv[2]
if mode == "baseline":
    import pandas as pd
    with open(path) as fh:
        doc = json.load(fh)
    images = pd.DataFrame(doc["images"])
    annotations = pd.DataFrame(doc["annotations"])
    n = (len(images), len(annotations))
else:
    from data.cct import load_dataset
    ds = load_dataset([path])
    n = (len(ds.images), ds.n_annotations)
secs = time.perf_counter() - t0
use = resource.getrusage(resource.RUSAGE_SELF)
# VmHWM, not ru_maxrss: ru_maxrss survives exec, so it would report the parent's peak.
with open("/proc/self/status") as fh:
    hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
print(json.dumps({"seconds": secs, "cpu": use.ru_utime + use.ru_stime,
                  "peak_rss": hwm * 1024, "images": n[0], "annotations": n[1]}))
"""


def _measure(mode: str, path: Path, home: Path) -> dict:
    env = dict(os.environ, TRAPLENS_HOME=str(home), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _CHILD, mode, str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    path = synthetic_file()
    size_gb = path.stat().st_size / 1e9
    print(f"file: {path} ({size_gb:.2f} GB)", flush=True)
    back_memory(4)  # more than any one program's peak: none pays the host for first touches
    print(f"  {'':<9}{'wall s':>8}{'CPU s':>8}{'peak RSS GiB':>14}", flush=True)
    with tempfile.TemporaryDirectory(prefix="traplens-bench-") as home:
        results = {}
        for mode in ("cold", "warm", "baseline"):
            results[mode] = r = _measure(mode, path, Path(home))
            print(f"  {mode:<9}{r['seconds']:8.1f}{r['cpu']:8.1f}{r['peak_rss'] / 2**30:14.2f}"
                  f"   ({r['images']:,} images, {r['annotations']:,} annotations)", flush=True)
    base = results["baseline"]
    for mode in ("cold", "warm"):
        r = results[mode]
        print(f"load_dataset {mode} / baseline: wall {r['seconds'] / base['seconds']:.2f}x, "
              f"CPU {r['cpu'] / base['cpu']:.2f}x, peak RSS {r['peak_rss'] / base['peak_rss']:.2f}x")
    per_gb = results["cold"]["peak_rss"] / 2**30 / size_gb
    print(f"rough cold peak for the 5.2 GB all-seasons file: ~{per_gb * 5.2:.1f} GiB "
          "(peak RSS per GB of JSON x 5.2)")
    print("(wall times depend on machine load; CPU seconds are steadier)")
    figures.record("data", "warm load_dataset (table cache), ratio to the baseline",
                   results["warm"]["seconds"] / base["seconds"], "x", baseline=BASELINE,
                   baseline_value=base["seconds"])
    check_targets(results["cold"], base)  # python -m bench fails the run on a miss


def check_targets(cold: dict, base: dict) -> list[str]:
    """Print cold ``load_dataset`` against the baseline for each target; the missed ones."""
    missed = []
    for key, (name, limit) in TARGETS.items():
        ratio = cold[key] / base[key]
        ok = ratio <= limit
        print(f"target: cold load_dataset {name} {ratio:.2f}x of {BASELINE} "
              f"(at most {limit:.1f}x): {'met' if ok else 'MISSED'}", flush=True)
        figures.record("data", f"cold load_dataset {name}, ratio to the baseline", ratio, "x",
                       target=limit, op="<=", baseline=BASELINE, baseline_value=base[key])
        if not ok:
            missed.append(f"{name} {ratio:.2f}x > {limit:.1f}x")
    return missed


if __name__ == "__main__":
    main()
