"""Predictions from a pipeline's own CSV or Parquet table.

A key column, ``image_id`` or ``file_name`` (a path, matched as a suffix), then one of:

- one probability column per class (every other column): complete vectors, summing to 1;
- ``label`` + ``score``: the top class only;
- ``label_1`` .. ``label_k`` + ``score_1`` .. ``score_k``: the top k (blank cells end a row's
  list early).

Top-1 and top-k rows are completed by spreading the rest of the mass evenly over the other
classes (:func:`data.imports.common.assemble`).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from data.imports.common import Record, Source, fail
from data.runs import SUM_TOL

FORMAT = "csv"
KEYS = ("image_id", "file_name")
_TOPK = re.compile(r"^(label|score)_(\d+)$")


def _read_frame(path: Path) -> tuple[pd.DataFrame, str]:
    """The table and how to name its rows (``line`` for CSV, ``row`` for Parquet)."""
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path), "row"
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""],
                           encoding="utf-8-sig"), "line"
    except FileNotFoundError:
        raise fail(path, "file", "not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            pa.ArrowException, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise fail(path, "file", f"not a readable CSV or Parquet table ({reason})") from None


def _scores(frame: pd.DataFrame, cols: list[str], path: Path, row_name) -> np.ndarray:
    """Columns as floats; refuse text, and values outside [0, 1] (NaN kept: blank cells)."""
    out = np.empty((len(frame), len(cols)), np.float64)
    for j, col in enumerate(cols):
        values = pd.to_numeric(frame[col], errors="coerce")
        text = values.isna() & frame[col].notna()
        if text.any():
            r = int(np.flatnonzero(text.to_numpy())[0])
            raise fail(path, row_name(r), f"column {col!r}: {frame[col].iat[r]!r} is not a number")
        out[:, j] = values.to_numpy(np.float64)
    bad = ~np.isnan(out) & ((out < 0) | (out > 1))
    if bad.any():
        r, j = (int(x[0]) for x in np.nonzero(bad))
        raise fail(path, row_name(r), f"column {cols[j]!r}: score {float(out[r, j])!r} is outside [0, 1]")
    return out


def read(path: str | Path) -> Source:
    """Parse a CSV or Parquet predictions table into records (one per row).

    Raises
    ------
    ImportFormatError
        Unreadable, no key column, a layout that is none of the three, a missing or repeated
        key, a score that is not a number in [0, 1], complete vectors not summing to 1.
    """
    path = Path(path)
    frame, unit = _read_frame(path)
    offset = 2 if unit == "line" else 0          # CSV: line 1 is the header

    def row_name(r: int) -> str:
        return f"{unit} {r + offset}"

    key = next((k for k in KEYS if k in frame.columns), None)
    if key is None:
        raise fail(path, "header", f"needs an 'image_id' or 'file_name' column, has "
                   f"{list(frame.columns)[:8]}")
    if frame.empty:
        raise fail(path, "file", "has no rows")
    keys = frame[key]
    if keys.isna().any():
        raise fail(path, row_name(int(np.flatnonzero(keys.isna().to_numpy())[0])),
                   f"empty {key!r}")
    keys = keys.astype(str).tolist()
    others = [c for c in frame.columns if c not in KEYS]
    topk = sorted({int(m.group(2)) for c in others if (m := _TOPK.match(str(c)))})
    records: list[Record] = []
    complete = False
    if "label" in others or "score" in others or topk:
        ks = [None] if ("label" in others or "score" in others) else topk
        lab_cols = ["label" if k is None else f"label_{k}" for k in ks]
        sc_cols = ["score" if k is None else f"score_{k}" for k in ks]
        for col in lab_cols + sc_cols:
            if col not in frame.columns:
                raise fail(path, "header", f"column {col!r} is missing (labels need scores "
                           "and scores labels)")
        scores = _scores(frame, sc_cols, path, row_name)
        labels = frame[lab_cols].to_numpy(dtype=object)
        for r in range(len(frame)):
            pairs = [(str(lab), float(s)) for lab, s in zip(labels[r], scores[r])
                     if isinstance(lab, str) and lab.strip()]
            if any(pd.isna(s) for _, s in pairs):
                raise fail(path, row_name(r), "a label without a score")
            if not pairs:
                raise fail(path, row_name(r), f"no label in {lab_cols[0]!r}")
            if sum(s for _, s in pairs) > 1 + SUM_TOL:
                raise fail(path, row_name(r), f"scores sum to {sum(s for _, s in pairs):.6g}, "
                           "more than 1")
            lab, sc = zip(*pairs)
            records.append(Record(keys[r], row_name(r), tuple(lab), tuple(sc)))
    else:
        if not others:
            raise fail(path, "header", "no prediction columns: expected one probability "
                       "column per class, 'label' + 'score', or 'label_1..k' + 'score_1..k'")
        classes = [str(c) for c in others]
        scores = _scores(frame, others, path, row_name)
        if np.isnan(scores).any():
            r = int(np.flatnonzero(np.isnan(scores).any(axis=1))[0])
            raise fail(path, row_name(r), "a blank probability")
        sums = scores.sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - 1) > SUM_TOL)
        if len(bad):
            raise fail(path, row_name(int(bad[0])), f"probabilities sum to {sums[bad[0]]:.6g}, "
                       f"not 1 (tolerance {SUM_TOL})")
        labels = tuple(classes)
        records = [Record(keys[r], row_name(r), labels, tuple(scores[r].tolist()))
                   for r in range(len(frame))]
        complete = True
    return Source(format=FORMAT, path=path, records=records, complete=complete,
                  info={"layout": "per-class columns" if complete else
                        ("label + score" if "label" in others else f"top {len(topk)}")})
