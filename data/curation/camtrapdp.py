"""Export: a Camtrap DP 1.0 package (deployments, media, image-level observations).

Written atomically, file by file, through :func:`data.files.atomic_write`.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from data.curation.common import ExportError, now
from data.curation.store import EMPTY_CLASS, DecisionStore
from data.files import atomic_write

if TYPE_CHECKING:
    from data.cct import Dataset

log = logging.getLogger(__name__)

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
        "created": now(),
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
    paths = [atomic_write(out / f"{name}.csv", write=lambda fh, t=table: t.to_csv(fh, index=False),
                          text=True, newline="") for name, table in tables.items()]
    paths.append(atomic_write(out / "datapackage.json", json.dumps(package, indent=2)))
    log.info("Camtrap DP -> %s: %s", out,
             ", ".join(f"{len(t)} {name}" for name, t in tables.items()))
    return paths
