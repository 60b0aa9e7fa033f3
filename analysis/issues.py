"""Every suspect, where curators work: the full merged ranking as a table, a file, a queue.

:func:`issue_table` gives :func:`analysis.ranking.label_issues` with the columns a curator
needs (file name, capture, frame, site); :func:`write_issues` streams it to CSV or Parquet in
batches (a full Snapshot Serengeti ranking never becomes a list of Python dicts);
:func:`issue_queue` filters it for the relabel queue and :func:`queue_progress` says how long
the rest will take at the curator's recent pace.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.evalset import EvalSet, meta_values
from analysis.ranking import label_issues
from data.files import atomic_write_path, neutralise_csv_cell

log = logging.getLogger(__name__)

#: Kinds of suspect, as the CLI names them; ``label_issue`` is confident learning's.
KINDS = ("inherited_label", "missed_species", "label_issue", "top_loss")
#: CLI name -> the kind :func:`analysis.ranking.label_issues` writes.
KIND_ALIASES = {"label_issue": "confident_learning", "confident_learning": "confident_learning",
                "inherited_label": "inherited_label", "missed_species": "missed_species",
                "top_loss": "top_loss"}
ISSUE_FILE_COLUMNS = ["image_id", "file_name", "capture", "frame", "site", "kind", "score",
                      "given", "suggested", "reason"]
FORMATS = (".csv", ".parquet")
#: Rows per written batch.
BATCH_ROWS = 65_536


def normalise_kinds(kinds: Iterable[str] | None) -> tuple[str, ...] | None:
    """Library kind names of ``kinds`` (CLI or library spelling); ValueError on an unknown one."""
    if kinds is None:
        return None
    kinds = [k.strip() for k in kinds if k.strip()]
    bad = [k for k in kinds if k not in KIND_ALIASES]
    if bad:
        raise ValueError(f"unknown kind {bad[0]!r}; choose from {', '.join(KINDS)}")
    return tuple(dict.fromkeys(KIND_ALIASES[k] for k in kinds))


def issue_table(ev: EvalSet, issues: pd.DataFrame | None = None, **kwargs) -> pd.DataFrame:
    """The merged ranking with each image's file, capture, frame and site.

    Parameters
    ----------
    ev : EvalSet
    issues : DataFrame, optional
        :func:`analysis.ranking.label_issues` of ``ev`` if already computed.
    **kwargs
        Passed to :func:`analysis.ranking.label_issues` (default: every wrongly predicted
        image enters as a top loss, ``k_losses=None``).

    Returns
    -------
    DataFrame
        The columns of ``label_issues`` plus ``file_name, seq_id, frame_num, location`` and
        ``row`` (the image's row in ``ev``), in ranking order.
    """
    if issues is None:
        issues = label_issues(ev, **{"k_losses": None, **kwargs})
    rows = ev.rows_of(issues["image_id"]) if len(issues) else np.zeros(0, np.int64)
    extra = {c: meta_values(ev, c, rows) for c in ("file_name", "seq_id", "frame_num",
                                                     "location")}
    return issues.assign(row=rows, **extra).reset_index(drop=True)


def issue_queue(ev: EvalSet, *, kinds: Sequence[str] | None = None,
                classes: Sequence[str] | None = None, sites: Sequence[str] | None = None,
                split: str | None = None, issues: pd.DataFrame | None = None) -> pd.DataFrame:
    """The relabel queue's source: the full ranking, filtered, in ranking order.

    Parameters
    ----------
    ev : EvalSet
    kinds : sequence of str, optional
        Keep images flagged by any of these kinds (:data:`KINDS`; library names accepted).
    classes : sequence of str, optional
        Keep images whose given or suggested labels include any of these classes.
    sites : sequence of str, optional
        Keep images of these sites (``meta["location"]``).
    split : str, optional
        Keep images of this split.
    issues : DataFrame, optional
        :func:`issue_table` (or ``label_issues``) of ``ev`` if already computed; the ranking
        is made once over all images, so filters select from it without re-scoring.

    Returns
    -------
    DataFrame
        The rows of :func:`issue_table` that pass every filter given.

    Examples
    --------
    >>> issue_queue(ev, kinds=["inherited_label"], sites=["B03"])  # doctest: +SKIP
    """
    table = issue_table(ev) if issues is None else issues
    if "row" not in table.columns:
        table = issue_table(ev, table)
    keep = np.ones(len(table), bool)
    wanted = normalise_kinds(kinds)
    if wanted is not None:
        keep &= table["kinds"].map(lambda ks: not set(ks).isdisjoint(wanted)).to_numpy(bool)
    if classes is not None:
        unknown = sorted(set(classes) - set(ev.classes))
        if unknown:
            raise ValueError(f"issue_queue: unknown class {unknown[0]!r}")
        want = set(classes)
        given = table["given"].map(lambda g: not want.isdisjoint(g)).to_numpy(bool)
        sugg = table["suggested"].astype(str).str.split(",").map(
            lambda s: not want.isdisjoint(x.strip() for x in s)).to_numpy(bool)
        keep &= given | sugg
    rows = table["row"].to_numpy(np.int64)
    if sites is not None:
        site = (ev.meta["location"].astype("string") if "location" in ev.meta.columns
                else pd.Series(pd.NA, index=ev.meta.index, dtype="string"))
        keep &= site.isin([str(s) for s in sites]).fillna(False).to_numpy(bool)[rows]
    if split is not None:
        sp = (ev.meta["split"].astype("string") if "split" in ev.meta.columns
              else pd.Series(pd.NA, index=ev.meta.index, dtype="string"))
        keep &= sp.eq(split).fillna(False).to_numpy(bool)[rows]
    return table[keep].reset_index(drop=True)


def selection_queue(ev: EvalSet, table: pd.DataFrame, image_ids: Iterable[str], *,
                    source: str = "a selection") -> pd.DataFrame:
    """The relabel queue for a hand-made selection (e.g. a lasso on the embedding map).

    The selected images that the ranking flags come first, in ranking order; every other
    selected image follows (kind ``selected``, score 0, the model's arg-max as suggestion), so
    a curator sees the whole selection and the likeliest errors first.

    Parameters
    ----------
    ev : EvalSet
    table : DataFrame
        :func:`issue_table` of ``ev`` (the full ranking).
    image_ids : iterable of str
        The selection; ids absent from ``ev`` are ignored.
    source : str
        Where the selection came from, for the ``reason`` of unflagged images.

    Returns
    -------
    DataFrame
        The columns of ``table``, one row per selected image of ``ev``.
    """
    from analysis.evalset import given_labels

    wanted = pd.Index(pd.unique(np.asarray(list(image_ids), dtype=object).astype(str)))
    ranked = table[table["image_id"].astype(str).isin(wanted)]
    ids = ev.meta["image_id"].astype(str)
    rest = np.flatnonzero(ids.isin(wanted).to_numpy() & ~ids.isin(ranked["image_id"]
                                                                   .astype(str)).to_numpy())
    if not len(rest):
        return ranked.reset_index(drop=True)
    classes = np.asarray(ev.classes, dtype=object)
    extra = pd.DataFrame({"image_id": ids.to_numpy()[rest], "score": 0.0,
                          "given": given_labels(ev, rest),
                          "suggested": classes[ev.probs[rest].argmax(axis=1)].astype(str),
                          "reason": f"selected on {source}; no ranking signal",
                          "kinds": [("selected",)] * len(rest)})
    extra = issue_table(ev, extra)
    return pd.concat([ranked, extra[[c for c in table.columns if c in extra.columns]]],
                     ignore_index=True)


def queue_progress(decided_count: int, remaining_count: int, decision_times, *,
                   window: int = 20, max_gap_s: float = 600.0) -> dict:
    """Progress of a curator through the queue, and the time left at their recent pace.

    Parameters
    ----------
    decided_count, remaining_count : int
    decision_times : sequence of datetime-like or float (seconds)
        When the curator's decisions were made (any order).
    window : int
        Only the most recent ``window`` decisions set the pace.
    max_gap_s : float
        Gaps longer than this (a break) do not count as working time.

    Returns
    -------
    dict
        ``decided, remaining, pace_per_hour, eta_seconds``; the last two are None until two
        decisions within ``max_gap_s`` of each other give a pace.

    Examples
    --------
    >>> queue_progress(3, 90, [0.0, 30.0, 60.0])
    {'decided': 3, 'remaining': 90, 'pace_per_hour': 120.0, 'eta_seconds': 2700.0}
    """
    if decided_count < 0 or remaining_count < 0:
        raise ValueError(f"queue_progress: counts must be >= 0, got decided={decided_count}, "
                         f"remaining={remaining_count}")
    out = {"decided": int(decided_count), "remaining": int(remaining_count),
           "pace_per_hour": None, "eta_seconds": None}
    times = pd.Series(list(decision_times))
    if len(times) < 2:
        return out
    if pd.api.types.is_numeric_dtype(times):
        secs = times.to_numpy(np.float64)
    else:
        stamps = pd.to_datetime(times, utc=True)
        # Seconds since the first decision (the datetime unit varies: ns, us, ...).
        secs = (stamps - stamps.min()).dt.total_seconds().to_numpy(np.float64)
    secs = np.sort(secs[np.isfinite(secs)])[-window:]
    gaps = np.diff(secs)
    gaps = gaps[gaps <= max_gap_s]
    worked = float(gaps.sum())
    if not len(gaps) or worked <= 0:
        return out
    pace = len(gaps) / worked * 3600.0
    out["pace_per_hour"] = pace
    out["eta_seconds"] = remaining_count / pace * 3600.0
    return out


def _file_batch(table: pd.DataFrame) -> pd.DataFrame:
    """One batch of :func:`issue_table` in the file's columns (strings joined by ",")."""
    frame = pd.to_numeric(pd.Series(table["frame_num"].to_numpy()), errors="coerce")
    return pd.DataFrame({
        "image_id": table["image_id"].astype(str).to_numpy(),
        "file_name": table["file_name"].to_numpy(),
        "capture": table["seq_id"].to_numpy(),
        "frame": frame.astype("Int64").to_numpy(),
        "site": table["location"].to_numpy(),
        "kind": [",".join(k) for k in table["kinds"]],
        "score": table["score"].to_numpy(np.float64),
        "given": [",".join(g) for g in table["given"]],
        "suggested": table["suggested"].astype(str).to_numpy(),
        "reason": table["reason"].astype(str).to_numpy()}, columns=ISSUE_FILE_COLUMNS)


def write_issues(table: pd.DataFrame, path: str | Path, *, batch_rows: int = BATCH_ROWS
                 ) -> int:
    """Stream :func:`issue_table` to ``.csv`` or ``.parquet`` in batches; return rows written.

    The file has :data:`ISSUE_FILE_COLUMNS`; ``kind`` and ``given`` are comma-separated. It is
    written beside ``path`` and renamed into place when complete.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"{path}: output must end in .csv or .parquet")
    schema = pa.schema([("image_id", pa.string()), ("file_name", pa.string()),
                        ("capture", pa.string()), ("frame", pa.int64()), ("site", pa.string()),
                        ("kind", pa.string()), ("score", pa.float64()), ("given", pa.string()),
                        ("suggested", pa.string()), ("reason", pa.string())])
    csv = path.suffix.lower() != ".parquet"
    n = 0

    def write(tmp: Path) -> None:
        nonlocal n
        writer = pacsv.CSVWriter(tmp, schema) if csv else pq.ParquetWriter(tmp, schema)
        try:
            for lo in range(0, max(len(table), 1), batch_rows):
                batch = _file_batch(table.iloc[lo:lo + batch_rows])
                for col in ("file_name", "capture", "site"):
                    batch[col] = batch[col].map(lambda v: None if v is None or v is pd.NA
                                                or (isinstance(v, float) and np.isnan(v))
                                                else str(v))
                if csv:  # spreadsheet formula injection (OWASP): ids and names come from files
                    for col in ("image_id", "file_name", "capture", "site", "given",
                                "suggested", "reason"):
                        batch[col] = batch[col].map(neutralise_csv_cell)
                writer.write_table(pa.Table.from_pandas(batch, schema=schema,
                                                        preserve_index=False))
                n += len(batch)
        finally:
            writer.close()

    atomic_write_path(path, write)
    log.info("%d suspect(s) written to %s", n, path)
    return n
