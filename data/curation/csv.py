"""Export: every curation decision (the append-only table, oldest first) as one CSV file."""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from data.curation.store import COLUMNS, DecisionStore
from data.files import atomic_write, neutralise_csv_cell

log = logging.getLogger(__name__)


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
    # Spreadsheet formula injection (OWASP): curator names, reasons and ids are user text.
    df = decisions_csv_frame(store).map(neutralise_csv_cell)
    path = atomic_write(out, write=lambda fh: df.to_csv(fh, index=False), text=True,
                        newline="")
    log.info("%d decisions -> %s", len(df), path)
    return path
