"""What the importers share: records, image matching, label mapping, top-k spreading, writing.

Each format module (``speciesnet``, ``megadetector``, ``table``) turns its file into a
:class:`Source` (one :class:`Record` per image of the file); :func:`build_run` matches the
records to the dataset's images, maps their labels onto dataset classes and assembles the
probability vectors; :func:`write_imported_run` writes the run folder through
:func:`data.runs.write_run`, in a temporary folder renamed into place, so a refused import
leaves nothing behind. See docs/formats.md, "Importing other models' predictions".
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from data.cct import Dataset
from data.files import OutputError, atomic_write, atomic_write_path, neutralise_csv_cell
from data.runs import MANIFEST, write_run
from data.taxonomy import Taxonomy, load_taxonomy

log = logging.getLogger(__name__)

#: The extra run class that collects predictions no dataset class contains (counts as wrong).
UNMAPPED = "unmapped"
#: Classes of a detector-only run (MegaDetector without a classifier).
DETECTOR_CLASSES = ("animal", "human", "vehicle", "empty")
#: Examples listed in messages and in the manifest.
LISTED = 5
#: Files written beside the predictions in an imported run folder.
UNMATCHED_FILE = "unmatched.csv"
LABEL_MAP_FILE = "label_map.csv"
DETECTOR_FILE = "detector_scores.parquet"
#: Labels of no taxon that name a dataset class of their own (SpeciesNet's, MegaDetector's).
SPECIAL_LABELS = {"blank": "empty", "empty": "empty", "human": "human", "person": "human",
                  "vehicle": "vehicle"}
#: A listed class other than the prediction keeps at most this share of the prediction's score,
#: so the arg-max is always the stated prediction.
_BELOW_TOP = 1.0 - 1e-3
#: Rows assembled at once (bounds the dense (rows, classes) float64 work arrays).
_BLOCK = 65536


class ImportFormatError(ValueError):
    """A predictions file that cannot be imported; the message names file, record and reason."""


def fail(path: str | Path, record: str, reason: str) -> ImportFormatError:
    """``ImportFormatError("FILE: RECORD: REASON")``."""
    return ImportFormatError(f"{path}: {record}: {reason}")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_score(value: object, *, path: str | Path, record: str, what: str) -> float:
    """A score as float, refused unless it is a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(path, record, f"{what} {value!r} is not a number")
    score = float(value)
    if not 0.0 <= score <= 1.0:  # NaN fails too
        raise fail(path, record, f"{what} {value!r} is outside [0, 1]")
    return score


@dataclass
class Record:
    """One image of an imported file.

    ``labels`` / ``scores``: the listed classes (a top-k, or every class of a complete vector).
    ``prediction`` / ``score``: a final prediction that overrides the arg-max (SpeciesNet's
    ensemble output, a detector decision); None lets the arg-max of the mapped scores decide.
    ``failed``: the file says the model produced nothing for the image.
    """

    key: str
    where: str
    labels: tuple[str, ...] = ()
    scores: tuple[float, ...] = ()
    prediction: str | None = None
    score: float | None = None
    failed: bool = False
    detector_conf: float | None = None


@dataclass
class Source:
    """A parsed predictions file."""

    format: str
    path: Path
    records: list[Record]
    model_version: str | None = None
    detector_only: bool = False
    complete: bool = False          # scores cover every model class: nothing is spread
    info: dict = field(default_factory=dict)


# -- matching images -------------------------------------------------------------------------
def normalise_path(path: str) -> str:
    """Forward slashes, no leading ``./``, lower-case extension.

    >>> normalise_path(r".\\D:\\lila\\S1\\B04\\S1_B04_R1_PICT0001.JPG")
    'D:/lila/S1/B04/S1_B04_R1_PICT0001.jpg'
    """
    p = path.strip().replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    head, dot, ext = p.rpartition(".")
    if dot and "/" not in ext:
        p = f"{head}.{ext.lower()}"
    return p


def match_images(keys: Sequence[str], images: pd.DataFrame) -> np.ndarray:
    """Dataset row of each key: by ``image_id``, else the longest ``file_name`` that is a
    path suffix of the key (any root, Windows separators, extension case); -1 when none.

    >>> imgs = pd.DataFrame({"image_id": ["a", "S1/x/1"], "file_name": ["S1/a.JPG", "S1/x/1.JPG"]})
    >>> match_images(["S1/x/1", r"E:\\data\\S1\\a.jpg", "/srv/S1/b.jpg"], imgs).tolist()
    [1, 0, -1]
    """
    ids = {str(k): i for i, k in enumerate(images["image_id"].tolist())}
    names: dict[str, int] = {}
    for i, name in enumerate(images["file_name"].tolist()):
        names.setdefault(normalise_path(str(name)), i)
    depths = sorted({n.count("/") + 1 for n in names}, reverse=True)
    out = np.full(len(keys), -1, dtype=np.int64)
    for r, key in enumerate(keys):
        hit = ids.get(key)
        if hit is None:
            parts = normalise_path(key).split("/")
            for d in depths:
                if d <= len(parts):
                    hit = names.get("/".join(parts[-d:]))
                    if hit is not None:
                        break
        if hit is not None:
            out[r] = hit
    return out


# -- mapping labels onto dataset classes ---------------------------------------------------
def label_name(label: str) -> str:
    """The common name of a SpeciesNet label (its last field), else the label, lower-case."""
    return label.rsplit(";", 1)[-1].strip().lower()


class LabelMapper:
    """Model label -> run class, decided once per label and remembered.

    Order: the explicit mapping (``--mapping``; an empty target leaves a label unmapped), a
    dataset class of the same name, SpeciesNet's and MegaDetector's own non-taxa (blank ->
    ``empty``, human/person -> ``human``, vehicle -> ``vehicle``, when the dataset has them),
    then the taxonomy (:meth:`data.taxonomy.Taxonomy.match`: the class whose taxon is the
    label's or contains it; where several classes share it, the first in dataset order takes
    the prediction and the share is noted); anything else goes to :data:`UNMAPPED`.
    """

    def __init__(self, dataset_classes: Sequence[str], *, mapping: Mapping[str, str] | None = None,
                 taxonomy: Taxonomy | None = None):
        self.dataset_classes = list(dataset_classes)
        self.classes = [*self.dataset_classes, UNMAPPED]
        self._pos = {c: i for i, c in enumerate(self.classes)}
        self._mapping = dict(mapping or {})
        self._tax = taxonomy or load_taxonomy()
        self.decided: dict[str, tuple[str, str]] = {}    # label -> (class, how)
        self.shared: dict[str, list[str]] = {}           # taxon -> classes sharing it

    def column(self, label: str) -> int:
        return self._pos[self.resolve(label)[0]]

    def resolve(self, label: str) -> tuple[str, str]:
        hit = self.decided.get(label)
        if hit is None:
            hit = self.decided[label] = self._decide(label)
        return hit

    def _decide(self, label: str) -> tuple[str, str]:
        ds = self._pos
        if label in self._mapping:
            return self._mapping[label] or UNMAPPED, "mapping file"
        if label in ds and label != UNMAPPED:
            return label, "same name"
        special = SPECIAL_LABELS.get(label_name(label))
        fields = label.split(";")
        taxonomic = any(fields[1:6] if len(fields) == 7 else fields if len(fields) == 5 else ())
        if special and special in ds and (not taxonomic or special == "human"):
            return special, "non-taxon"
        try:
            m = self._tax.match(label, classes=self.dataset_classes)
        except ValueError:
            m = None                       # not a taxonomic path
        if m is None:
            return UNMAPPED, "no dataset class contains it"
        if len(m.classes) > 1:
            self.shared[m.taxon] = list(m.classes)
            how = (f"taxonomy: {m.taxon} ({m.rank}) is shared by {', '.join(m.classes)}; "
                   f"scored as {m.classes[0]}, compare at species level")
        else:
            how = f"taxonomy: {m.taxon} ({m.rank}){'' if m.exact else ', contains it'}"
        return m.classes[0], how


class DetectorMapper:
    """Detector categories onto :data:`DETECTOR_CLASSES` (person -> human)."""

    classes = list(DETECTOR_CLASSES)

    def __init__(self) -> None:
        self.decided: dict[str, tuple[str, str]] = {}
        self.shared: dict[str, list[str]] = {}

    def resolve(self, label: str) -> tuple[str, str]:
        name = SPECIAL_LABELS.get(label.lower(), label.lower())
        cls = name if name in DETECTOR_CLASSES else "animal"
        self.decided.setdefault(label, (cls, "detector category"))
        return cls, "detector category"

    def column(self, label: str) -> int:
        return DETECTOR_CLASSES.index(self.resolve(label)[0])


# -- probability vectors ---------------------------------------------------------------------
def assemble(columns: Sequence[int], scores: Sequence[float], n_classes: int, *,
             top: int | None = None, top_score: float | None = None,
             spread: bool = True) -> np.ndarray:
    """One probability vector from listed (column, score) pairs (:func:`assemble_rows`).

    >>> assemble([0, 2], [0.6, 0.2], 5).round(4).tolist()
    [0.6, 0.0667, 0.2, 0.0667, 0.0667]
    >>> assemble([1], [0.9], 3, top=2, top_score=0.05).round(4).tolist()
    [0.05, 0.05, 0.9001]
    """
    k = len(columns)
    return assemble_rows(np.zeros(k, np.int64), np.asarray(columns, np.int64),
                         np.asarray(scores, np.float64), 1, n_classes,
                         top=np.array([-1 if top is None else top]),
                         top_score=np.array([np.nan if top_score is None else top_score]),
                         spread=spread)[0]


def assemble_rows(rows: np.ndarray, columns: np.ndarray, scores: np.ndarray, n: int,
                  n_classes: int, *, top: np.ndarray, top_score: np.ndarray,
                  spread: bool = True) -> np.ndarray:
    """Probability vectors from listed (row, column, score) triples, summed per cell.

    Each row's predicted column (``top``, or where it is -1 the arg-max of the summed scores,
    ties to the lower column) keeps the larger of its stated and summed score; the other
    listed columns keep theirs, capped just below the prediction's and, largest first, by the
    mass left; what is left is spread evenly over the columns not listed (each below the
    prediction's score; not with ``spread=False``, for complete vectors whose remainder is
    rounding); any remainder goes to the prediction. The arg-max is always the stated
    prediction.

    Returns
    -------
    ndarray of float64, shape (n, n_classes)
    """
    listed = np.zeros((n, n_classes), np.float64)
    np.add.at(listed, (rows, columns), scores)
    is_listed = np.zeros((n, n_classes), bool)
    is_listed[rows, columns] = True
    r = np.arange(n)
    top = np.asarray(top, np.int64).copy()
    stated = np.asarray(top_score, np.float64).copy()
    free = top < 0
    if free.any():
        top[free] = np.argmax(np.where(is_listed[free], listed[free], -1.0), axis=1)
        stated[free] = listed[free, top[free]]
    ts = np.minimum(np.maximum(np.nan_to_num(stated), listed[r, top]), 1.0)
    cap = ts * _BELOW_TOP
    others = np.minimum(listed, cap[:, None])
    others[r, top] = 0.0
    is_listed[r, top] = True
    # Largest first, each takes what is left of 1 - ts (stable: ties in column order).
    order = np.argsort(-others, axis=1, kind="stable")
    vals = np.take_along_axis(others, order, axis=1)
    before = np.cumsum(vals, axis=1) - vals
    got = np.clip((1.0 - ts)[:, None] - before, 0.0, vals)
    p = np.zeros_like(listed)
    np.put_along_axis(p, order, got, axis=1)
    left = 1.0 - ts - p.sum(axis=1)
    if spread:
        n_rest = n_classes - is_listed.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where((n_rest > 0) & (left > 0),
                             np.minimum(left / np.maximum(n_rest, 1), cap), 0.0)
        p += np.where(is_listed, 0.0, share[:, None])
        left -= share * n_rest
    p[r, top] = ts + np.maximum(left, 0.0)
    return p


@dataclass
class Built:
    """The matched, mapped predictions of a source, ready to write."""

    classes: list[str]
    image_ids: np.ndarray
    probs: np.ndarray
    detector_conf: np.ndarray | None
    label_counts: list[dict]
    unmatched: list[tuple[str, str]]         # (record, key)
    without_prediction: list[str]            # dataset image ids
    failures: list[dict]
    shared: dict[str, list[str]]
    partial: bool


def build_run(source: Source, dataset: Dataset, *,
              mapping: Mapping[str, str] | None = None) -> Built:
    """Match a source's records to the dataset's images and assemble the probability matrix.

    Raises
    ------
    ImportFormatError
        No record matches a dataset image, or two records match the same image.
    """
    path = source.path
    recs = source.records
    pos = match_images([r.key for r in recs], dataset.images)
    matched = np.flatnonzero(pos >= 0)
    if not len(matched):
        example = recs[0].key if recs else "(no records)"
        raise fail(path, "every record", f"no image matches the dataset ({len(recs)} records, "
                   f"e.g. {example!r}; matched by image_id or by file_name as a path suffix)")
    seen: dict[int, int] = {}
    for r in matched.tolist():
        first = seen.setdefault(int(pos[r]), r)
        if first != r:
            iid = dataset.images["image_id"].iat[int(pos[r])]
            raise fail(path, recs[r].where, f"a second prediction for image {iid!r} (the first "
                       f"is {recs[first].where})")
    mapper = (DetectorMapper() if source.detector_only else
              LabelMapper(dataset.classes, mapping=mapping))
    n_classes = len(mapper.classes)
    ids = dataset.images["image_id"].to_numpy(dtype=object)
    failures = [{"record": recs[r].where, "key": recs[r].key, "image_id": str(ids[pos[r]])}
                for r in matched.tolist() if recs[r].failed]
    use = [r for r in matched.tolist() if not recs[r].failed]
    col_of: dict[str, int] = {}

    def col(label: str) -> int:
        c = col_of.get(label)
        if c is None:
            c = col_of[label] = mapper.column(label)
        return c

    rows, cols, scores = [], [], []
    top = np.full(len(use), -1, np.int64)
    top_score = np.full(len(use), np.nan)
    for i, r in enumerate(use):
        rec = recs[r]
        rows.extend([i] * len(rec.labels))
        cols.extend(col(lab) for lab in rec.labels)
        scores.extend(rec.scores)
        if rec.prediction is not None:
            top[i], top_score[i] = col(rec.prediction), rec.score
    rows_a, cols_a = np.array(rows, np.int64), np.array(cols, np.int64)
    scores_a = np.array(scores, np.float64)
    probs = np.empty((len(use), n_classes), np.float32)
    bounds = np.searchsorted(rows_a, np.arange(0, len(use) + _BLOCK, _BLOCK))
    for b, lo in enumerate(range(0, len(use), _BLOCK)):
        hi = min(lo + _BLOCK, len(use))
        sl = slice(bounds[b], bounds[b + 1])
        probs[lo:hi] = assemble_rows(rows_a[sl] - lo, cols_a[sl], scores_a[sl], hi - lo,
                                     n_classes, top=top[lo:hi], top_score=top_score[lo:hi],
                                     spread=not source.complete)
    best = probs.argmax(axis=1) if len(use) else np.empty(0, np.int64)
    predicted: Counter[str] = Counter()
    for i, r in enumerate(use):
        rec = recs[r]
        if rec.prediction is not None:
            predicted[rec.prediction] += 1
        else:  # the first listed label that lands on the arg-max names the prediction
            predicted[next((lab for lab in rec.labels if col(lab) == best[i]),
                           mapper.classes[best[i]])] += 1
    image_ids = ids[pos[use]] if use else np.empty(0, object)
    got = set(pos[use].tolist()) | {int(pos[r]) for r in matched if recs[r].failed}
    without = [str(ids[i]) for i in range(len(ids)) if i not in got]
    conf = None
    if any(recs[r].detector_conf is not None for r in use):
        conf = np.array([np.nan if recs[r].detector_conf is None else recs[r].detector_conf
                         for r in use], np.float64)
    counts = [{"model_label": lab, "dataset_class": cls, "how": how,
               "n_predicted": int(predicted.get(lab, 0))}
              for lab, (cls, how) in mapper.decided.items()]
    counts.sort(key=lambda d: (-d["n_predicted"], d["model_label"]))
    return Built(classes=list(mapper.classes), image_ids=image_ids, probs=probs,
                 detector_conf=conf, label_counts=counts,
                 unmatched=[(recs[r].where, recs[r].key) for r in np.flatnonzero(pos < 0)],
                 without_prediction=without, failures=failures, shared=dict(mapper.shared),
                 partial=not source.complete)


# -- writing ---------------------------------------------------------------------------------
def _csv_text(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows([[neutralise_csv_cell(v) for v in row] for row in rows])
    return out.getvalue()


def check_run_output(out: Path, *, inputs: Sequence[Path]) -> None:
    """Refuse an ``--out`` that is an input, inside one, a file, or a folder that is not empty
    and not a run folder (a previous run folder is replaced)."""
    resolved = out.resolve()
    for src in inputs:
        if resolved == src.resolve() or resolved in src.resolve().parents:
            raise OutputError(f"{out}: refusing to write the run folder over the input {src}")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is a file; give a folder for the run")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise OutputError(f"{out}: exists, is not empty and is not a run folder; refusing to "
                          "replace it")


def write_imported_run(out: str | Path, built: Built, *, manifest: dict) -> Path:
    """Write the run folder in a hidden temporary folder beside ``out``, then rename it into
    place (replacing a previous run folder there); nothing is left behind on failure."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.importing-{os.getpid()}"
    old = out.parent / f".{out.name}.replaced-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write_run(tmp, manifest={**manifest, "run_id": manifest.get("run_id") or out.name},
                  image_ids=built.image_ids.astype(str), probs=built.probs,
                  split="test")
        rows = ([("prediction_not_in_dataset", where, key) for where, key in built.unmatched]
                + [("image_without_prediction", "", iid) for iid in built.without_prediction]
                + [("failure", f["record"], f["key"]) for f in built.failures])
        atomic_write(tmp / UNMATCHED_FILE, _csv_text(("kind", "record", "image"), rows))
        atomic_write(tmp / LABEL_MAP_FILE, _csv_text(
            ("model_label", "dataset_class", "how", "n_predicted"),
            [(d["model_label"], "" if d["dataset_class"] == UNMAPPED else d["dataset_class"],
              d["how"], d["n_predicted"]) for d in built.label_counts]))
        if built.detector_conf is not None:
            table = pa.table({"image_id": pa.array(built.image_ids.astype(str), pa.string()),
                              "detector_conf": pa.array(built.detector_conf, pa.float32())})
            atomic_write_path(tmp / DETECTOR_FILE, lambda p: pq.write_table(table, p))
        if out.exists():
            out.rename(old)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not out.exists():
            old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return out


def read_detector_scores(run_dir: str | Path) -> pd.Series | None:
    """image_id -> the detector's largest confidence, for imported runs that carry one
    (``detector_scores.parquet``); None otherwise."""
    path = Path(run_dir) / DETECTOR_FILE
    if not path.is_file():
        return None
    table = pq.read_table(path)
    return pd.Series(table.column("detector_conf").to_numpy(zero_copy_only=False),
                     index=table.column("image_id").to_numpy(zero_copy_only=False),
                     name="detector_conf")


def read_json(path: str | Path) -> object:
    """A JSON file, refused in one line when unreadable or not JSON."""
    try:
        with open(path, "rb") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise fail(path, f"line {exc.lineno}", f"not valid JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise fail(path, "file", "not JSON text (not UTF-8)") from None
    except OSError as exc:
        raise fail(path, "file", f"cannot read it ({exc.strerror or exc})") from None
