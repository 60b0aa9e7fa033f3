"""Offline, deterministic demo dataset in the published Snapshot Serengeti (COCO-CT) format.

``make_demo(out, n_images=3000, seed=0)`` writes one COCO Camera Traps JSON per season
(``SnapshotSerengetiS01.json``, ``SnapshotSerengetiS02.json``), 512x384 JPEGs in the published
folder layout under ``out/images/`` and ``demo_truth.json``: what every frame truly shows and
which problem was planted in it (see docs/formats.md, "Demo dataset"). The same
``(n_images, seed)`` gives the same bytes.

The dataset is planned first (pure and cheap: captures, species, labels, times, planted
problems), then drawn capture by capture, in worker processes when there are many images.
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import math
import multiprocessing
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data.demo import draw
from data.files import atomic_write, check_output
from data.paths import demo_dir

log = logging.getLogger(__name__)

SEASONS = ("S1", "S2")
JSON_NAMES = {"S1": "SnapshotSerengetiS01.json", "S2": "SnapshotSerengetiS02.json"}
TRUTH_NAME = "demo_truth.json"
IMAGES_DIR = "images"
TRUTH_VERSION = 1

# Category ids as in the published Snapshot Serengeti files.
CATEGORIES: dict[str, int] = {
    "empty": 0, "gazellegrants": 2, "zebra": 5, "impala": 10, "buffalo": 11, "giraffe": 13,
    "elephant": 18, "gazellethomsons": 19, "guineafowl": 20, "hartebeest": 22,
    "hyenaspotted": 25, "lionfemale": 30, "warthog": 43, "wildebeest": 47,
}
# Share of single-species captures per species (normalised): a long tail, as in Serengeti.
SPECIES_WEIGHTS: dict[str, float] = {
    "zebra": 0.20, "wildebeest": 0.17, "gazellethomsons": 0.14, "gazellegrants": 0.07,
    "buffalo": 0.07, "impala": 0.07, "elephant": 0.055, "hartebeest": 0.05, "giraffe": 0.045,
    "warthog": 0.04, "guineafowl": 0.03, "hyenaspotted": 0.025, "lionfemale": 0.02,
}
NIGHT_PROB = {"lionfemale": 0.6, "hyenaspotted": 0.75, "elephant": 0.3, "buffalo": 0.3,
              "guineafowl": 0.02, "giraffe": 0.1, "empty": 0.25}
NIGHT_DEFAULT = 0.15
LOOKALIKE = ("gazellethomsons", "gazellegrants")
MIXED = ("zebra", "wildebeest")

EMPTY_SHARE = 0.66          # of images whose label is "empty"
MIXED_SHARE = 0.10          # of animal captures: a zebra + wildebeest herd
MIXED_MISSED_SHARE = 0.4    # of mixed herds: only one species annotated
LEAVE_SHARE = 0.25          # of multi-frame single-species captures: the animals walk out
SWAP_SHARE = 0.12           # of gazelle captures: annotated as the other gazelle
MISSING_SHARE = 0.004       # of images listed in the JSON but absent on disk
TRUNCATED_SHARE = 0.003     # of images cut short on disk
SEASON_RANGE = {"S1": (datetime(2010, 7, 1), 76), "S2": (datetime(2010, 10, 1), 92)}
SITE_WEIGHTS = dict(zip(draw.SITES, (0.16, 0.14, 0.13, 0.12, 0.12, 0.12, 0.11, 0.10)))
_UUID_NS = uuid.UUID("5d2b6a57-2f7e-4c8e-9a59-3c1f0f6a7d11")
_MIN_IMAGES, _MAX_IMAGES = 10, 500_000
_POOL_THRESHOLD = 300       # below this many images one process is faster than a pool


class DemoError(ValueError):
    """Bad arguments for the demo generator, or an output folder it must not overwrite."""


@dataclass(frozen=True)
class DemoPaths:
    root: Path
    json_paths: list[Path]
    images_root: Path
    truth: Path


@dataclass
class Capture:
    """One trigger of a camera: 1-3 frames sharing a ``seq_id`` and its annotations."""

    index: int
    herds: list[tuple[str, int]]          # (species, count) truly in front of the camera
    labels: list[str]                     # annotated classes, in annotation order
    n_frames: int
    leave_at: int | None = None           # first frame (0-based) after the animals walked out
    night: bool = False
    season: str = "S1"
    site: str = "B03"
    roll: int = 1
    number: int = 0
    start: datetime = datetime(2010, 7, 1)
    offsets: list[int] = field(default_factory=list)  # seconds after start, per frame
    image_numbers: list[int] = field(default_factory=list)
    missing: set[int] = field(default_factory=set)    # frame indices absent on disk
    truncated: dict[int, float] = field(default_factory=dict)  # frame index -> kept fraction
    votes: dict = field(default_factory=dict)         # behaviour fractions per species

    # --- identifiers -------------------------------------------------------------------
    def seq_id(self) -> str:
        return f"SER_{self.season}#{self.site}#{self.roll}#{self.number}"

    def image_id(self, frame: int) -> str:
        s, site, r = self.season, self.site, self.roll
        return f"{s}/{site}/{site}_R{r}/{s}_{site}_R{r}_IMAG{self.image_numbers[frame]:04d}"

    def when(self, frame: int) -> datetime:
        return self.start + timedelta(seconds=self.offsets[frame])

    def visible(self, frame: int) -> list[str]:
        if self.leave_at is not None and frame >= self.leave_at:
            return []
        return [sp for sp, _ in self.herds]

    def hour(self) -> int:
        return self.start.hour


# ------------------------------------------------------------------------------------------
# Planning
# ------------------------------------------------------------------------------------------

def _frames(rng: np.random.Generator) -> int:
    return int(rng.choice([1, 2, 3], p=[0.12, 0.13, 0.75]))


def _herd_size(species: str, rng: np.random.Generator) -> int:
    lo, hi = draw.BODIES[species].herd
    if species in MIXED and rng.random() < 0.07:
        return int(rng.integers(11, 19))
    return int(rng.integers(lo, hi + 1))


def _single(species: str, rng: np.random.Generator, *, n_frames: int | None = None,
            leave: bool | None = None, swap: bool | None = None) -> Capture:
    n = n_frames or _frames(rng)
    label = species
    if species in LOOKALIKE and (swap if swap is not None else rng.random() < SWAP_SHARE):
        label = LOOKALIKE[1 - LOOKALIKE.index(species)]
    cap = Capture(-1, [(species, _herd_size(species, rng))], [label], n)
    if n >= 2 and (leave if leave is not None else rng.random() < LEAVE_SHARE):
        cap.leave_at = int(rng.integers(1, n))
        cap.herds = [(species, min(cap.herds[0][1], 3))]
    return cap


def _mixed(rng: np.random.Generator, *, missed: bool | None = None) -> Capture:
    n_major, n_minor = sorted((_herd_size(MIXED[0], rng), _herd_size(MIXED[1], rng)),
                              reverse=True)
    order = list(MIXED) if rng.random() < 0.5 else list(MIXED[::-1])
    herds = [(order[0], n_major), (order[1], max(1, min(n_minor, n_major)))]
    missed = missed if missed is not None else rng.random() < MIXED_MISSED_SHARE
    labels = [order[0]] if missed else list(order)
    return Capture(-1, herds, labels, 3 if rng.random() < 0.85 else 2)


def _animal_captures(budget: int, rng: np.random.Generator) -> list[Capture]:
    """Captures with animals filling exactly ``budget`` frames; every phenomenon planted."""
    species = list(SPECIES_WEIGHTS)
    weights = np.array([SPECIES_WEIGHTS[s] for s in species])
    weights /= weights.sum()
    forced = [_mixed(rng, missed=False), _mixed(rng, missed=True),
              _single("zebra", rng, n_frames=3, leave=True),
              _single("gazellethomsons", rng, n_frames=3, leave=False, swap=True),
              _mixed(rng, missed=True), _mixed(rng, missed=False),
              _single("wildebeest", rng, n_frames=3, leave=True)]
    forced += [_single(s, rng, n_frames=3, leave=False) for s in species[::-1]]
    out: list[Capture] = []
    used = 0
    while used < budget:
        if forced:
            cap = forced.pop(0)
        elif rng.random() < MIXED_SHARE:
            cap = _mixed(rng)
        else:
            cap = _single(str(rng.choice(species, p=weights)), rng)
        cap.n_frames = min(cap.n_frames, budget - used)
        if cap.leave_at is not None and cap.leave_at >= cap.n_frames:
            cap.leave_at = None
        used += cap.n_frames
        out.append(cap)
    return out


def _empty_captures(budget: int, rng: np.random.Generator) -> list[Capture]:
    out, used = [], 0
    while used < budget:
        n = min(_frames(rng), budget - used)
        out.append(Capture(-1, [], ["empty"], n))
        used += n
    return out


def _behaviour(rng: np.random.Generator) -> dict[str, float]:
    votes = int(rng.integers(4, 13))
    frac = {k: int(rng.integers(0, votes + 1)) / votes
            for k in ("standing", "resting", "moving", "interacting")}
    frac["young_present"] = int(rng.integers(0, votes + 1)) / votes if rng.random() < 0.2 else 0.0
    return frac


def _place_in_time(caps: list[Capture], rng: np.random.Generator) -> None:
    """Season, site, roll, start time and frame offsets for every capture."""
    sites = list(SITE_WEIGHTS)
    sw = np.array([SITE_WEIGHTS[s] for s in sites])
    sw /= sw.sum()
    for i, cap in enumerate(caps):
        cap.season = SEASONS[i % 2] if i < 2 else str(rng.choice(SEASONS, p=[0.55, 0.45]))
        cap.site = str(rng.choice(sites, p=sw))
        key = cap.herds[0][0] if cap.herds else "empty"
        cap.night = bool(rng.random() < NIGHT_PROB.get(key, NIGHT_DEFAULT))
        hour = int(rng.integers(18, 30)) % 24 if cap.night else int(rng.integers(6, 18))
        start, days = SEASON_RANGE[cap.season]
        day = int(rng.integers(0, days))
        cap.roll = 1 if day < days // 2 else 2
        cap.start = start + timedelta(days=day, hours=hour, minutes=int(rng.integers(0, 60)),
                                      seconds=int(rng.integers(0, 57)))  # same hour to the end
        offs = [0]
        for _ in range(cap.n_frames - 1):
            offs.append(offs[-1] + int(rng.integers(0, 2)))
        cap.offsets = offs
        cap.votes = {sp: _behaviour(rng) for sp in cap.labels if sp != "empty"}


def _number(caps: list[Capture]) -> None:
    """Capture numbers and IMAG numbers, chronological within each (season, site, roll)."""
    groups: dict[tuple[str, str, int], list[Capture]] = {}
    for cap in caps:
        groups.setdefault((cap.season, cap.site, cap.roll), []).append(cap)
    for group in groups.values():
        group.sort(key=lambda c: (c.start, c.index))
        image = 1
        for k, cap in enumerate(group, start=1):
            cap.number = k
            cap.image_numbers = list(range(image, image + cap.n_frames))
            image += cap.n_frames


def _plant_file_problems(caps: list[Capture], n_images: int, rng: np.random.Generator) -> None:
    """Missing frames (listed, absent on disk) and truncated files."""
    n_missing = max(1, round(MISSING_SHARE * n_images))
    multi = [c for c in caps if c.n_frames >= 2]
    order = rng.permutation(len(multi))
    done = 0
    for k in order:
        if done >= n_missing:
            break
        cap = multi[k]
        drop = 2 if cap.n_frames == 3 and rng.random() < 0.5 else 1
        drop = min(drop, n_missing - done)
        cap.missing = set(range(cap.n_frames - drop, cap.n_frames))
        done += drop
    n_trunc = max(1, round(TRUNCATED_SHARE * n_images))
    frames = [(c, f) for c in caps for f in range(c.n_frames) if f not in c.missing]
    for k in rng.choice(len(frames), size=min(n_trunc, len(frames)), replace=False):
        cap, f = frames[int(k)]
        cap.truncated[f] = float(rng.uniform(0.3, 0.7))


def plan(n_images: int, seed: int) -> list[Capture]:
    """The whole dataset as captures (no pixels yet), in chronological order per camera."""
    rng = np.random.default_rng([seed, 20100701])
    n_empty = round(EMPTY_SHARE * n_images)
    caps = _animal_captures(n_images - n_empty, rng) + _empty_captures(n_empty, rng)
    caps = [caps[int(k)] for k in rng.permutation(len(caps))]
    for i, cap in enumerate(caps):
        cap.index = i
    _place_in_time(caps, rng)
    _number(caps)
    _plant_file_problems(caps, n_images, rng)
    caps.sort(key=lambda c: (c.season, c.site, c.roll, c.number))
    return caps


# ------------------------------------------------------------------------------------------
# Drawing (runs in worker processes)
# ------------------------------------------------------------------------------------------

def _placements(cap: Capture, rng: np.random.Generator) -> list[list[draw.Placement]]:
    """Where every animal stands in every frame; each stays inside the frame until it leaves."""
    W = draw.W
    lo_x, hi_x = 0.07 * W, 0.93 * W
    leaving = cap.leave_at is not None
    herd_dir = 1 if rng.random() < 0.5 else -1
    animals = []
    focal_x = rng.uniform(0.2, 0.8) * W
    if leaving:  # start near the edge they walk out of
        focal_x = (rng.uniform(0.65, 0.85) if herd_dir > 0 else rng.uniform(0.15, 0.35)) * W
    for h, (species, count) in enumerate(cap.herds):
        lo, hi = draw.BODIES[species].depth
        for k in range(count):
            if k == 0:
                depth = rng.uniform(lo + 0.45 * (hi - lo), hi)
                x = focal_x + (0 if h == 0 else rng.normal(0, 0.15) * W)
            else:
                far = count > 10 and k > 2
                depth = rng.uniform(lo, lo + 0.4 * (hi - lo)) if far else rng.uniform(lo, hi)
                x = focal_x + rng.normal(0, 0.22) * W
            facing = herd_dir if (leaving or rng.random() < 0.8) else -herd_dir
            walking = leaving or rng.random() < 0.5
            speed = rng.uniform(0.05, 0.12) * W if walking else rng.uniform(-0.01, 0.01) * W
            animals.append(dict(species=species, x=float(np.clip(x, lo_x, hi_x)), depth=depth,
                                facing=facing, walking=walking, speed=speed,
                                head_down=bool(rng.random() < 0.4 and not walking)))
    frames = []
    for f in range(cap.n_frames):
        if leaving and f >= cap.leave_at:
            frames.append([])
            continue
        out = []
        for a in animals:
            x = a["x"] + a["facing"] * a["speed"] * f
            facing = a["facing"]
            if not leaving and not lo_x <= x <= hi_x:  # turn round at the frame edge
                x = float(np.clip(x, lo_x, hi_x))
                facing = -facing
            x = float(np.clip(x, lo_x, hi_x))
            if f and rng.random() < 0.25:
                a["head_down"] = not a["head_down"] and not a["walking"]
            pose = draw.Pose(facing, a["head_down"], float(rng.uniform(0, 2 * math.pi)),
                             a["walking"])
            out.append(draw.Placement(a["species"], x, a["depth"], pose))
        frames.append(out)
    return frames


def _stamp_text(cap: Capture, frame: int, temp: int) -> str:
    t = cap.when(frame)
    return f"SG565 {cap.site}   {temp:>2d}C   {t:%Y-%m-%d %H:%M:%S}   {cap.season}"


def _render_capture(args: tuple[Capture, str, int]) -> int:
    """Draw and write every frame of one capture; returns the number of frames handled."""
    cap, images_root, seed = args
    rng = np.random.default_rng([seed, cap.index, 7])
    light = draw.capture_light(draw.SITES[cap.site], cap.hour(), rng)
    placements = _placements(cap, rng)
    root = Path(images_root)
    for f in range(cap.n_frames):
        img = draw.render_frame(cap.site, cap.season, cap.night, light, placements[f],
                                _stamp_text(cap, f, light["temp"]), rng)
        if f in cap.missing:
            continue
        path = root / (cap.image_id(f) + ".JPG")
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=85)
        data = buf.getvalue()
        if f in cap.truncated:
            data = data[: int(len(data) * cap.truncated[f])]
        path.write_bytes(data)
    return cap.n_frames


# ------------------------------------------------------------------------------------------
# Metadata
# ------------------------------------------------------------------------------------------

def _draw_all(caps: list[Capture], images_root: Path, seed: int, *, workers: int, total: int,
              progress: bool) -> None:
    """Draw every capture, in ``workers`` processes; the bytes do not depend on ``workers``."""
    jobs = [(cap, str(images_root), seed) for cap in caps]
    if workers <= 1:
        with tqdm(total=total, desc="demo images", unit="img", disable=not progress) as bar:
            for job in jobs:
                bar.update(_render_capture(job))
        return
    # fork (where available) does not re-import the caller's __main__, so scripts without a
    # main guard work; the pool starts before tqdm's monitor thread exists.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ctx.Pool(workers) as pool, \
            tqdm(total=total, desc="demo images", unit="img", disable=not progress) as bar:
        for done in pool.imap_unordered(_render_capture, jobs, chunksize=8):
            bar.update(done)


def _count_bin(n: int) -> str:
    return str(n) if n <= 10 else ("11-50" if n <= 50 else "51+")


def _subject_id(cap: Capture, seed: int) -> str:
    n = 36 ** 6 + seed * 1_000_003 + cap.index
    digits = ""
    while n:
        n, r = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[r] + digits
    return f"ASG{digits[-7:]}"


def _coco(caps: list[Capture], season: str, n_images: int, seed: int) -> dict:
    images, annotations = [], []
    nan = float("nan")
    for cap in caps:
        if cap.season != season:
            continue
        counts = dict(cap.herds)
        for f in range(cap.n_frames):
            iid = cap.image_id(f)
            when = f"{cap.when(f):%Y-%m-%d %H:%M:%S}"
            present = f not in cap.missing
            images.append({
                "id": iid, "file_name": iid + ".JPG", "frame_num": f + 1,
                "seq_id": cap.seq_id(), "width": draw.W if present else -1,
                "height": draw.H if present else -1, "corrupt": False, "location": cap.site,
                "seq_num_frames": cap.n_frames, "datetime": when,
            })
            for label in cap.labels:
                empty = label == "empty"
                votes = cap.votes.get(label, {})
                n = counts.get(label) or max(counts.values(), default=1)
                annotations.append({
                    "sequence_level_annotation": True,
                    "id": str(uuid.uuid5(_UUID_NS, f"{seed}/{iid}/{label}")),
                    "image_id": iid, "category_id": CATEGORIES[label], "seq_id": cap.seq_id(),
                    "season": season, "datetime": when, "subject_id": _subject_id(cap, seed),
                    "count": nan if empty else _count_bin(n),
                    **{k: nan if empty else votes[k] for k in
                       ("standing", "resting", "moving", "interacting", "young_present")},
                    "location": cap.site,
                })
    return {
        "info": {
            "version": "2.0",
            "description": f"TrapLens demo dataset, Snapshot Serengeti look-alike, season "
                           f"{season} (synthetic images; {n_images} images in all, seed {seed})",
            "date_created": "2019",
            "contributor": "TrapLens demo generator",
        },
        "categories": [{"id": i, "name": n} for n, i in sorted(CATEGORIES.items(),
                                                               key=lambda kv: kv[1])],
        "images": images,
        "annotations": annotations,
    }


def _phenomena(cap: Capture, f: int) -> list[str]:
    visible, labels = cap.visible(f), [x for x in cap.labels if x != "empty"]
    out = []
    if labels and not visible:
        out.append("inherited_label")
    if len(cap.herds) > 1 and any(sp not in labels for sp in visible):
        out.append("missed_species")
    if any(sp in LOOKALIKE for sp in visible + labels):
        out.append("lookalike")
    if f in cap.truncated:
        out.append("truncated")
    if f in cap.missing:
        out.append("missing")
    if cap.night:
        out.append("night")
    return out


def _truth(caps: list[Capture], seed: int) -> dict:
    images = {}
    for cap in caps:
        for f in range(cap.n_frames):
            images[cap.image_id(f)] = {
                "visible": cap.visible(f),
                "labelled": [x for x in cap.labels if x != "empty"],
                "phenomena": _phenomena(cap, f),
            }
    return {"version": TRUTH_VERSION, "seed": seed, "images": images}


def _write_json(path: Path, doc: dict) -> None:
    atomic_write(path, json.dumps(doc, indent=1, allow_nan=True) + "\n")


# ------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------

def _prepare(out: Path) -> None:
    """Create ``out``; replace a previous demo there, refuse to overwrite anything else."""
    images = out / IMAGES_DIR
    if images.exists():
        if not (out / TRUTH_NAME).exists():
            raise DemoError(f"{out}: holds an '{IMAGES_DIR}' folder that is not a demo dataset "
                            f"(no {TRUTH_NAME}); choose another --out")
        shutil.rmtree(images)
    out.mkdir(parents=True, exist_ok=True)


def make_demo(out: str | Path, *, n_images: int = 3000, seed: int = 0,
              workers: int | None = None, progress: bool = False) -> DemoPaths:
    """Write a deterministic Snapshot Serengeti-like demo dataset under ``out``.

    Parameters
    ----------
    out : folder to write (created; a previous demo dataset there is replaced).
    n_images : exact number of images listed in the JSON files (a few are planted missing).
    seed : random seed; the same ``(n_images, seed)`` gives the same bytes.
    workers : drawing processes; ``None`` picks 1 for small datasets, else up to 2.
    progress : show a tqdm progress bar.

    Returns
    -------
    DemoPaths with the two per-season JSON files, the image root and ``demo_truth.json``.
    """
    if isinstance(n_images, bool) or not isinstance(n_images, int) \
            or not _MIN_IMAGES <= n_images <= _MAX_IMAGES:
        raise DemoError(f"n_images: expected an integer in {_MIN_IMAGES}..{_MAX_IMAGES}, "
                        f"got {n_images!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DemoError(f"seed: expected a non-negative integer, got {seed!r}")
    out = Path(out)
    t0 = time.perf_counter()
    _prepare(out)
    images_root = out / IMAGES_DIR
    caps = plan(n_images, seed)
    if workers is None:
        workers = 1 if n_images < _POOL_THRESHOLD else min(2, multiprocessing.cpu_count())
    _draw_all(caps, images_root, seed, workers=workers, total=n_images, progress=progress)
    json_paths = []
    for season in SEASONS:
        path = out / JSON_NAMES[season]
        _write_json(path, _coco(caps, season, n_images, seed))
        json_paths.append(path)
    truth = out / TRUTH_NAME
    _write_json(truth, _truth(caps, seed))
    log.info("demo dataset: %d images, %d captures in %s (%.1f s)", n_images, len(caps), out,
             time.perf_counter() - t0)
    return DemoPaths(root=out, json_paths=json_paths, images_root=images_root, truth=truth)


def summarize(paths: DemoPaths) -> dict:
    """Counts for the CLI's one-line summary, read back from ``demo_truth.json``."""
    truth = json.loads(paths.truth.read_text(encoding="utf-8"))["images"]
    phen: dict[str, int] = {}
    for rec in truth.values():
        for p in rec["phenomena"]:
            phen[p] = phen.get(p, 0) + 1
    empty = sum(1 for r in truth.values() if not r["labelled"])
    return {"images": len(truth), "empty_fraction": empty / max(1, len(truth)), **phen}


def check_demo_out(out: Path) -> None:
    """Refuse (``OutputError``) a demo folder that is a file or holds files of other kinds
    where the demo writes its JSON; rewriting a previous demo is allowed."""
    check_output(out, folder=True, what="demo folder")
    for name in JSON_NAMES.values():
        check_output(out / name, kinds={"cct-json"}, what="demo dataset")
    check_output(out / TRUTH_NAME, kinds={"json"}, what="demo truth")
    check_output(out / "images", folder=True, what="demo image folder")


def _cli(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else demo_dir()
    t0 = time.perf_counter()
    try:
        check_demo_out(out)
        paths = make_demo(out, n_images=args.images, seed=args.seed, workers=args.workers,
                          progress=True)
    except (ValueError, OSError) as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    s = summarize(paths)
    print(f"demo: {s['images']} images ({s['empty_fraction']:.0%} labelled empty, "
          f"{s.get('night', 0)} night, {s.get('inherited_label', 0)} inherited-label, "
          f"{s.get('missed_species', 0)} missed-species, {s.get('missing', 0)} missing, "
          f"{s.get('truncated', 0)} truncated) in {paths.root} "
          f"[{time.perf_counter() - t0:.1f} s]")
    return 0


def register_cli(subparsers) -> None:
    """Add ``demo`` to ``python -m data``: ``demo --out DIR [--images N] [--seed S]``."""
    p = subparsers.add_parser("demo", help="write the offline demo dataset",
                              description="Write a deterministic Snapshot Serengeti-like demo "
                                          "dataset (COCO-CT JSON per season, JPEGs, truth).")
    p.add_argument("--out", default=None,
                   help="output folder (default: $TRAPLENS_HOME/demo)")
    p.add_argument("--images", type=int, default=3000, help="number of images (default 3000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--workers", type=int, default=None,
                   help="drawing processes (default: 2 for large datasets)")
    p.set_defaults(func=_cli)
