"""Exports as CSV: the labelled image table (``csv``) and the decisions log (``decisions``).

Every text cell goes through :func:`data.files.neutralise_csv_cell`, so a spreadsheet never
runs a cell (a reason typed as ``=HYPERLINK(...)``) as a formula.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from data.curation.store import COLUMNS, DecisionStore
from data.files import atomic_write, neutralise_csv_cell

if TYPE_CHECKING:
    from data.cct import Dataset
    from data.taxonomy import Taxonomy

log = logging.getLogger(__name__)

#: Columns of the labelled image table, one row per (image, species).
LABEL_COLUMNS = ["image_id", "file_name", "capture", "frame", "site", "season", "datetime",
                 "species", "scientific_name", "count", "label_source", "curator",
                 "decision_time", "reason"]


def _neutralised(df: pd.DataFrame) -> pd.DataFrame:
    return df.apply(lambda col: col if pd.api.types.is_numeric_dtype(col)
                    else col.map(neutralise_csv_cell))


def decisions_csv_frame(store: DecisionStore) -> pd.DataFrame:
    """The decisions table as it is written to CSV (labels comma-joined, ts ISO UTC)."""
    df = store.decisions()
    for col in ("labels_before", "labels_after"):
        df[col] = [",".join(v) for v in df[col]]
    df["ts"] = [t.isoformat(timespec="microseconds") for t in df["ts"]]
    return df[COLUMNS]


def export_decisions(store: DecisionStore, out: str | Path) -> Path:
    """Write every decision (the append-only table, oldest first) to one CSV file."""
    out = Path(out)
    if out.is_dir():
        out = out / "decisions.csv"
    df = _neutralised(decisions_csv_frame(store))
    path = atomic_write(out, write=lambda fh: df.to_csv(fh, index=False), text=True,
                        newline="")
    log.info("%d decisions -> %s", len(df), path)
    return path


def labelled_frame(dataset: "Dataset", store: DecisionStore,
                   taxonomy: "Taxonomy | None" = None) -> pd.DataFrame:
    """The labelled image table: one row per (image, species) of the corrected dataset, in
    dataset order (a capture-level decision is expanded to each of its frames).

    ``label_source`` is ``original`` (the published label; curator, time and reason empty) or
    ``curated``; ``count`` is the published count of that species on that image (a bin such
    as ``11-50`` as published), empty for a species a curator added; ``datetime`` is the camera
    time, ``decision_time`` UTC.
    """
    from data.taxonomy import load_taxonomy

    tax = taxonomy or load_taxonomy()
    eff = store.effective(dataset)
    reasons = store.decisions().set_index("id")["reason"]
    labels = dataset.labels
    counts = labels.drop_duplicates(["image_id", "class"]).set_index(
        ["image_id", labels["class"].astype(str).rename("species")])["count"]
    orig = labels.loc[~labels["image_id"].isin(set(eff["image_id"]))]
    rows = pd.concat([
        pd.DataFrame({"image_id": orig["image_id"], "species": orig["class"].astype(str),
                      "rank": orig["rank"], "label_source": "original", "curator": "",
                      "decision_time": "", "reason": ""}),
        eff.assign(rank=[list(range(len(v))) for v in eff["labels"]]).explode(
            ["labels", "rank"]).dropna(subset=["labels"]).pipe(lambda f: pd.DataFrame({
                "image_id": f["image_id"], "species": f["labels"].astype(str),
                "rank": f["rank"], "label_source": "curated", "curator": f["curator"],
                "decision_time": pd.to_datetime(f["ts"], utc=True, format="ISO8601").dt
                .strftime("%Y-%m-%dT%H:%M:%SZ"),
                "reason": f["decision_id"].map(reasons).fillna("")})),
    ], ignore_index=True)
    images = dataset.images.set_index("image_id")
    order = pd.Series(range(len(images)), index=images.index)
    rows = rows.assign(_o=rows["image_id"].map(order)).sort_values(["_o", "rank"],
                                                                    kind="stable")
    img = images.loc[rows["image_id"]]
    key = pd.MultiIndex.from_arrays([rows["image_id"], rows["species"]])
    table = pd.DataFrame({
        "image_id": rows["image_id"].to_numpy(),
        "file_name": img["file_name"].astype(str).to_numpy(),
        "capture": img["seq_id"].astype("string").fillna("").to_numpy(),
        "frame": img["frame_num"].to_numpy(),
        "site": img["location"].astype("string").fillna("").to_numpy(),
        "season": img["season"].astype("string").fillna("").to_numpy(),
        "datetime": img["datetime"].dt.strftime("%Y-%m-%dT%H:%M:%S").fillna("").to_numpy(),
        "species": rows["species"].to_numpy(),
        "scientific_name": [tax.row(s).scientific_name for s in rows["species"]],
        "count": counts.reindex(key).astype(object).where(lambda s: s.notna(), "")
        .to_numpy(),
        "label_source": rows["label_source"].to_numpy(),
        "curator": rows["curator"].to_numpy(),
        "decision_time": rows["decision_time"].to_numpy(),
        "reason": rows["reason"].to_numpy(),
    })
    return table[LABEL_COLUMNS]


def export_labels(dataset: "Dataset", store: DecisionStore, out: str | Path) -> Path:
    """Write the labelled image table (:func:`labelled_frame`) to one CSV file."""
    out = Path(out)
    if out.is_dir():
        out = out / "labels.csv"
    df = _neutralised(labelled_frame(dataset, store))
    path = atomic_write(out, write=lambda fh: df.to_csv(fh, index=False), text=True,
                        newline="")
    log.info("%d labelled (image, species) rows -> %s", len(df), path)
    return path
