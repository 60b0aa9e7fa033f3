"""Curation decisions: an append-only SQLite store that several curators can write at once.

One row per decision in ``decisions`` (never updated, never deleted: triggers refuse both), a
``latest_decisions`` view of the latest effective decision per item, and the corrected label
sets that follow from them (``DecisionStore.corrections``), which the analysis recomputes
metrics with and the export modules of ``data.curation`` write out.

Concurrency: WAL journal, a busy timeout, a new connection per operation and ``BEGIN
IMMEDIATE`` around every write, so the labels a decision records as "before" are read in the
same transaction that appends it: two processes writing at once lose nothing.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import sqlite3
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # data.cct imports nothing from here; keep the import lazy all the same
    from data.cct import Dataset

log = logging.getLogger(__name__)

ACTIONS = ("accept", "set", "empty", "unsure", "skip", "undo")
SCOPES = ("image", "capture")
EMPTY_CLASS = "empty"
LABEL_ACTIONS = ("accept", "set", "empty")  # the actions that change an item's labels
BUSY_TIMEOUT_S = 60.0
SCHEMA_VERSION = 1
COLUMNS = ["id", "ts", "curator", "scope", "item_id", "action", "labels_before",
           "labels_after", "reason", "run_id", "undoes"]
MAX_CURATOR_LEN = 64  # characters of a curator name (shown on pages, written to exports)


def check_curator(curator: object) -> str:
    r"""A curator name, stripped: printable text on one line, 1 to :data:`MAX_CURATOR_LEN`
    characters; anything else raises :class:`DecisionError` naming the value.

    >>> check_curator("  Ada Lovelace ")
    'Ada Lovelace'
    >>> check_curator("ada\nroot")
    Traceback (most recent call last):
    ...
    data.curation.store.DecisionError: curator must be printable text on one line, got 'ada\nroot'
    """
    if not isinstance(curator, str) or not curator.strip():
        raise DecisionError(f"curator must be a non-empty name, got {curator!r}")
    name = curator.strip()
    if not name.isprintable():
        raise DecisionError(f"curator must be printable text on one line, got {curator!r}")
    if len(name) > MAX_CURATOR_LEN:
        raise DecisionError(f"curator must be at most {MAX_CURATOR_LEN} characters, got "
                            f"{len(name)}: {name[:MAX_CURATOR_LEN]!r}...")
    return name


_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS decisions (
    id            INTEGER PRIMARY KEY,
    ts            TEXT    NOT NULL,
    curator       TEXT    NOT NULL CHECK (length(trim(curator)) > 0),
    scope         TEXT    NOT NULL CHECK (scope IN {SCOPES!r}),
    item_id       TEXT    NOT NULL,
    action        TEXT    NOT NULL CHECK (action IN {ACTIONS!r}),
    labels_before TEXT    NOT NULL,
    labels_after  TEXT    NOT NULL,
    reason        TEXT    NOT NULL DEFAULT '',
    run_id        TEXT,
    undoes        INTEGER REFERENCES decisions(id),
    CHECK ((action = 'undo') = (undoes IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS decisions_item ON decisions(scope, item_id);
CREATE INDEX IF NOT EXISTS decisions_curator ON decisions(curator);
CREATE UNIQUE INDEX IF NOT EXISTS decisions_undoes ON decisions(undoes) WHERE undoes IS NOT NULL;
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only: DELETE refused'); END;
CREATE VIEW IF NOT EXISTS live_decisions AS
    SELECT * FROM decisions
    WHERE action != 'undo'
      AND id NOT IN (SELECT undoes FROM decisions WHERE undoes IS NOT NULL);
CREATE VIEW IF NOT EXISTS latest_decisions AS
    SELECT {", ".join(COLUMNS)} FROM (
        SELECT *, ROW_NUMBER() OVER (PARTITION BY scope, item_id ORDER BY id DESC) AS rn
        FROM live_decisions)
    WHERE rn = 1;
PRAGMA user_version = {SCHEMA_VERSION};
"""


class DecisionError(ValueError):
    """A decision (or the store) was refused; the message names the item, field and value."""


def parse_labels(text: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"a,b"`` or ``["a", "b"]`` -> ``("a", "b")`` (stripped, de-duplicated); blank -> None."""
    if text is None:
        return None
    parts = text.split(",") if isinstance(text, str) else list(text)
    out: list[str] = []
    for part in parts:
        if not isinstance(part, str):
            raise DecisionError(f"labels must be class names (strings), got {part!r}")
        name = part.strip()
        if name and name not in out:
            out.append(name)
    return tuple(out) or None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class _Lookup(Mapping):
    """Read-only ``key -> value`` over a unique pandas Index (hashed once, in C) and a function
    of the key's position, instead of a Python dict of millions of entries."""

    def __init__(self, keys: pd.Index, value: Callable[[int], Any],
                 present: np.ndarray | None = None) -> None:
        self._keys, self._value, self._present = keys, value, present

    def _pos(self, key: Any) -> int:
        try:
            pos = self._keys.get_loc(key)
        except (KeyError, TypeError, pd.errors.InvalidIndexError):
            raise KeyError(key) from None
        if self._present is not None and not self._present[pos]:
            raise KeyError(key)
        return pos

    def __getitem__(self, key: Any) -> Any:
        return self._value(self._pos(key))

    def __contains__(self, key: object) -> bool:
        try:
            self._pos(key)
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator:
        return iter(self._keys if self._present is None else self._keys[self._present])

    def __len__(self) -> int:
        return len(self._keys) if self._present is None else int(self._present.sum())


@dataclass
class _Index:
    """What validation needs from a dataset, built once per Dataset object: vectorised
    look-ups (about a second at a million images) rather than dicts of Python objects."""

    image_ids: pd.Index                     # membership (``in``)
    seq_of: Mapping[str, str]               # image_id -> seq_id
    frames: Mapping[str, tuple[str, ...]]   # seq_id -> image ids by frame_num
    classes: tuple[str, ...]
    original: Mapping[str, tuple[str, ...]]  # image_id -> dataset label set

    def labels_of(self, image_id: str, overrides: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
        if image_id in overrides:
            return overrides[image_id]
        return self.original.get(image_id, ())

    def item_labels(self, scope: str, item_id: str,
                    overrides: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
        """An image's label set; a capture's: the union over its frames in frame order."""
        if scope == "image":
            return self.labels_of(item_id, overrides)
        out: list[str] = []
        for image_id in self.frames.get(item_id, ()):
            out.extend(c for c in self.labels_of(image_id, overrides) if c not in out)
        return tuple(out)

    def images_of(self, scope: str, item_id: str) -> tuple[str, ...]:
        return (item_id,) if scope == "image" else self.frames.get(item_id, ())


def _build_index(dataset: "Dataset") -> _Index:
    images = dataset.images
    ids = pd.Index(images["image_id"])
    id_values = ids.to_numpy(dtype=object)
    seq = images["seq_id"].astype("category")
    seq_code = seq.cat.codes.to_numpy().astype(np.int64)
    seq_names = np.asarray(seq.cat.categories.astype(str), dtype=object)
    # Frames: images by capture, then frame number (ties in dataset order).
    by_seq = np.lexsort((images["frame_num"].to_numpy(), seq_code))
    by_seq = by_seq[seq_code[by_seq] >= 0]
    seq_at = np.r_[0, np.cumsum(np.bincount(seq_code[by_seq], minlength=len(seq_names)))]
    lab_class, lab_at = dataset.label_groups()
    return _Index(
        image_ids=ids,
        seq_of=_Lookup(ids, lambda i: seq_names[seq_code[i]], present=seq_code >= 0),
        frames=_Lookup(pd.Index(seq_names),
                       lambda g: tuple(id_values[by_seq[seq_at[g]:seq_at[g + 1]]]),
                       present=np.diff(seq_at) > 0),
        classes=tuple(dataset.classes),
        original=_Lookup(ids, lambda i: tuple(lab_class[lab_at[i]:lab_at[i + 1]])),
    )


_INDEX_BY_ID: dict[int, tuple[weakref.ref, _Index]] = {}


def _index(dataset: "Dataset") -> _Index:
    # Dataset is an (unhashable) dataclass: cache by identity, dropped when it is collected.
    key = id(dataset)
    hit = _INDEX_BY_ID.get(key)
    if hit is not None and hit[0]() is dataset:
        return hit[1]
    index = _build_index(dataset)
    try:
        ref = weakref.ref(dataset, lambda _r, k=key: _INDEX_BY_ID.pop(k, None))
    except TypeError:  # not weak-referenceable: do not cache
        return index
    _INDEX_BY_ID[key] = (ref, index)
    return index


def _apply(index: _Index, rows: Iterable[tuple],
           overrides: dict[str, tuple[str, ...]] | None = None,
           sources: dict[str, tuple] | None = None) -> dict[str, tuple[str, ...]]:
    """Replay live decisions ``(scope, item_id, action, labels_after, *extra)`` in id order:
    the later label-changing one wins, frame or capture. ``sources`` gets
    ``image_id -> (scope, *extra)`` of the decision that set each image."""
    overrides = {} if overrides is None else overrides
    for row in rows:
        scope, item_id, action, after = row[:4]
        if action not in LABEL_ACTIONS:
            continue
        for image_id in index.images_of(scope, item_id):
            if image_id in index.image_ids:
                overrides[image_id] = after
                if sources is not None:
                    sources[image_id] = (scope, *row[4:])
    return overrides


class DecisionStore:
    """The append-only decisions table in one SQLite file (created on first use).

    Every method opens its own short-lived connection: safe to share one store object between
    threads (Streamlit sessions) and to use the same file from several processes.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._connect() as conn:
                ready = self._check_schema(conn)
                if ready and conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                    return  # already set up: opening a store stays read-only
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    log.warning("%s: journal mode is %s, not WAL", self.path, mode)
                conn.executescript(f"BEGIN IMMEDIATE;\n{_SCHEMA}\nCOMMIT;")
                self._check_schema(conn)
        except sqlite3.DatabaseError as exc:
            raise DecisionError(f"{self.path}: not a usable decisions database ({exc})") from exc

    def __repr__(self) -> str:
        return f"DecisionStore({str(self.path)!r})"

    # -- connections ----------------------------------------------------------------------
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken before reading so reads and append are atomic."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _check_schema(self, conn: sqlite3.Connection) -> bool:
        """True when the decisions table exists as expected, False when there is none."""
        have = [row[1] for row in conn.execute("PRAGMA table_info(decisions)")]
        if have and have != COLUMNS:
            raise DecisionError(f"{self.path}: table 'decisions' has columns {have}, "
                                f"expected {COLUMNS}")
        return bool(have)

    # -- reading --------------------------------------------------------------------------
    def _frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        with self._connect() as conn:
            rows = conn.execute(sql, params).fetchall()
        df = pd.DataFrame(rows, columns=COLUMNS)
        for col in ("labels_before", "labels_after"):
            df[col] = [tuple(json.loads(v)) for v in df[col]]
        df["id"] = df["id"].astype("int64")
        df["undoes"] = df["undoes"].astype("Int64")
        df["ts"] = pd.to_datetime(df["ts"], utc=True, format="ISO8601")
        return df

    def decisions(self) -> pd.DataFrame:
        """The whole append-only table, oldest first (labels as tuples, ``ts`` UTC)."""
        return self._frame(f"SELECT {', '.join(COLUMNS)} FROM decisions ORDER BY id")

    def latest(self) -> pd.DataFrame:
        """The latest effective decision per (scope, item); undone decisions excluded."""
        return self._frame(f"SELECT {', '.join(COLUMNS)} FROM latest_decisions ORDER BY id")

    def decided_ids(self) -> set[str]:
        """Image ids and seq ids that have a latest decision (for progress counts)."""
        with self._connect() as conn:
            return {r[0] for r in conn.execute("SELECT item_id FROM latest_decisions")}

    def __len__(self) -> int:
        with self._connect() as conn:
            return conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]

    def _live(self, conn: sqlite3.Connection, index: _Index | None = None,
              items: Sequence[tuple[str, str]] | None = None) -> list[tuple]:
        """Live (not undo, not undone) decisions in id order, optionally only those that touch
        the images of ``items`` (their frames and their captures)."""
        sql = "SELECT scope, item_id, action, labels_after, id, curator, ts FROM live_decisions"
        params: list[str] = []
        if items is not None and index is not None:
            image_ids: set[str] = set()
            for scope, item_id in items:
                image_ids.update(index.images_of(scope, item_id))
            seq_ids = {index.seq_of[i] for i in image_ids if i in index.seq_of}
            if not image_ids and not seq_ids:
                return []
            sql += (" WHERE (scope = 'image' AND item_id IN (SELECT value FROM json_each(?)))"
                    " OR (scope = 'capture' AND item_id IN (SELECT value FROM json_each(?)))")
            params = [json.dumps(sorted(image_ids)), json.dumps(sorted(seq_ids))]
        rows = conn.execute(sql + " ORDER BY id", params).fetchall()
        return [(s, i, a, tuple(json.loads(after)), did, cur, ts)
                for s, i, a, after, did, cur, ts in rows]

    def effective(self, dataset: "Dataset") -> pd.DataFrame:
        """Corrected label sets with their provenance.

        Columns: ``image_id``, ``labels`` (tuple of class names), ``scope`` ("image" when a
        frame-level decision set them, "capture" when a capture-level one did),
        ``decision_id``, ``curator``, ``ts`` (ISO string). One row per image whose labels a
        live accept/set/empty decision sets, in dataset image order. Decisions about items
        or classes the dataset does not know are skipped (with a warning).
        """
        index = _index(dataset)
        with self._connect() as conn:
            live = self._live(conn)
        sources: dict[str, tuple] = {}
        usable, bad = [], []
        for r in live:
            (usable if self._usable(index, r) else bad).append(r)
        if bad:
            log.warning("%s: %d decision(s) name items or classes this dataset lacks, ignored "
                        "(ids %s)", self.path, len(bad), [r[4] for r in bad[:10]])
        overrides = _apply(index, usable, sources=sources)
        ids = dataset.images["image_id"]
        order = list(ids[ids.isin(list(overrides))])
        return pd.DataFrame({
            "image_id": pd.Series(order, dtype=object),
            "labels": pd.Series([overrides[i] for i in order], dtype=object),
            "scope": [sources[i][0] for i in order],
            "decision_id": pd.Series([sources[i][1] for i in order], dtype="int64"),
            "curator": [sources[i][2] for i in order],
            "ts": [sources[i][3] for i in order],
        })

    def corrections(self, dataset: "Dataset") -> pd.DataFrame:
        """``[image_id, labels]``: the corrected label set of every image a decision changed.

        Capture-level decisions apply to every frame of the capture; decisions replay in the
        order they were made, so a frame-level decision overrides an earlier capture-level
        one (and a later capture-level decision overrides earlier frame-level ones).
        ``unsure`` and ``skip`` leave labels as they are; undone decisions do not count.
        """
        return self.effective(dataset)[["image_id", "labels"]]

    @staticmethod
    def _usable(index: _Index, row: tuple) -> bool:
        scope, item_id, action, after = row[:4]
        known = item_id in (index.image_ids if scope == "image" else index.frames)
        return action not in LABEL_ACTIONS or (known and all(c in index.classes for c in after))

    # -- writing --------------------------------------------------------------------------
    def _validate(self, index: _Index, *, item_id: str, scope: str, action: str,
                  labels: Sequence[str] | str | None, reason: str, run_id: str | None,
                  where: str = "") -> tuple[tuple[str, ...] | None, str, str | None]:
        """Check one decision; return (labels, reason, run_id) normalised."""
        at = f"{where}: " if where else ""
        if action not in ACTIONS:
            raise DecisionError(f"{at}unknown action {action!r}; expected one of {ACTIONS}")
        if scope not in SCOPES:
            raise DecisionError(f"{at}unknown scope {scope!r}; expected one of {SCOPES}")
        if not isinstance(item_id, str) or not item_id:
            raise DecisionError(f"{at}item id must be a non-empty string, got {item_id!r}")
        if scope == "image" and item_id not in index.image_ids:
            raise DecisionError(f"{at}unknown image id {item_id!r} (not in the dataset)")
        if scope == "capture" and item_id not in index.frames:
            raise DecisionError(f"{at}unknown capture (seq_id) {item_id!r} (not in the dataset)")
        names = parse_labels(labels)
        for name in names or ():
            if name not in index.classes:
                raise DecisionError(f"{at}unknown class {name!r} for {item_id!r}; known: "
                                    f"{', '.join(index.classes[:12])}"
                                    f"{', ...' if len(index.classes) > 12 else ''}")
        if names and EMPTY_CLASS in names and len(names) > 1:
            raise DecisionError(f"{at}{EMPTY_CLASS!r} cannot be combined with other labels: "
                                f"{','.join(names)!r} for {item_id!r}")
        if action == "set" and not names:
            raise DecisionError(f"{at}action 'set' needs labels for {item_id!r}")
        if action == "empty":
            if EMPTY_CLASS not in index.classes:
                raise DecisionError(f"{at}the dataset has no {EMPTY_CLASS!r} class")
            if names not in (None, (EMPTY_CLASS,)):
                raise DecisionError(f"{at}action 'empty' takes no labels, got "
                                    f"{','.join(names)!r} for {item_id!r}")
            names = (EMPTY_CLASS,)
        if action in ("unsure", "skip", "undo") and names:
            raise DecisionError(f"{at}action {action!r} takes no labels, got "
                                f"{','.join(names)!r} for {item_id!r}")
        if reason is None:
            reason = ""
        if not isinstance(reason, str):
            raise DecisionError(f"{at}reason must be text, got {reason!r}")
        if run_id is not None and (not isinstance(run_id, str) or not run_id.strip()):
            raise DecisionError(f"{at}run_id must be a non-empty string or None, got {run_id!r}")
        return names, reason.strip(), run_id

    @staticmethod
    def _curator(curator: str) -> str:
        return check_curator(curator)

    @staticmethod
    def _insert(conn: sqlite3.Connection, *, curator: str, scope: str, item_id: str,
                action: str, before: Sequence[str], after: Sequence[str], reason: str,
                run_id: str | None, undoes: int | None = None) -> int:
        cur = conn.execute(
            "INSERT INTO decisions (ts, curator, scope, item_id, action, labels_before, "
            "labels_after, reason, run_id, undoes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (_now(), curator, scope, item_id, action, json.dumps(list(before)),
             json.dumps(list(after)), reason, run_id, undoes))
        return int(cur.lastrowid)

    def _append(self, conn: sqlite3.Connection, index: _Index,
                overrides: dict[str, tuple[str, ...]], *, curator: str, scope: str,
                item_id: str, action: str, labels: tuple[str, ...] | None, reason: str,
                run_id: str | None) -> int:
        """Insert one validated, non-undo decision; update ``overrides`` in place."""
        before = index.item_labels(scope, item_id, overrides)
        if action in LABEL_ACTIONS and labels:
            after = labels
        else:  # accept without labels confirms the current ones; unsure/skip change nothing
            after = before
            if action == "accept":
                self._check_confirmable(index, overrides, scope, item_id, before)
        row_id = self._insert(conn, curator=curator, scope=scope, item_id=item_id,
                              action=action, before=before, after=after, reason=reason,
                              run_id=run_id)
        if action in LABEL_ACTIONS:
            _apply(index, [(scope, item_id, action, after)], overrides)
        return row_id

    @staticmethod
    def _check_confirmable(index: _Index, overrides: dict[str, tuple[str, ...]], scope: str,
                           item_id: str, before: tuple[str, ...]) -> None:
        """'accept' without labels confirms one label set: refuse when there is none, or when
        a capture's frames disagree (confirming their union would relabel every frame)."""
        if not before:
            raise DecisionError(f"accept: {scope} {item_id!r} has no labels to confirm; "
                                "give the accepted labels")
        sets = {index.labels_of(i, overrides) for i in index.images_of(scope, item_id)}
        if len(sets) > 1:
            raise DecisionError(f"accept: the frames of capture {item_id!r} carry different "
                                f"labels {sorted(sets)}; give the accepted labels")

    def _overrides(self, conn: sqlite3.Connection, index: _Index,
                   items: Sequence[tuple[str, str]] | None) -> dict[str, tuple[str, ...]]:
        live = [r for r in self._live(conn, index, items) if self._usable(index, r)]
        return _apply(index, live)

    def record(self, dataset: "Dataset", *, curator: str, item_id: str, scope: str = "image",
               action: str, labels: Sequence[str] | None = None, reason: str = "",
               run_id: str | None = None) -> int:
        """Append one decision and return its id.

        ``scope="image"``: ``item_id`` is an image id; ``scope="capture"``: a ``seq_id`` and the
        decision applies to every frame. ``accept`` takes the accepted labels (the model's
        suggestion; without labels it confirms the current ones), ``set`` takes one or more
        class names, ``empty`` sets the empty class, ``unsure``/``skip`` record a look without
        changing labels, ``undo`` reverts this curator's latest live decision on this item.
        ``labels_before`` is the item's effective label set at the time of writing.
        """
        curator = self._curator(curator)
        index = _index(dataset)
        names, reason, run_id = self._validate(index, item_id=item_id,
                                               scope=scope, action=action, labels=labels,
                                               reason=reason, run_id=run_id)
        if action == "undo":
            undone = self._undo(index, curator=curator, item=(scope, item_id), reason=reason,
                                run_id=run_id)
            if undone is None:
                raise DecisionError(f"nothing to undo for curator {curator!r} on {scope} "
                                    f"{item_id!r}")
            return undone[1]
        with self._write() as conn:
            overrides = self._overrides(conn, index, [(scope, item_id)])
            return self._append(conn, index, overrides, curator=curator, scope=scope,
                                item_id=item_id, action=action, labels=names, reason=reason,
                                run_id=run_id)

    def record_many(self, dataset: "Dataset", rows: Iterable[dict], *, curator: str,
                    source: str = "rows", first_row: int = 1) -> int:
        """Append many decisions in one transaction: all of them, or none.

        Each row is a dict with ``item_id`` (or ``image_id``), optional ``scope`` ("image"),
        ``action`` (default "set", or "empty" when the labels are just the empty class),
        ``labels``, ``reason``, ``run_id``. Errors name ``source`` and the row number
        (counted from ``first_row``). Returns the number of rows written.
        """
        curator = self._curator(curator)
        index = _index(dataset)
        checked = []
        for n, row in enumerate(rows, start=first_row):
            where = f"{source} row {n}"
            if not isinstance(row, dict):
                raise DecisionError(f"{where}: expected a mapping, got {type(row).__name__}")
            item_id = row.get("item_id", row.get("image_id"))
            labels = parse_labels(row.get("labels"))
            action = row.get("action") or ("empty" if labels == (EMPTY_CLASS,) else "set")
            if action == "undo":
                raise DecisionError(f"{where}: 'undo' cannot be imported; use undo()")
            scope = row.get("scope") or "image"
            names, reason, run_id = self._validate(
                index, item_id=item_id, scope=scope, action=action,
                labels=labels, reason=row.get("reason") or "", run_id=row.get("run_id"),
                where=where)
            checked.append((scope, item_id, action, names, reason, run_id))
        if not checked:
            return 0
        with self._write() as conn:
            overrides = self._overrides(conn, index, [(c[0], c[1]) for c in checked])
            for scope, item_id, action, names, reason, run_id in checked:
                self._append(conn, index, overrides, curator=curator, scope=scope,
                             item_id=item_id, action=action, labels=names, reason=reason,
                             run_id=run_id)
        log.info("%s: recorded %d decisions by %s", self.path, len(checked), curator)
        return len(checked)

    def undo(self, *, curator: str, dataset: "Dataset | None" = None,
             reason: str = "") -> int | None:
        """Revert this curator's latest live decision by appending an ``undo`` row.

        Returns the id of the undone decision, or None when there is nothing to undo. Repeated
        calls walk back through the curator's history. With ``dataset`` the undo row records
        the labels after reverting; without it, ``labels_after`` is the undone decision's
        ``labels_before``.
        """
        curator = self._curator(curator)
        index = _index(dataset) if dataset is not None else None
        done = self._undo(index, curator=curator, item=None, reason=reason, run_id=None)
        return None if done is None else done[0]

    def _undo(self, index: _Index | None, *, curator: str, item: tuple[str, str] | None,
              reason: str, run_id: str | None) -> tuple[int, int] | None:
        sql = ("SELECT id, scope, item_id, labels_before, labels_after, run_id "
               "FROM live_decisions WHERE curator = ?")
        params: list[Any] = [curator]
        if item is not None:
            sql += " AND scope = ? AND item_id = ?"
            params += list(item)
        with self._write() as conn:
            target = conn.execute(sql + " ORDER BY id DESC LIMIT 1", params).fetchone()
            if target is None:
                return None
            target_id, scope, item_id, t_before, t_after, t_run = target
            if index is not None:
                items = [(scope, item_id)]
                live = [r for r in self._live(conn, index, items)
                        if r[4] != target_id and self._usable(index, r)]
                before = index.item_labels(scope, item_id, self._overrides(conn, index, items))
                after = index.item_labels(scope, item_id, _apply(index, live))
            else:
                before, after = json.loads(t_after), json.loads(t_before)
            new_id = self._insert(conn, curator=curator, scope=scope, item_id=item_id,
                                  action="undo", before=before, after=after, reason=reason,
                                  run_id=run_id or t_run, undoes=target_id)
        log.info("%s: %s undid decision %d (%s %s)", self.path, curator, target_id, scope,
                 item_id)
        return target_id, new_id


# -- CLI ------------------------------------------------------------------------------------
def _load(paths: Sequence[str]) -> "Dataset":
    from data.cct import load_dataset  # lazy: argparse help must not need pandas work

    return load_dataset(paths)


def _store(path: str | None) -> DecisionStore:
    from data.paths import curation_db

    return DecisionStore(path or curation_db())


def _check_db(args: argparse.Namespace) -> None:
    """Refuse, before any work, a ``--db`` that is an input or a file of another kind."""
    from data.files import check_output
    from data.paths import curation_db

    check_output(args.db or curation_db(), inputs=[*args.dataset, getattr(args, "csv", None)],
                 kinds={"sqlite"}, what="decisions database")


def resolve_item(dataset: "Dataset", item: str, *, capture: bool) -> tuple[str, str]:
    """CLI ids -> (scope, item_id). With ``capture``, an image id means its capture; a seq_id
    is accepted as is (image ids are looked up first)."""
    index = _index(dataset)
    if not capture:
        return "image", item
    if item in index.seq_of:
        return "capture", index.seq_of[item]
    if item in index.frames:
        return "capture", item
    raise DecisionError(f"--image {item!r} is neither an image id nor a seq_id of the dataset")


def _cmd_decide(args: argparse.Namespace) -> int:
    _check_db(args)
    dataset = _load(args.dataset)
    scope, item_id = resolve_item(dataset, args.image, capture=args.capture)
    labels = parse_labels(args.labels)
    action = args.action or ("empty" if labels == (EMPTY_CLASS,) else "set")
    store = _store(args.db)
    row_id = store.record(dataset, curator=args.curator, item_id=item_id, scope=scope,
                          action=action, labels=labels, reason=args.reason, run_id=args.run)
    log.info("decision %d recorded in %s", row_id, store.path)
    shown = "" if action == "empty" else " " + ",".join(labels or ())
    print(f"decision {row_id}: {scope} {item_id} -> {action}{shown}")
    return 0


def read_decisions_csv(path: str | Path) -> list[dict]:
    """Rows of a decisions CSV (columns ``image_id``, ``labels``, optional ``reason``,
    ``scope``, ``action``); a missing column or unreadable file raises DecisionError."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = reader.fieldnames or []
            missing = [c for c in ("image_id", "labels") if c not in fields]
            if missing:
                raise DecisionError(f"{path}: missing column(s) {missing}; found {fields}")
            rows = [dict(r) for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DecisionError(f"{path}: cannot read CSV ({exc})") from exc
    for n, row in enumerate(rows, start=2):
        if None in row:
            raise DecisionError(f"{path} row {n}: more fields than columns: {row[None]!r}")
        if not (row.get("labels") or "").strip() and (row.get("action") or "") in ("", "set"):
            raise DecisionError(f"{path} row {n}: empty labels for {row.get('image_id')!r}")
    return rows


def _cmd_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    _check_db(args)
    rows = read_decisions_csv(args.csv)
    dataset = _load(args.dataset)
    if args.capture:  # image ids (or seq ids) name captures
        for n, row in enumerate(rows, start=2):
            try:
                row["scope"], row["item_id"] = resolve_item(dataset, row["image_id"],
                                                            capture=True)
            except DecisionError as exc:
                raise DecisionError(f"{args.csv} row {n}: {exc}") from None
    store = _store(args.db)
    n = store.record_many(dataset, tqdm(rows, desc="decisions", unit="row", leave=False,
                                                disable=None),
                          curator=args.curator, source=str(args.csv), first_row=2)
    print(f"{n} decisions imported into {store.path}")
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``decide`` and ``import-decisions`` to ``python -m data``."""
    p = subparsers.add_parser("decide", help="record one curation decision",
                              description="Record one curation decision in the SQLite store.")
    p.add_argument("--dataset", nargs="+", required=True, metavar="JSON")
    p.add_argument("--db", help="SQLite file (default: $TRAPLENS_HOME/curation.sqlite)")
    p.add_argument("--image", required=True, metavar="ID",
                   help="image id; with --capture, an image id (its capture) or a seq_id")
    p.add_argument("--capture", action="store_true", help="apply to the whole capture")
    p.add_argument("--labels", help="comma-separated class names, or 'empty'")
    p.add_argument("--action", choices=[a for a in ACTIONS if a != "undo"],
                   help="default: 'set' ('empty' when --labels empty)")
    p.add_argument("--curator", required=True)
    p.add_argument("--reason", default="")
    p.add_argument("--run", default=None, help="run id the decision was made from")
    p.set_defaults(func=_cmd_decide)

    q = subparsers.add_parser("import-decisions", help="record decisions from a CSV",
                              description="Record many decisions from a CSV (columns "
                              "image_id, labels, reason): all of them or none.")
    q.add_argument("--dataset", nargs="+", required=True, metavar="JSON")
    q.add_argument("--db", help="SQLite file (default: $TRAPLENS_HOME/curation.sqlite)")
    q.add_argument("--csv", required=True, metavar="FILE")
    q.add_argument("--curator", required=True)
    q.add_argument("--capture", action="store_true",
                   help="each row's image_id names its whole capture (or is a seq_id)")
    q.set_defaults(func=_cmd_import)
