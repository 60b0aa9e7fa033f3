"""Exports of the curated dataset: corrected COCO Camera Traps JSON, a CSV of the decisions,
and Camtrap DP observations.

Every file is written atomically (a temporary file in the same folder, flushed and fsynced,
then ``os.replace``): a crash or a kill mid-export leaves the previous export as it was.
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import sys
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
import pandas as pd

from data.cct import CHUNK_BYTES, DatasetError, iter_members
from data.curation import COLUMNS, EMPTY_CLASS, DecisionStore

if TYPE_CHECKING:
    from data.cct import Dataset

log = logging.getLogger(__name__)

FORMATS = ("coco", "csv", "camtrapdp")
# Fields copied from an image's existing annotation onto an annotation added for a new class:
# they describe the capture, not the species. Species fields (count, behaviour) become NaN.
CONTEXT_FIELDS = ("seq_id", "season", "datetime", "location", "subject_id")
# Camtrap DP 1.0 observations columns written (image level; required ones first).
OBSERVATION_FIELDS = [
    "observationID", "deploymentID", "mediaID", "eventID", "eventStart", "eventEnd",
    "observationLevel", "observationType", "scientificName", "classificationMethod",
    "classifiedBy", "classificationTimestamp", "observationComments",
]
REQUIRED_OBSERVATION_FIELDS = ("observationID", "deploymentID", "mediaID", "eventStart",
                               "eventEnd", "observationLevel", "observationType")
OBSERVATION_TYPES = {EMPTY_CLASS: "blank", "human": "human", "vehicle": "vehicle"}
MEDIA_FIELDS = ["mediaID", "deploymentID", "captureMethod", "timestamp", "filePath",
                "filePublic", "fileName", "fileMediatype"]
DEPLOYMENT_FIELDS = ["deploymentID", "locationID", "locationName", "latitude", "longitude",
                     "coordinateUncertainty", "deploymentStart", "deploymentEnd"]
CAMTRAP_DP = "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0"
SAMPLING_DESIGNS = ("simpleRandom", "systematicRandom", "clusteredRandom", "experimental",
                    "targeted", "opportunistic")
_NAMESPACE = uuid.UUID("6f1d1c2e-7a0b-4c1e-9a57-3c6b1f0e2d41")


class ExportError(ValueError):
    """An export cannot be written as asked (message names the path and the reason)."""


# -- atomic files -------------------------------------------------------------------------
def _fsync(fh: IO) -> None:
    """Flush Python's and the OS's buffers of ``fh`` to disk (a hook the tests stall)."""
    fh.flush()
    os.fsync(fh.fileno())


def atomic_write(path: str | Path, write: Callable[[IO[str]], None], *,
                 newline: str | None = None) -> Path:
    """Write a text file through ``write(fh)`` so that readers see the old file or the new
    one, never a part: temporary file beside it, fsync, ``os.replace``, fsync of the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as fh:
            write(fh)
            _fsync(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return path
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
    return path


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -- corrected COCO Camera Traps ----------------------------------------------------------
_STREAMED = ("images", "annotations")


def _get(obj: object, key: str) -> str | None:
    """An image id as ``data.cct`` reads it (``str`` of any non-null value)."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if value is None or isinstance(value, str) else str(value)


def _batch(raw: bytes) -> list:
    """Array elements as the standard ``json`` reads them (a bare NaN stays float NaN)."""
    return json.loads(b"[" + raw + b"]")


@dataclass
class _Found:
    """What the first pass over a COCO-CT file keeps: its members other than the two big
    arrays, and the records of the images to correct."""
    members: dict = field(default_factory=dict)
    images: dict[str, dict] = field(default_factory=dict)
    annotations: dict[str, list[dict]] = field(default_factory=dict)


def _first_pass(src: Path, wanted: dict, chunk_bytes: int) -> _Found:
    found = _Found()
    for key, kind, (items, raw) in iter_members(src, stream=_STREAMED, raw=True,
                                                chunk_bytes=chunk_bytes):
        if kind == "value":
            found.members[key] = json.loads(raw)
        elif kind == "start":
            continue
        elif key == "images" and any(_get(i, "id") in wanted for i in items):
            found.images.update((_get(i, "id"), i) for i in _batch(raw)
                                if _get(i, "id") in wanted)
        elif key == "annotations" and any(_get(a, "image_id") in wanted for a in items):
            for ann in _batch(raw):
                if _get(ann, "image_id") in wanted:
                    found.annotations.setdefault(_get(ann, "image_id"), []).append(ann)
    return found


def _categories_for(cats: list[dict], fixes: dict, categories: pd.DataFrame | None
                    ) -> list[dict]:
    """The file's category list, extended by the corrected classes it lacks."""
    have = {c["name"] for c in cats}
    needed = {c for r in fixes.values() for c in r.labels if c not in have}
    if not needed:
        return cats
    known = {} if categories is None else dict(zip(categories["name"],
                                                   categories["category_id"]))
    missing = sorted(needed - set(known))
    if missing:
        raise ExportError(f"corrected classes {missing} are not categories of the dataset")
    return cats + [{"id": int(known[n]), "name": n} for n in sorted(needed, key=known.get)]


def _replacement(image_id: str, fix, old: list[dict], image: dict, ids: dict[str, int]
                 ) -> list[dict]:
    """One annotation per corrected class of ``image_id``, in the decided order."""
    template = old[0] if old else None
    out = []
    for name in fix.labels:
        same = next((a for a in old if a.get("category_id") == ids[name]), None)
        if same is not None:
            ann = dict(same)
        else:
            ann = {k: float("nan") for k in (template or {})}
            ann.update({k: image[k] for k in CONTEXT_FIELDS if k in image})
            ann.update({k: template[k] for k in CONTEXT_FIELDS if template and k in template})
            ann["id"] = str(uuid.uuid5(_NAMESPACE, f"{image_id}|{name}|{fix.decision_id}"))
            ann["image_id"] = image_id
            ann["category_id"] = ids[name]
        ann["sequence_level_annotation"] = fix.scope == "capture"
        out.append(ann)
    return out


def write_corrected_cct(src: str | Path, fh: IO[str], effective: pd.DataFrame, *,
                        categories: pd.DataFrame | None = None, info: dict | None = None,
                        chunk_bytes: int = CHUNK_BYTES) -> int:
    """Write COCO-CT file ``src`` to ``fh`` with corrected label sets; return how many of its
    images were corrected.

    ``effective`` is ``DecisionStore.effective(dataset)``: ``image_id``, ``labels``, ``scope``,
    ``decision_id``. A corrected image's annotations are replaced, in place of its first one,
    by one annotation per corrected class in the decided order (at the end of the list for an
    image that had none); ``sequence_level_annotation`` is true for a capture-level decision
    and false for a frame-level one. An existing annotation of the same class keeps its fields
    (count, behaviour); a new class gets the capture fields of the image's first annotation
    and NaN elsewhere. ``categories`` (``category_id``, ``name``) supplies classes this file's
    list lacks; ``info`` entries are merged into the file's ``info``.

    ``src`` is streamed twice (``chunk_bytes`` at a time), first for the records of the
    corrected images, then to write, so memory stays near one read batch whatever the file's
    size (the all-seasons Snapshot Serengeti file is 5.2 GB). Batches of images and
    annotations without a corrected image, and top-level members other than ``categories``
    and ``info``, are copied byte for byte; bare ``NaN`` tokens stay bare ``NaN``, as in the
    published files.
    """
    src = Path(src)
    wanted = {r.image_id: r for r in effective.itertuples(index=False)}
    found = _first_pass(src, wanted, chunk_bytes)
    fixes = {i: r for i, r in wanted.items() if i in found.images}
    cats = _categories_for(list(found.members.get("categories") or []), fixes, categories)
    ids = {c["name"]: c["id"] for c in cats}
    members = {"categories": cats}
    if info is not None:
        old = found.members.get("info")
        members["info"] = (old if isinstance(old, dict) else {}) | info
    done: set[str] = set()

    def replaced(image_id: str) -> list[dict]:
        done.add(image_id)
        return _replacement(image_id, fixes[image_id], found.annotations.get(image_id, []),
                            found.images[image_id], ids)

    def corrected(batch: list) -> Iterator[dict]:
        for ann in batch:
            image_id = _get(ann, "image_id")
            if image_id not in fixes:
                yield ann
            elif image_id not in done:  # an image's first annotation: its replacement
                yield from replaced(image_id)

    array, sep, first = None, "", True  # the open array, the separator before its next item

    def close_array() -> None:
        nonlocal array
        if array == "annotations":  # corrected images that had no annotation
            extra = [a for i in fixes if i not in done for a in replaced(i)]
            if extra:
                fh.write(sep + ",".join(json.dumps(a) for a in extra))
        if array is not None:
            fh.write("]")
        array = None

    fh.write("{")
    for key, kind, (items, raw) in iter_members(src, stream=_STREAMED, raw=True,
                                                chunk_bytes=chunk_bytes):
        if kind == "items":
            if key == "annotations" and any(_get(a, "image_id") in fixes for a in items):
                text = ",".join(json.dumps(a) for a in corrected(_batch(raw)))
            else:
                text = raw.decode("utf-8")
            if text:
                fh.write(sep + text)
                sep = ","
            continue
        close_array()
        fh.write(("" if first else ",") + json.dumps(key) + ":")
        first = False
        if kind == "start":
            fh.write("[")
            array, sep = key, ""
        else:
            fh.write(json.dumps(members.pop(key)) if key in members else raw.decode("utf-8"))
    close_array()
    for key, value in members.items():  # info, when the file has none
        fh.write(("" if first else ",") + json.dumps(key) + ":" + json.dumps(value))
        first = False
    fh.write("}\n")
    return len(fixes)


def _coco_targets(sources: Sequence[Path], out: Path) -> list[Path]:
    """One output per input: ``out`` itself when it ends in .json (one input only), else a
    folder holding each input under its own file name."""
    if out.suffix.lower() == ".json":
        if len(sources) != 1:
            raise ExportError(f"--out {out}: {len(sources)} input files give {len(sources)} "
                              "outputs; pass a folder instead of a .json file")
        targets = [out]
    else:
        names = [s.name for s in sources]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ExportError(f"input files share the name(s) {dup}; export them separately")
        targets = [out / n for n in names]
    for src, dst in zip(sources, targets):
        if dst.resolve() == src.resolve():
            raise ExportError(f"--out {dst}: refusing to overwrite the input file")
    return targets


def export_coco(dataset: "Dataset", store: DecisionStore, out: str | Path) -> list[Path]:
    """Write the corrected COCO Camera Traps JSON (one file per input file); return paths."""
    from tqdm import tqdm

    sources = [Path(s["path"]) for s in dataset.sources]
    targets = _coco_targets(sources, Path(out))
    effective = store.effective(dataset)
    written = []
    for src, dst in tqdm(list(zip(sources, targets)), desc="export coco", unit="file",
                         leave=False, disable=None):
        stamp = {"source": src.name, "decisions_db": str(store.path), "exported_at": _now()}
        counts: list[int] = []

        def write(fh: IO[str], src: Path = src, stamp: dict = stamp) -> None:
            try:
                n = write_corrected_cct(src, fh, effective, categories=dataset.categories,
                                        info={"traplens_corrections": stamp})
            except DatasetError as exc:  # changed or unreadable since the dataset was loaded
                raise ExportError(str(exc)) from None
            counts.append(n)

        written.append(atomic_write(dst, write))
        log.info("%s: %d corrected images -> %s", src.name, counts[0], dst)
    return written


# -- CSV of decisions ---------------------------------------------------------------------
def decisions_csv_frame(store: DecisionStore) -> pd.DataFrame:
    """The decisions table as it is written to CSV (labels comma-joined, ts ISO UTC)."""
    df = store.decisions()
    for col in ("labels_before", "labels_after"):
        df[col] = [",".join(v) for v in df[col]]
    df["ts"] = [t.isoformat(timespec="microseconds") for t in df["ts"]]
    return df[COLUMNS]


def export_csv(store: DecisionStore, out: str | Path) -> Path:
    """Write every decision (the append-only table, oldest first) to one CSV file."""
    out = Path(out)
    if out.is_dir():
        out = out / "decisions.csv"
    df = decisions_csv_frame(store)
    path = atomic_write(out, lambda fh: df.to_csv(fh, index=False), newline="")
    log.info("%d decisions -> %s", len(df), path)
    return path


# -- Camtrap DP ---------------------------------------------------------------------------
def deployment_ids(seq_ids: pd.Series, locations: pd.Series) -> pd.Series:
    """Snapshot Serengeti seq ids are ``season#site#roll#capture``: the deployment is the
    camera's roll, ``season#site#roll``. Without '#', fall back to the location."""
    seq = seq_ids.astype("string")
    parts = seq.str.rsplit("#", n=1)
    head = parts.str[0].where(seq.str.count("#") >= 2)
    return head.fillna(locations.astype("string")).fillna("unknown")


def _check_offset(utc_offset: str) -> None:
    if not re.fullmatch(r"Z|[+-](0\d|1[0-4]):[0-5]\d", utc_offset):
        raise ExportError(f"--utc-offset {utc_offset!r}: expected Z or +HH:MM / -HH:MM")


def _camera_time(when: pd.Series, utc_offset: str) -> pd.Series:
    """Camera local times as Camtrap DP datetimes (``2010-07-01T06:00:01+03:00``); '' for
    unknown times."""
    text = when.dt.strftime("%Y-%m-%dT%H:%M:%S").fillna("")
    return text.where(text == "", text + utc_offset)


def observations(dataset: "Dataset", store: DecisionStore, *,
                 utc_offset: str = "+03:00") -> pd.DataFrame:
    """Camtrap DP observations at image (media) level, one per class of each image.

    Corrected images carry the curator (``classifiedBy``) and decision time
    (``classificationTimestamp``, UTC, whole seconds); the others keep the dataset's labels,
    whose classifier the source files do not record. Event times are the camera's local time
    with ``utc_offset`` (Snapshot Serengeti: East Africa Time, +03:00).
    """
    _check_offset(utc_offset)
    eff = store.effective(dataset)
    corrected = set(eff["image_id"])
    labels = dataset.labels
    orig = labels.loc[~labels["image_id"].isin(corrected), ["image_id", "class", "rank"]]
    orig = orig.assign(**{"class": orig["class"].astype(str), "classifiedBy": "",
                          "classificationTimestamp": "", "observationComments": ""})
    fixed = eff.assign(rank=[list(range(len(v))) for v in eff["labels"]]).explode(
        ["labels", "rank"]).rename(columns={"labels": "class"})
    fixed = fixed.assign(
        classifiedBy=fixed["curator"],
        classificationTimestamp=pd.to_datetime(fixed["ts"], utc=True).dt.strftime(
            "%Y-%m-%dT%H:%M:%SZ"),
        observationComments=[f"TrapLens {s}-level decision {d}" for s, d in
                             zip(fixed["scope"], fixed["decision_id"])])
    cols = ["image_id", "class", "rank", "classifiedBy", "classificationTimestamp",
            "observationComments"]
    obs = pd.concat([orig[cols], fixed[cols]], ignore_index=True)
    images = dataset.images[["image_id", "seq_id", "location", "datetime"]]
    obs = obs.merge(images, on="image_id", how="left", validate="many_to_one")
    order = pd.Series(range(len(images)), index=images["image_id"])
    obs = obs.assign(_o=obs["image_id"].map(order)).sort_values(["_o", "rank"], kind="stable")
    when = _camera_time(obs["datetime"], utc_offset)
    kind = obs["class"].map(OBSERVATION_TYPES).fillna("animal")
    return pd.DataFrame({
        "observationID": obs["image_id"].astype(str) + "#" + obs["rank"].astype(str),
        "deploymentID": deployment_ids(obs["seq_id"], obs["location"]).to_numpy(),
        "mediaID": obs["image_id"].to_numpy(),
        "eventID": obs["seq_id"].astype(str).to_numpy(),
        "eventStart": when.to_numpy(),
        "eventEnd": when.to_numpy(),
        "observationLevel": "media",
        "observationType": kind.to_numpy(),
        "scientificName": obs["class"].where(kind == "animal", "").to_numpy(),
        "classificationMethod": "human",
        "classifiedBy": obs["classifiedBy"].to_numpy(),
        "classificationTimestamp": obs["classificationTimestamp"].to_numpy(),
        "observationComments": obs["observationComments"].to_numpy(),
    })[OBSERVATION_FIELDS]


def media(dataset: "Dataset", *, utc_offset: str = "+03:00") -> pd.DataFrame:
    """Camtrap DP media: one row per image, in dataset order (``filePath`` = the dataset's
    ``file_name``, relative to the images folder; the files are not published with it)."""
    _check_offset(utc_offset)
    images = dataset.images
    files = images["file_name"].astype(str)
    suffix = files.str.extract(r"\.([A-Za-z0-9]+)$", expand=False).str.lower()
    return pd.DataFrame({
        "mediaID": images["image_id"].astype(str).to_numpy(),
        "deploymentID": deployment_ids(images["seq_id"], images["location"]).to_numpy(),
        "captureMethod": "activityDetection",
        "timestamp": _camera_time(images["datetime"], utc_offset).to_numpy(),
        "filePath": files.to_numpy(),
        "filePublic": "false",
        "fileName": files.str.rsplit("/", n=1).str[-1].to_numpy(),
        "fileMediatype": ("image/" + suffix.replace({"jpg": "jpeg"}).fillna("jpeg")).to_numpy(),
    })[MEDIA_FIELDS]


def read_locations(path: str | Path) -> pd.DataFrame:
    """A CSV of camera sites: ``location``, ``latitude``, ``longitude`` (WGS84 decimal
    degrees) and optionally ``coordinateUncertainty`` (metres, a whole number >= 1).

    Raises
    ------
    ExportError
        Naming the file, and the row, field and value at fault.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise ExportError(f"{path}: file not found") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: not a readable CSV ({exc})") from None
    lacking = [c for c in ("location", "latitude", "longitude") if c not in table.columns]
    if lacking:
        raise ExportError(f"{path}: missing column(s) {lacking}; has "
                          f"{list(table.columns)}")
    table["location"] = table["location"].str.strip()
    limits = {"latitude": (-90, 90), "longitude": (-180, 180),
              "coordinateUncertainty": (1, float("inf"))}
    for col, (lo, hi) in limits.items():
        if col not in table.columns:
            continue
        text = table[col].str.strip()
        value = pd.to_numeric(text, errors="coerce")
        bad = ~value.between(lo, hi)
        if col == "coordinateUncertainty":  # optional, in whole metres
            bad = (bad | (value % 1 != 0)) & (text != "")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ExportError(f"{path}: row {row + 2}, field {col!r}: "
                              f"{table[col].iat[row]!r} is not a number in [{lo}, {hi}]"
                              + (" (whole metres)" if col == "coordinateUncertainty" else ""))
        table[col] = value
    dup = table["location"][table["location"].duplicated()]
    if len(dup):
        raise ExportError(f"{path}: location {dup.iat[0]!r} is listed twice")
    return table.set_index("location")


def deployments(dataset: "Dataset", locations: pd.DataFrame, *,
                utc_offset: str = "+03:00") -> pd.DataFrame:
    """Camtrap DP deployments: one per camera roll (see :func:`deployment_ids`), spanning
    its first and last image; coordinates from ``locations`` (:func:`read_locations`)."""
    _check_offset(utc_offset)
    images = dataset.images
    frame = pd.DataFrame({"deploymentID": deployment_ids(images["seq_id"], images["location"]),
                          "location": images["location"].astype("string"),
                          "datetime": images["datetime"]})
    dep = frame.groupby("deploymentID", sort=False).agg(
        location=("location", "first"), start=("datetime", "min"), end=("datetime", "max"))
    known = dep["location"].isin(locations.index)
    if not known.all():
        bad = dep.loc[~known, "location"]
        raise ExportError(f"no coordinates for {len(bad)} deployment(s), e.g. "
                          f"{bad.index[0]!r} at location {bad.iat[0]!r}; add the location's "
                          "row to the sites CSV")
    where = locations.loc[dep["location"]]
    uncertainty = (where["coordinateUncertainty"] if "coordinateUncertainty" in where
                   else pd.Series(np.nan, index=where.index))
    return pd.DataFrame({
        "deploymentID": dep.index.astype(str),
        "locationID": dep["location"].to_numpy(),
        "locationName": dep["location"].to_numpy(),
        "latitude": where["latitude"].to_numpy(),
        "longitude": where["longitude"].to_numpy(),
        "coordinateUncertainty": uncertainty.astype("Int64").to_numpy(),
        "deploymentStart": _camera_time(dep["start"], utc_offset).to_numpy(),
        "deploymentEnd": _camera_time(dep["end"], utc_offset).to_numpy(),
    })[DEPLOYMENT_FIELDS]


def _resource(name: str) -> dict:
    return {"name": name, "path": f"{name}.csv", "profile": "tabular-data-resource",
            "format": "csv", "mediatype": "text/csv", "encoding": "utf-8",
            "schema": f"{CAMTRAP_DP}/{name}-table-schema.json"}


def _datapackage(dataset: "Dataset", store: DecisionStore, tables: dict[str, pd.DataFrame],
                 *, sampling_design: str) -> dict:
    obs = tables["observations"]
    curators = sorted(c for c in obs["classifiedBy"].unique() if c)
    package = {
        "name": "traplens-export",
        "title": "A curated camera-trap dataset (TrapLens export)",
        "created": _now(),
        "contributors": [{"title": c, "role": "contributor"} for c in curators],
        "sources": [{"title": Path(s["path"]).name, "sha256": s.get("sha256")}
                    for s in dataset.sources],
        "taxonomic": [{"scientificName": c} for c in dataset.classes
                      if c not in OBSERVATION_TYPES],
        "resources": [_resource(name) for name in tables],
        "traplens": {"decisions_db": str(store.path),
                     **{f"n_{name}": len(table) for name, table in tables.items()}},
    }
    if "deployments" not in tables:
        package["description"] = (
            "Image-level Camtrap DP 1.0 observations: the dataset's labels with the curators' "
            "corrections applied. The observations table only: the source files hold no "
            "coordinates, so deployments and media need a locations CSV (--locations).")
        return package
    dep = tables["deployments"]
    lat, lon = dep["latitude"].astype(float), dep["longitude"].astype(float)
    x0, x1, y0, y1 = lon.min(), lon.max(), lat.min(), lat.max()
    dates = pd.to_datetime(dataset.images["datetime"]).dropna()
    return {
        "profile": f"{CAMTRAP_DP}/camtrap-dp-profile.json",
        **package,
        "description": "Camtrap DP 1.0 package: deployments (camera rolls), media (images) and "
                       "image-level observations, with the curators' corrections applied.",
        "project": {"title": package["title"], "samplingDesign": sampling_design,
                    "captureMethod": ["activityDetection"], "individualAnimals": False,
                    "observationLevel": ["media"]},
        "spatial": {"type": "Polygon", "bbox": [x0, y0, x1, y1],
                    "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]},
        "temporal": {"start": dates.min().strftime("%Y-%m-%d") if len(dates) else "",
                     "end": dates.max().strftime("%Y-%m-%d") if len(dates) else ""},
    }


def export_camtrapdp(dataset: "Dataset", store: DecisionStore, out: str | Path, *,
                     utc_offset: str = "+03:00", locations: str | Path | None = None,
                     sampling_design: str = "systematicRandom") -> list[Path]:
    """Write a Camtrap DP 1.0 folder ``out``: with ``locations`` (:func:`read_locations`),
    ``deployments.csv``, ``media.csv``, ``observations.csv`` and ``datapackage.json``, a
    complete package; without, the observations table and its descriptor only."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out}: Camtrap DP is a folder, and this is a file")
    if sampling_design not in SAMPLING_DESIGNS:
        raise ExportError(f"--sampling-design {sampling_design!r}: expected one of "
                          f"{SAMPLING_DESIGNS}")
    tables = {}
    if locations is not None:
        tables["deployments"] = deployments(dataset, read_locations(locations),
                                            utc_offset=utc_offset)
        tables["media"] = media(dataset, utc_offset=utc_offset)
    tables["observations"] = observations(dataset, store, utc_offset=utc_offset)
    untimed = int((tables["observations"]["eventStart"] == "").sum())
    if untimed:
        log.warning("%d observation(s) of images without a camera time have empty times "
                    "(required by Camtrap DP)", untimed)
    package = _datapackage(dataset, store, tables, sampling_design=sampling_design)
    # Tables first: a crash before the descriptor leaves new tables beside an older
    # descriptor, each file complete and readable.
    paths = [atomic_write(out / f"{name}.csv", lambda fh, t=table: t.to_csv(fh, index=False),
                          newline="") for name, table in tables.items()]
    paths.append(atomic_write(out / "datapackage.json",
                              lambda fh: json.dump(package, fh, indent=2)))
    log.info("Camtrap DP -> %s: %s", out,
             ", ".join(f"{len(t)} {name}" for name, t in tables.items()))
    return paths


# -- entry points -------------------------------------------------------------------------
def export(dataset: "Dataset", store: DecisionStore, out: str | Path, *, format: str,
           **camtrapdp) -> list[Path]:
    """Write one export (``format`` in FORMATS) and return the files written; ``camtrapdp``
    keywords (``utc_offset``, ``locations``, ``sampling_design``) go to
    :func:`export_camtrapdp`."""
    if format == "coco":
        return export_coco(dataset, store, out)
    if format == "csv":
        return [export_csv(store, out)]
    if format == "camtrapdp":
        return export_camtrapdp(dataset, store, out, **camtrapdp)
    raise ExportError(f"unknown export format {format!r}; expected one of {FORMATS}")


def download_name(dataset: "Dataset", format: str) -> str:
    """File name of :func:`export_bytes`: the file itself, or a zip when it writes several."""
    if format == "csv":
        return "decisions.csv"
    if format == "coco" and len(dataset.sources) == 1:
        return Path(dataset.sources[0]["path"]).name
    return f"traplens-{format}.zip"


def export_bytes(dataset: "Dataset", store: DecisionStore, *, format: str, **camtrapdp
                 ) -> bytes:
    """One :func:`export` as bytes for a download (zipped when it writes several files)."""
    from data.paths import cache_dir

    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        out = Path(tmp) / ("decisions.csv" if format == "csv" else "export")
        paths = export(dataset, store, out, format=format, **camtrapdp)
        if not download_name(dataset, format).endswith(".zip"):
            return paths[0].read_bytes()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in paths:
                zf.write(p, p.name)
        return buf.getvalue()


def _cmd_export(args: argparse.Namespace) -> int:
    from data.cct import load_dataset
    from data.paths import curation_db

    db = Path(args.decisions or curation_db())
    if not db.exists():
        raise ExportError(f"--decisions {db}: no such decisions database")
    store = DecisionStore(db)
    dataset = load_dataset(args.dataset) if args.format != "csv" else None
    extra = ({"utc_offset": args.utc_offset, "locations": args.locations,
              "sampling_design": args.sampling_design} if args.format == "camtrapdp" else {})
    paths = export(dataset, store, args.out, format=args.format, **extra)
    for path in paths:
        print(path)
    if args.format == "camtrapdp" and args.locations is None:
        print("note: observations only; give --locations CSV (location,latitude,longitude) for "
              "a complete Camtrap DP package with deployments and media", file=sys.stderr)
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``export`` to ``python -m data``."""
    p = subparsers.add_parser(
        "export", help="export the curated dataset",
        description="coco: corrected COCO Camera Traps JSON (one file per input; --out is a "
                    ".json file for one input, else a folder); csv: the decisions table; "
                    "camtrapdp: a Camtrap DP 1.0 folder (deployments, media and "
                    "observations with --locations; else observations only).")
    p.add_argument("--dataset", nargs="+", required=True, metavar="JSON")
    p.add_argument("--decisions", metavar="DB",
                   help="SQLite file (default: $TRAPLENS_HOME/curation.sqlite)")
    p.add_argument("--out", required=True, metavar="PATH")
    p.add_argument("--format", choices=FORMATS, required=True)
    p.add_argument("--utc-offset", default="+03:00",
                   help="camera clock's UTC offset for Camtrap DP times (default +03:00, EAT)")
    p.add_argument("--locations", metavar="CSV",
                   help="camtrapdp: camera sites with coordinates, columns location, latitude, "
                        "longitude [, coordinateUncertainty in metres]")
    p.add_argument("--sampling-design", choices=SAMPLING_DESIGNS, default="systematicRandom",
                   help="camtrapdp: the project's sampling design (default systematicRandom, "
                        "Snapshot Serengeti's grid)")
    p.set_defaults(func=_cmd_export)
