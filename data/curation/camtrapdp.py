"""Export: a Camtrap DP 1.0.2 package (deployments, media, observations, datapackage.json).

Every table has all columns of its Camtrap DP 1.0.2 table schema, in the schema's order (empty
where TrapLens does not know the value). Observations mean what the data means:

- sequence-level labels (Snapshot Serengeti's volunteers label captures) become event-level
  observations: ``eventID`` = the capture, ``eventStart`` / ``eventEnd`` = its first and last
  frame, no ``mediaID``;
- image-level labels (a curator's frame-level decision, or an image-level source annotation)
  become media-level observations of that image, with the same event span;
- a run's predictions (``run=``) become media-level machine observations.

Written atomically, file by file, through :func:`data.files.atomic_write` (the user's umask).
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import pandas as pd

from data.curation.common import ExportError, now
from data.curation.store import EMPTY_CLASS, DecisionStore
from data.files import atomic_write, neutralise_csv_cell

if TYPE_CHECKING:
    from data.cct import Dataset
    from data.runs import Run
    from data.taxonomy import Taxonomy

log = logging.getLogger(__name__)

VERSION = "1.0.2"
CAMTRAP_DP = f"https://raw.githubusercontent.com/tdwg/camtrap-dp/{VERSION}"
# Every column of the Camtrap DP 1.0.2 table schemas, in schema order.
DEPLOYMENT_FIELDS = [
    "deploymentID", "locationID", "locationName", "latitude", "longitude",
    "coordinateUncertainty", "deploymentStart", "deploymentEnd", "setupBy", "cameraID",
    "cameraModel", "cameraDelay", "cameraHeight", "cameraDepth", "cameraTilt", "cameraHeading",
    "detectionDistance", "timestampIssues", "baitUse", "featureType", "habitat",
    "deploymentGroups", "deploymentTags", "deploymentComments"]
MEDIA_FIELDS = ["mediaID", "deploymentID", "captureMethod", "timestamp", "filePath",
                "filePublic", "fileName", "fileMediatype", "exifData", "favorite",
                "mediaComments"]
OBSERVATION_FIELDS = [
    "observationID", "deploymentID", "mediaID", "eventID", "eventStart", "eventEnd",
    "observationLevel", "observationType", "cameraSetupType", "scientificName", "count",
    "lifeStage", "sex", "behavior", "individualID", "individualPositionRadius",
    "individualPositionAngle", "individualSpeed", "bboxX", "bboxY", "bboxWidth", "bboxHeight",
    "classificationMethod", "classifiedBy", "classificationTimestamp",
    "classificationProbability", "observationTags", "observationComments"]
REQUIRED_OBSERVATION_FIELDS = ("observationID", "deploymentID", "eventStart", "eventEnd",
                               "observationLevel", "observationType")
OBSERVATION_TYPES = {EMPTY_CLASS: "blank", "human": "human", "vehicle": "vehicle"}
SAMPLING_DESIGNS = ("simpleRandom", "systematicRandom", "clusteredRandom", "experimental",
                    "targeted", "opportunistic")
#: ``classifiedBy`` of the labels kept from the source (the volunteers' plurality vote).
VOLUNTEERS = "Snapshot Serengeti volunteers (Zooniverse consensus)"
#: The published behaviour fractions (share of volunteers who ticked each one) -> ``behavior``.
BEHAVIOURS = ("standing", "resting", "moving", "interacting")
#: A behaviour (or ``young_present``) is reported when at least this share of volunteers saw it.
BEHAVIOUR_MIN_FRACTION = 0.5
#: Free-text columns: neutralised against spreadsheet formulas (ids and times never are).
TEXT_FIELDS = ("classifiedBy", "observationTags", "observationComments")


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
    text = pd.Series(pd.to_datetime(when).dt.strftime("%Y-%m-%dT%H:%M:%S"),
                     index=when.index).fillna("")
    return text.where(text == "", text + utc_offset)


def _utc(ts: pd.Series) -> pd.Series:
    return pd.to_datetime(ts, utc=True, format="ISO8601").dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_count(text: Any) -> tuple[int | None, str]:
    """A published Snapshot Serengeti count as Camtrap DP ``count`` and a comment.

    A number is itself; a bin keeps its lower bound and names the bin in the comment.

    >>> parse_count("3"), parse_count("11-50"), parse_count("51+"), parse_count(None)
    ((3, ''), (11, 'count bin 11-50'), (51, 'count bin 51+'), (None, ''))
    """
    if text is None or (isinstance(text, float) and np.isnan(text)) or pd.isna(text):
        return None, ""
    text = str(text).strip()
    m = re.match(r"(\d+)", text)
    if not m or int(m.group(1)) < 1:
        return None, f"count {text}" if text else ""
    return int(m.group(1)), "" if m.group(1) == text else f"count bin {text}"


def behaviour(fractions: dict[str, Any] | None) -> tuple[str, bool]:
    """``behavior`` (the behaviours at least half the volunteers ticked, most ticked first,
    ``|``-separated) and whether young were present, from the published fractions.

    >>> behaviour({"standing": 0.25, "moving": 0.75, "resting": 0.5, "young_present": 0.6})
    ('moving|resting', True)
    >>> behaviour(None)
    ('', False)
    """
    if not fractions:
        return "", False
    seen = [(float(fractions[k]), i, k) for i, k in enumerate(BEHAVIOURS)
            if isinstance(fractions.get(k), (int, float)) and not np.isnan(fractions[k])
            and fractions[k] >= BEHAVIOUR_MIN_FRACTION]
    young = fractions.get("young_present")
    young = isinstance(young, (int, float)) and not np.isnan(young) and \
        young >= BEHAVIOUR_MIN_FRACTION
    return "|".join(k for _, _, k in sorted(seen, key=lambda t: (-t[0], t[1]))), bool(young)


class _BehaviourRecord(TypedDict, total=False):
    image_id: Any
    category_id: Any
    standing: Any
    resting: Any
    moving: Any
    interacting: Any
    young_present: Any


def read_behaviour(dataset: "Dataset") -> dict[tuple[str, int], dict]:
    """The published behaviour fractions per (image id, category id), streamed from the
    dataset's source files (the :class:`~data.cct.Dataset` tables do not keep them)."""
    from data.cct import iter_members

    keys = (*BEHAVIOURS, "young_present")
    found: dict[tuple[str, int], dict] = {}
    for source in dataset.sources:
        for key, kind, items in iter_members(Path(source["path"]), stream=("annotations",),
                                             types={"annotations": _BehaviourRecord}):
            if key != "annotations" or kind != "items":
                continue
            for ann in items:
                fr = {k: ann.get(k) for k in keys if isinstance(ann.get(k), (int, float))}
                if fr and ann.get("image_id") is not None:
                    try:
                        found.setdefault((str(ann["image_id"]), int(ann["category_id"])), fr)
                    except (TypeError, ValueError, KeyError):
                        continue
    return found


def _label_facts(dataset: "Dataset", behaviours: dict | None) -> pd.DataFrame:
    """Count and behaviour per original (image, class): ``image_id``, ``seq_id``, ``class``,
    ``count_text``, ``behavior``, ``young``."""
    labels = dataset.labels
    seq = labels["image_id"].map(dataset.images.set_index("image_id")["seq_id"].astype(str))
    fr = [behaviour((behaviours or {}).get((i, int(c))))
          for i, c in zip(labels["image_id"], labels["category_id"])]
    return pd.DataFrame({"image_id": labels["image_id"].to_numpy(), "seq_id": seq.to_numpy(),
                         "class": labels["class"].astype(str).to_numpy(),
                         "count_text": labels["count"].to_numpy(),
                         "behavior": [b for b, _ in fr], "young": [y for _, y in fr]})


def _run_observations(dataset: "Dataset", run: "Run") -> pd.DataFrame:
    """A run's top-1 prediction per dataset image, as label rows."""
    known = dataset.images["image_id"]
    keep = np.isin(run.image_ids, known.to_numpy())
    if not keep.all():
        log.warning("run %s: %d prediction(s) for images the dataset lacks, left out",
                    run.run_id, int((~keep).sum()))
    probs = run.probs[keep]
    top = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)
    model = run.manifest.get("model") or {}
    source = run.manifest.get("source") or {}
    name = (model.get("arch") if isinstance(model, dict) else None) or \
        (source.get("format") if isinstance(source, dict) else None) or "model"
    created = str(run.manifest.get("created_at") or "")
    return pd.DataFrame({
        "image_id": run.image_ids[keep].astype(str),
        "class": np.asarray(run.classes, dtype=object)[top],
        "level": "media", "method": "machine",
        "by": f"{name} (TrapLens run {run.run_id})",
        "when": created, "probability": probs[np.arange(len(top)), top].astype(float),
        "source": f"model:{run.run_id}", "comment": "", "validated": False,
    })


def observations(dataset: "Dataset", store: DecisionStore | None, *,
                 utc_offset: str = "+03:00", run: "Run | None" = None,
                 human: bool = True, behaviours: dict | None = None,
                 taxonomy: "Taxonomy | None" = None) -> pd.DataFrame:
    """Camtrap DP 1.0.2 observations (all schema columns, schema order).

    Labels as they stand after the curators' decisions (:meth:`DecisionStore.effective`):
    sequence-level ones (the source's, or a capture-level decision's) give one event-level row
    per (capture, class); image-level ones (a frame-level decision's, or an image-level source
    annotation) one media-level row per (image, class). Every row of a capture has the
    capture's first and last frame time as ``eventStart`` / ``eventEnd`` (camera time with
    ``utc_offset``). ``run`` adds its top-1 prediction per image as a media-level machine
    observation; ``human=False`` leaves the labels out (the run's alone).

    ``behaviours`` is :func:`read_behaviour`'s answer (None: no behaviour); ``taxonomy``
    defaults to :func:`data.taxonomy.load_taxonomy`.
    """
    from data.taxonomy import load_taxonomy

    _check_offset(utc_offset)
    tax = taxonomy or load_taxonomy()
    images = dataset.images[["image_id", "seq_id", "location", "datetime"]].copy()
    images["seq_id"] = images["seq_id"].astype("string").fillna(images["image_id"]).astype(str)
    facts = _label_facts(dataset, behaviours)
    parts = []
    if human:
        eff = store.effective(dataset) if store is not None else pd.DataFrame(
            columns=["image_id", "labels", "scope", "decision_id", "curator", "ts"])
        reasons = (store.decisions().set_index("id")["reason"] if store is not None
                   else pd.Series(dtype=object))
        orig = facts.loc[~facts["image_id"].isin(set(eff["image_id"]))]
        seq_level = dataset.labels.loc[orig.index, "sequence_level"].to_numpy(bool)
        parts.append(pd.DataFrame({
            "image_id": orig["image_id"], "class": orig["class"],
            "level": np.where(seq_level, "event", "media"), "method": "human",
            "by": VOLUNTEERS, "when": "", "probability": np.nan, "source": "volunteers",
            "comment": "", "validated": False}))
        fixed = eff.assign(rank=[list(range(len(v))) for v in eff["labels"]]).explode(
            ["labels", "rank"]).dropna(subset=["labels"])
        parts.append(pd.DataFrame({
            "image_id": fixed["image_id"], "class": fixed["labels"].astype(str),
            "level": np.where(fixed["scope"] == "capture", "event", "media"),
            "method": "human", "by": fixed["curator"], "when": fixed["ts"],
            "probability": np.nan, "source": "curated",
            "comment": [f"TrapLens {s}-level decision {d}" + (f": {reasons.get(d)}"
                                                            if reasons.get(d) else "")
                        for s, d in zip(fixed["scope"], fixed["decision_id"])],
            "validated": True}))
    if run is not None:
        parts.append(_run_observations(dataset, run))
    if not parts:
        raise ExportError("no observations asked for: the labels (human=True) or a run")
    rows = pd.concat(parts, ignore_index=True)
    rows = rows.merge(images, on="image_id", how="left", validate="many_to_one")
    order = pd.Series(np.arange(len(images)), index=images["image_id"])
    rows["_o"] = rows["image_id"].map(order)
    # event rows: one per (capture, class, who); the first frame's row stands for the capture
    event = rows["level"] == "event"
    rows["_key"] = np.where(event, rows["seq_id"], rows["image_id"])
    rows = rows.sort_values(["_o"], kind="stable").drop_duplicates(
        ["_key", "class", "level", "source", "by"])
    # count / behaviour: the (image, class) annotation, else the capture's first one
    by_image = facts.drop_duplicates(["image_id", "class"]).set_index(["image_id", "class"])
    by_seq = facts.dropna(subset=["count_text"]).drop_duplicates(["seq_id", "class"]).set_index(
        ["seq_id", "class"])
    pick = pd.MultiIndex.from_arrays([rows["image_id"], rows["class"]])
    pick_seq = pd.MultiIndex.from_arrays([rows["seq_id"], rows["class"]])
    count_text = by_image["count_text"].reindex(pick).to_numpy(object)
    fallback = by_seq["count_text"].reindex(pick_seq).to_numpy(object)
    count_text = np.where(pd.isna(count_text), fallback, count_text)
    behav = by_image["behavior"].reindex(pick).fillna("").to_numpy(object)
    young = by_image["young"].reindex(pick).fillna(False).to_numpy(bool)
    machine = (rows["method"] == "machine").to_numpy()
    counts = [parse_count(None if m else c) for c, m in zip(count_text, machine)]
    behav = np.where(machine, "", behav)
    young = young & ~machine
    # the event span: the capture's first and last frame
    span = images.groupby("seq_id", sort=False)["datetime"].agg(["min", "max"])
    start = _camera_time(rows["seq_id"].map(span["min"]), utc_offset)
    end = _camera_time(rows["seq_id"].map(span["max"]), utc_offset)
    cls = rows["class"].astype(str)
    taxa = {c: tax.row(c) for c in cls.unique()}  # look-ups once per class, not per row
    kind = cls.map({c: OBSERVATION_TYPES.get(c, "blank" if t.kind == "non_taxon" else "animal")
                    for c, t in taxa.items()})
    animal = kind == "animal"
    sci = cls.map({c: t.scientific_name or c for c, t in taxa.items()}).where(animal, "")
    sex = cls.map({c: t.sex if t.sex in ("female", "male") else "" for c, t in taxa.items()})
    life = cls.map({c: t.life_stage for c, t in taxa.items()})
    tags = [("|".join(filter(None, [f"labelSource:{s.split(':')[0]}",
                                    f"validated:{'true' if v else 'false'}",
                                    "youngPresent:true" if y else ""])))
            for s, v, y in zip(rows["source"], rows["validated"], young)]
    comments = ["; ".join(filter(None, [c, k, "" if kd == "animal" else
                                        (cl if cl not in OBSERVATION_TYPES else "")]))
                for c, (_, k), kd, cl in zip(rows["comment"], counts, kind, cls)]
    oid = np.where(rows["level"] == "event", rows["seq_id"], rows["image_id"]) + "#" + cls
    oid = np.where(machine, oid + "#" + rows["source"].str.removeprefix("model:"), oid)
    when = pd.Series("", index=rows.index)
    timed = rows["when"].astype(str) != ""
    if timed.any():
        when[timed] = _utc(rows.loc[timed, "when"].astype(str))
    out = pd.DataFrame({
        "observationID": oid,
        "deploymentID": deployment_ids(rows["seq_id"], rows["location"]).to_numpy(),
        "mediaID": rows["image_id"].where(rows["level"] == "media", "").to_numpy(),
        "eventID": rows["seq_id"].to_numpy(),
        "eventStart": start.to_numpy(), "eventEnd": end.to_numpy(),
        "observationLevel": rows["level"].to_numpy(),
        "observationType": kind.to_numpy(),
        "scientificName": sci.to_numpy(),
        "count": pd.array([c if kd == "animal" else None for (c, _), kd in zip(counts, kind)],
                          dtype="Int64"),
        "lifeStage": life.to_numpy(), "sex": sex.to_numpy(), "behavior": behav,
        "classificationMethod": rows["method"].to_numpy(),
        "classifiedBy": rows["by"].to_numpy(),
        "classificationTimestamp": when.to_numpy(),
        "classificationProbability": rows["probability"].round(6).to_numpy(),
        "observationTags": tags,
        "observationComments": comments,
    }).reindex(columns=OBSERVATION_FIELDS)
    for col in OBSERVATION_FIELDS:
        if col not in ("count", "classificationProbability"):
            out[col] = out[col].astype(object).where(out[col].notna(), "")
    for col in TEXT_FIELDS:
        out[col] = out[col].map(neutralise_csv_cell)
    return out.reset_index(drop=True)


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
    }).reindex(columns=MEDIA_FIELDS, fill_value="")


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


def deployments(dataset: "Dataset", locations: pd.DataFrame | None, *,
                utc_offset: str = "+03:00") -> pd.DataFrame:
    """Camtrap DP deployments: one per camera roll (see :func:`deployment_ids`), spanning
    its first and last image; coordinates from ``locations`` (:func:`read_locations`), left
    empty without it (required by Camtrap DP: the package is then incomplete)."""
    _check_offset(utc_offset)
    images = dataset.images
    frame = pd.DataFrame({"deploymentID": deployment_ids(images["seq_id"], images["location"]),
                          "location": images["location"].astype("string"),
                          "season": images["season"].astype("string"),
                          "datetime": images["datetime"]})
    dep = frame.groupby("deploymentID", sort=False).agg(
        location=("location", "first"), season=("season", "first"),
        start=("datetime", "min"), end=("datetime", "max"))
    if locations is not None:
        known = dep["location"].isin(locations.index)
        if not known.all():
            bad = dep.loc[~known, "location"]
            raise ExportError(f"no coordinates for {len(bad)} deployment(s), e.g. "
                              f"{bad.index[0]!r} at location {bad.iat[0]!r}; add the "
                              "location's row to the sites CSV")
        where = locations.loc[dep["location"]]
        lat, lon = where["latitude"].to_numpy(), where["longitude"].to_numpy()
        uncertainty = (where["coordinateUncertainty"] if "coordinateUncertainty" in where
                       else pd.Series(np.nan, index=where.index)).astype("Int64").to_numpy()
    else:
        lat = lon = uncertainty = pd.array([None] * len(dep), dtype="Int64")
    return pd.DataFrame({
        "deploymentID": dep.index.astype(str),
        "locationID": dep["location"].to_numpy(),
        "locationName": dep["location"].to_numpy(),
        "latitude": lat, "longitude": lon, "coordinateUncertainty": uncertainty,
        "deploymentStart": _camera_time(dep["start"], utc_offset).to_numpy(),
        "deploymentEnd": _camera_time(dep["end"], utc_offset).to_numpy(),
        "deploymentGroups": ("season:" + dep["season"].fillna("unknown")).to_numpy(),
    }).reindex(columns=DEPLOYMENT_FIELDS)


def _resource(name: str) -> dict:
    return {"name": name, "path": f"{name}.csv", "profile": "tabular-data-resource",
            "format": "csv", "mediatype": "text/csv", "encoding": "utf-8",
            "schema": f"{CAMTRAP_DP}/{name}-table-schema.json"}


def _taxonomic(names: Sequence[str], dataset_classes: Sequence[str],
               taxonomy: "Taxonomy") -> list[dict]:
    """Package ``taxonomic``: one entry per scientific name in the observations."""
    rows = {}
    for cat in dataset_classes:
        row = taxonomy.row(cat)
        rows.setdefault(row.scientific_name or cat, row)
    out = []
    for name in names:
        row = rows.get(name)
        entry: dict[str, Any] = {"scientificName": name}
        if row is not None and row.known and row.taxon_rank:
            entry["taxonRank"] = row.taxon_rank
            entry["kingdom"] = "Animalia"
            for rank in ("phylum", "class", "order", "family", "genus"):
                if row.at(rank):
                    entry[rank] = row.at(rank)
            vernacular = row.vernacular_name.split(" (")[0]
            entry["vernacularNames"] = {"eng": vernacular}
        out.append(entry)
    return out


def _datapackage(dataset: "Dataset", tables: dict[str, pd.DataFrame], *, sampling_design: str,
                 taxonomy: "Taxonomy", store: DecisionStore | None, run: "Run | None",
                 complete: bool) -> dict:
    obs, dep = tables["observations"], tables["deployments"]
    curators = sorted(set(obs.loc[obs["observationTags"].str.contains("labelSource:curated"),
                                  "classifiedBy"]))
    contributors = [{"title": c, "role": "contributor"} for c in curators]
    if (obs["classifiedBy"] == VOLUNTEERS).any():
        contributors.append({"title": VOLUNTEERS, "role": "contributor",
                             "path": "https://www.zooniverse.org/projects/zooniverse/"
                                     "snapshot-serengeti"})
    names = list(dict.fromkeys(n for n in obs["scientificName"] if n))
    dates = pd.to_datetime(dataset.images["datetime"]).dropna()
    levels = [lv for lv in ("event", "media") if (obs["observationLevel"] == lv).any()]
    package: dict[str, Any] = {
        "resources": [_resource(name) for name in ("deployments", "media", "observations")],
        "profile": f"{CAMTRAP_DP}/camtrap-dp-profile.json",
        "name": "traplens-export",
        "created": now(),
        "title": "A curated camera-trap dataset (TrapLens export)",
        "contributors": contributors or [{"title": "TrapLens", "role": "publisher"}],
        "description": (
            "Camtrap DP 1.0.2 package: deployments (camera rolls), media (images) and "
            "observations. Sequence-level labels are event-level observations, frame-level "
            "corrections media-level ones" + (", and the model's predictions media-level "
                                              "machine observations" if run else "") + "."),
        "sources": [{"title": Path(s["path"]).name, "sha256": s.get("sha256")}
                    for s in dataset.sources],
        "project": {"title": "Snapshot Serengeti", "samplingDesign": sampling_design,
                    "captureMethod": ["activityDetection"], "individualAnimals": False,
                    "observationLevel": levels or ["media"]},
        "temporal": {"start": dates.min().strftime("%Y-%m-%d") if len(dates) else "",
                     "end": dates.max().strftime("%Y-%m-%d") if len(dates) else ""},
        "taxonomic": _taxonomic(names, dataset.classes, taxonomy),
        # file names and ids only: never a local absolute path
        "traplens": {"decisions": Path(store.path).name if store is not None else None,
                     "run": run.run_id if run is not None else None,
                     **{f"n_{name}": len(table) for name, table in tables.items()}},
    }
    if complete:
        lat, lon = dep["latitude"].astype(float), dep["longitude"].astype(float)
        x0, x1, y0, y1 = lon.min(), lon.max(), lat.min(), lat.max()
        package["spatial"] = {
            "type": "Polygon", "bbox": [x0, y0, x1, y1],
            "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}
    else:
        package["description"] += (" INCOMPLETE: " + MISSING_WITHOUT_LOCATIONS)
    return package


#: What a package lacks without ``--locations`` (the source files hold no coordinates).
MISSING_WITHOUT_LOCATIONS = (
    "the source files hold no coordinates, so deployments.csv leaves latitude and longitude "
    "(required) empty and datapackage.json has no spatial coverage (required); export again "
    "with --locations SITES.csv (columns location, latitude, longitude) for a complete package")


def export_camtrapdp(dataset: "Dataset", store: DecisionStore | None, out: str | Path, *,
                     utc_offset: str = "+03:00", locations: str | Path | None = None,
                     sampling_design: str = "systematicRandom", run: "Run | str | Path | None"
                     = None, human: bool = True) -> list[Path]:
    """Write a Camtrap DP 1.0.2 folder ``out``: ``deployments.csv``, ``media.csv``,
    ``observations.csv`` and ``datapackage.json``.

    With ``locations`` (:func:`read_locations`) the package is complete; without, the
    deployments' coordinates and the package's ``spatial`` are missing (logged as a warning;
    see :data:`MISSING_WITHOUT_LOCATIONS`). ``run`` (a run folder or a loaded
    :class:`~data.runs.Run`) adds its predictions as machine observations; ``human=False``
    writes them alone.
    """
    from data.runs import load_run
    from data.taxonomy import load_taxonomy

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out}: Camtrap DP is a folder, and this is a file")
    if sampling_design not in SAMPLING_DESIGNS:
        raise ExportError(f"--sampling-design {sampling_design!r}: expected one of "
                          f"{SAMPLING_DESIGNS}")
    if not human and run is None:
        raise ExportError("a Camtrap DP export without the labels needs a run (--run)")
    if run is not None and not hasattr(run, "probs"):
        run = load_run(run)
    taxonomy = load_taxonomy()
    where = read_locations(locations) if locations is not None else None
    tables = {"deployments": deployments(dataset, where, utc_offset=utc_offset),
              "media": media(dataset, utc_offset=utc_offset)}
    tables["observations"] = observations(
        dataset, store, utc_offset=utc_offset, run=run, human=human, taxonomy=taxonomy,
        behaviours=read_behaviour(dataset) if human else None)
    untimed = int((tables["observations"]["eventStart"] == "").sum())
    if untimed:
        log.warning("%d observation(s) of captures without a camera time have empty times "
                    "(required by Camtrap DP)", untimed)
    if where is None:
        log.warning("incomplete Camtrap DP package: %s", MISSING_WITHOUT_LOCATIONS)
    package = _datapackage(dataset, tables, sampling_design=sampling_design, taxonomy=taxonomy,
                           store=store, run=run, complete=where is not None)
    # Tables first: a crash before the descriptor leaves new tables beside an older
    # descriptor, each file complete and readable.
    paths = [atomic_write(out / f"{name}.csv", write=lambda fh, t=table: t.to_csv(fh, index=False),
                          text=True, newline="") for name, table in tables.items()]
    paths.append(atomic_write(out / "datapackage.json", json.dumps(package, indent=2)))
    log.info("Camtrap DP -> %s: %s", out,
             ", ".join(f"{len(t)} {name}" for name, t in tables.items()))
    return paths
