"""Predictions joined with ground truth and metadata: the one input of every analysis.

Ground truth is never stored with the predictions: :func:`build_evalset` joins the run with the
dataset (and optional label corrections) at load time, so corrected labels change every metric
without re-running the model.

Scoring policies (:func:`targets`):

``set`` (default)
    An image's truth is its label *set*. The prediction (arg-max) is correct when it is in the
    set; a wrong prediction is charged to the set's class with the highest predicted
    probability, so ``y_true`` is always one of the image's labels.
``primary``
    Only the first annotation counts (single-label evaluation of the original project).

On single-label images both policies give the same ``(y_true, y_pred)``.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse

from analysis.labelspace import (ModelSpace, model_space, not_scorable, resolve_mapping,
                                 rollup)
from data.runs import PredictionsError
from data.taxonomy import LEVELS as TAXON_LEVELS

log = logging.getLogger(__name__)

Policy = Literal["set", "primary"]
POLICIES = ("set", "primary")
_BLOCK = 131_072  # rows per block of (rows, C) temporaries
META_COLUMNS = ("image_id", "file_name", "seq_id", "frame_num", "seq_num_frames", "location",
                "season", "day_night", "datetime", "split")


class CorrectionsError(ValueError):
    """A corrections table names an unknown image or class, or is malformed."""


@dataclass(frozen=True, eq=False)
class LabelSpaceInfo:
    """How the run's classes met the dataset's when an :class:`EvalSet` was built.

    Attributes
    ----------
    space : analysis.labelspace.ModelSpace
        The scoring classes, the mapping and which dataset classes the model can predict.
    run_classes : tuple of str
        The run manifest's classes (probability order).
    unknown_labels : DataFrame
        ``image_id, class, split``: every label of a predicted image whose class the model
        cannot predict (scorable or not).
    not_scorable : DataFrame
        ``image_id, labels, split``: predicted images whose only labels the model cannot
        predict (``labels``: class names joined by ``;``).
    scored_as_errors : bool
        True: those images are in the set, scored as errors; False: left out.
    taxon_level : str
        The taxonomic level of the set's classes (:func:`at_level`).
    """

    space: ModelSpace
    run_classes: tuple[str, ...]
    unknown_labels: pd.DataFrame
    not_scorable: pd.DataFrame
    scored_as_errors: bool = False
    taxon_level: str = "label"

    @property
    def n_not_scorable(self) -> int:
        return len(self.not_scorable)

    @property
    def differs(self) -> bool:
        """Whether there is anything to say: classes differ or images are not scorable."""
        return self.space.kind != "identical" or self.n_not_scorable > 0

    def in_split(self, split: str) -> "LabelSpaceInfo":
        """The same, its tables restricted to rows of ``split``."""
        return replace(self, unknown_labels=_rows_in(self.unknown_labels, split),
                       not_scorable=_rows_in(self.not_scorable, split))


def label_space_summary(ev: "EvalSet", *, examples: int = 20) -> dict:
    """The report's ``label_space`` block: how the run's classes met the dataset's.

    Parameters
    ----------
    ev : EvalSet
        Built by :func:`build_evalset` (at the label level: extra-class counts are arg-maxes
        over its classes).
    examples : int
        Not-scorable images listed.

    Returns
    -------
    dict
        ``kind`` (identical/permutation/subset/superset/overlap/mapped), ``run_classes``,
        ``dataset_classes``, ``mapping`` (file or None), ``mapped`` ({model label: dataset
        class} for labels the mapping renames), ``unknown_to_model`` ([{class, n_images}]:
        dataset classes the model cannot predict and the evaluated-or-left-out images
        carrying each), ``extra_in_model`` ([{class, n_predicted}]: model labels outside the
        dataset and how many evaluated images they won, each an error), ``n_not_scorable``,
        ``not_scorable_examples`` ([{image_id, labels}]), ``scored_as_errors``,
        ``taxon_level``. Sets built by hand (no ``label_space``) give an identical space.
    """
    info = ev.label_space
    if info is None:
        return {"kind": "identical", "run_classes": list(ev.classes),
                "dataset_classes": list(ev.classes), "mapping": None, "mapped": {},
                "unknown_to_model": [], "extra_in_model": [], "n_not_scorable": 0,
                "not_scorable_examples": [], "scored_as_errors": False, "taxon_level": "label"}
    space = info.space
    counts = (info.unknown_labels.drop_duplicates(["image_id", "class"])["class"]
              .value_counts() if len(info.unknown_labels) else pd.Series(dtype=int))
    extra = space.extra_in_model
    won = (np.bincount(ev.pred, minlength=ev.n_classes) if extra and len(ev)
           else np.zeros(ev.n_classes, np.int64))
    pos = {c: i for i, c in enumerate(ev.classes)}
    return {
        "kind": space.kind, "run_classes": list(info.run_classes),
        "dataset_classes": list(space.dataset_classes), "mapping": space.mapping_source,
        "mapped": {k: v for k, v in space.mapping.items() if k != v},
        "unknown_to_model": [{"class": c, "n_images": int(counts.get(c, 0))}
                             for c in space.unknown_to_model],
        "extra_in_model": [{"class": c, "n_predicted": int(won[pos[c]]) if c in pos else 0}
                           for c in extra],
        "n_not_scorable": info.n_not_scorable,
        "not_scorable_examples": info.not_scorable[["image_id", "labels"]].head(examples)
        .to_dict("records"),
        "scored_as_errors": info.scored_as_errors, "taxon_level": info.taxon_level,
    }


def _rows_in(table: pd.DataFrame, split: str) -> pd.DataFrame:
    return table[table["split"].astype(str) == split].reset_index(drop=True)


def argmax_rows(probs: np.ndarray, *, max_out: np.ndarray | None = None) -> np.ndarray:
    """Row-wise arg-max in blocks of rows.

    NumPy (2.4) copies a whole read-only array before ``argmax`` (1.8 GB at 7.2 M x 61, and
    the cached ``Run.probs`` is read-only); blocks bound that copy to a few megabytes.

    Parameters
    ----------
    probs : ndarray, shape (n, C)
    max_out : ndarray, shape (n,), optional
        Filled with each row's largest value, read from the block while it is in cache.
    """
    out = np.empty(len(probs), np.int64)
    for lo in range(0, len(probs), _BLOCK):
        block = probs[lo:lo + _BLOCK]
        arg = block.argmax(axis=1)
        out[lo:lo + _BLOCK] = arg
        if max_out is not None:
            max_out[lo:lo + _BLOCK] = block[np.arange(len(arg)), arg]
    return out


@dataclass(eq=False)
class EvalSet:
    """Aligned arrays for n evaluated images (or captures) over C classes.

    Attributes
    ----------
    classes : list of str
        Class names; column order of ``probs`` and ``labels``: the dataset's classes, then
        any model labels outside them (:class:`analysis.labelspace.ModelSpace`); arrays
        built by hand use any order.
    image_ids : ndarray of str, shape (n,)
    probs : ndarray of float32, shape (n, C)
    labels : ndarray of bool, shape (n, C)
        The label set of each image (after corrections).
    primary : ndarray of int, shape (n,)
        Index of the first annotation's class.
    meta : DataFrame, n rows
        Columns :data:`META_COLUMNS`, row i describes image i (index 0..n-1).
    missing : list of str
        Dataset ids that have no prediction.
    origin : hashable, optional
        What this set was built from, when whoever built it can name that exactly and
        cheaply (the dashboard's loaders: the stamps of the dataset and run files, the
        filters); :meth:`fingerprint` uses it instead of hashing the arrays. ``subset`` and
        :func:`aggregate_sequences` return sets without one.
    label_space : LabelSpaceInfo, optional
        How the run's classes met the dataset's (set by :func:`build_evalset`).

    Per-object memoisation (arg-max, targets, the id and capture indexes, the fingerprint)
    lives in this object, so it is dropped with it; treat the arrays as read-only.
    """

    classes: list[str]
    image_ids: np.ndarray
    probs: np.ndarray
    labels: np.ndarray
    primary: np.ndarray
    meta: pd.DataFrame
    missing: list[str] = field(default_factory=list)
    origin: object = field(default=None, repr=False)
    label_space: LabelSpaceInfo | None = field(default=None, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def pred(self) -> np.ndarray:
        """Arg-max class index per row, shape (n,) (computed once)."""
        if "pred" not in self._cache:
            top = np.empty(len(self), self.probs.dtype)
            self._cache["pred"] = argmax_rows(self.probs, max_out=top)
            self._cache["pred_prob"] = top
        return self._cache["pred"]

    @property
    def pred_prob(self) -> np.ndarray:
        """Probability of the arg-max class per row, shape (n,) (computed with ``pred``)."""
        pred = self.pred
        if "pred_prob" not in self._cache:  # "pred" was cached alone (e.g. by a subset)
            self._cache["pred_prob"] = self.probs[np.arange(len(self)), pred]
        return self._cache["pred_prob"]

    def subset(self, mask: np.ndarray) -> EvalSet:
        """Rows where ``mask`` is true (a bool array of length n, or integer row indices).

        Cached per-row results (arg-max, targets) are sliced along, not recomputed.
        """
        mask = np.asarray(mask)
        if mask.dtype == bool and mask.shape != (len(self),):
            raise ValueError(f"subset: mask has shape {mask.shape}, expected ({len(self)},)")
        # list(): a background thread (analysis.prepare) may be adding entries meanwhile
        cache = {k: tuple(a[mask] for a in v) if isinstance(v, tuple) else v[mask]
                 for k, v in list(self._cache.items())
                 if k in ("pred", "pred_prob") or k.startswith(("targets:", "codes:"))}
        return replace(self, image_ids=self.image_ids[mask], probs=self.probs[mask],
                       labels=self.labels[mask], primary=self.primary[mask],
                       meta=self.meta.iloc[mask].reset_index(drop=True), origin=None,
                       _cache=cache)

    def rows_of(self, image_ids) -> np.ndarray:
        """Row of each id in ``image_ids`` (-1 when absent); the id index is built once per set
        (hashing 7 M ids takes seconds). The ids of another set over the same images in the
        same order (two runs of one dataset) map row to row without it.

        Examples
        --------
        >>> ev = evalset_from_arrays(np.full((3, 2), 0.5), np.eye(3, 2, dtype=bool),
        ...                          image_ids=np.array(["a", "b", "c"], dtype=object))
        >>> ev.rows_of(["c", "x"]).tolist(), ev.rows_of(ev.image_ids.copy()).tolist()
        ([2, -1], [0, 1, 2])
        """
        if (isinstance(image_ids, np.ndarray) and image_ids.shape == self.image_ids.shape
                and (image_ids is self.image_ids
                     or bool(np.all(image_ids == self.image_ids)))):
            return np.arange(len(image_ids))
        if "id_index" not in self._cache:
            self._cache["id_index"] = pd.Index(self.image_ids)
        return self._cache["id_index"].get_indexer(image_ids)

    def capture_rows(self, seq_id: str) -> np.ndarray:
        """Rows whose ``meta["seq_id"]`` is ``seq_id``, in row order (empty when none).

        The capture index (rows sorted by capture) is built once per set, so showing one
        capture of millions of images costs a look-up, not a scan.

        Examples
        --------
        >>> ev = evalset_from_arrays(np.full((3, 2), 0.5), np.array([0, 1, 0]),
        ...     meta=pd.DataFrame({"image_id": ["a", "b", "c"], "seq_id": ["s", "t", "s"]}))
        >>> ev.capture_rows("s").tolist(), ev.capture_rows("x").tolist()
        ([0, 2], [])
        """
        if "capture_index" not in self._cache:
            self._cache["capture_index"] = _capture_index(self.meta["seq_id"])
        names, order, starts = self._cache["capture_index"]
        k = names.get_indexer([str(seq_id)])[0]
        return order[starts[k]:starts[k + 1]] if k >= 0 else np.zeros(0, np.int64)

    def fingerprint(self) -> str:
        """A hex digest naming this set's content, for cache keys (computed once per object).

        From :attr:`origin` when set (cheap), else from the classes, ids, probabilities,
        labels, primary classes and metadata (one pass over the arrays).
        """
        if "fingerprint" not in self._cache:
            h = hashlib.blake2b(digest_size=20)
            if self.origin is not None:
                h.update(b"origin:" + repr(self.origin).encode())
            else:
                h.update(repr((self.classes, self.probs.dtype.str, self.probs.shape)).encode())
                h.update(pd.util.hash_array(np.asarray(self.image_ids, dtype=object)).data)
                for arr in (self.probs, self.labels, self.primary):
                    h.update(np.ascontiguousarray(arr).view(np.uint8).reshape(-1).data)
                h.update(repr(list(self.meta.columns)).encode())
                h.update(pd.util.hash_pandas_object(self.meta, index=False).to_numpy().data)
            self._cache["fingerprint"] = h.hexdigest()
        return self._cache["fingerprint"]

    def class_index(self, name: str) -> int:
        """Index of class ``name``; ``KeyError`` naming the known classes otherwise."""
        try:
            return self.classes.index(name)
        except ValueError:
            raise KeyError(f"unknown class {name!r}; classes: {self.classes}") from None


def meta_values(ev: "EvalSet", name: str, rows: np.ndarray) -> np.ndarray:
    """``ev.meta[name]`` at ``rows`` as an object array (None where missing, or everywhere when
    the set has no such column). A categorical column converts only the categories taken: a
    run's capture ids are millions of categories, seconds to convert all of them.

    Examples
    --------
    >>> ev = evalset_from_arrays(np.full((3, 2), 0.5), np.array([0, 1, 0]),
    ...     meta=pd.DataFrame({"image_id": ["a", "b", "c"],
    ...                        "seq_id": pd.Categorical(["s", None, "t"])}))
    >>> meta_values(ev, "seq_id", np.array([2, 1])).tolist(), meta_values(ev, "x", [0]).tolist()
    (['t', None], [None])
    """
    rows = np.asarray(rows, dtype=np.int64)
    if name not in ev.meta.columns:
        return np.full(len(rows), None, dtype=object)
    col = ev.meta[name]
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()[rows]
        out = np.full(len(rows), None, dtype=object)
        ok = codes >= 0
        out[ok] = col.cat.categories.take(codes[ok]).to_numpy(dtype=object)
        return out
    out = col.take(rows).to_numpy(dtype=object)
    out[pd.isna(out)] = None
    return out


_PLAIN = (type(None), bool, int, float, str)


def _memo_value(value):
    """A plain, printable stand-in for an argument of a memoised function, or None when the
    argument cannot name a cache entry (arrays, tables, unnamed eval sets)."""
    if isinstance(value, _PLAIN) or isinstance(value, np.generic):
        return ("v", value.item() if isinstance(value, np.generic) else value)
    if isinstance(value, EvalSet):
        return ("EvalSet", value.fingerprint()) if value.origin is not None else None
    if isinstance(value, (tuple, list)):
        items = [_memo_value(v) for v in value]
        return None if any(i is None for i in items) else (type(value).__name__, tuple(items))
    return None


def memoised(fn: Callable) -> Callable:
    """Keep ``fn(ev, ...)``'s result on ``ev`` (an :class:`EvalSet`), keyed by the function
    and the values of its other arguments (defaults applied); each call returns a deep copy.

    What a page asks of a run's whole set can so be computed once, in the background
    (:mod:`analysis.prepare`), and found by the page's own call. Arguments must be plain
    values, tuples of them or eval sets that name their :attr:`EvalSet.origin`; a call with any
    other argument is computed afresh. Two threads asking for the same entry compute it once.
    """
    sig = inspect.signature(fn)
    name = f"memo:{fn.__module__}.{fn.__qualname__}"

    @functools.wraps(fn)
    def wrapper(ev: "EvalSet", *args, **kwargs):
        bound = sig.bind(ev, *args, **kwargs)
        bound.apply_defaults()
        parts = [(k, _memo_value(v)) for k, v in list(bound.arguments.items())[1:]]
        if any(v is None for _, v in parts):
            return fn(ev, *args, **kwargs)
        key = f"{name}:{parts!r}"
        with ev._cache.setdefault(f"lock:{key}", threading.Lock()):
            if key not in ev._cache:
                ev._cache[key] = fn(ev, *args, **kwargs)
        return copy.deepcopy(ev._cache[key])

    wrapper.memoised = True  # its closure holds only ``fn``: callers may key caches on ``fn``
    return wrapper


def _capture_index(seq: pd.Series) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """(capture names, rows sorted by capture, start of each capture in them)."""
    if isinstance(seq.dtype, pd.CategoricalDtype):  # the dataset's tables: codes already there
        codes = seq.cat.codes.to_numpy().astype(np.int64)
        names = pd.Index(seq.cat.categories.astype(str))
    else:
        codes, uniques = pd.factorize(seq.astype(str))
        names = pd.Index(uniques)
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(names) + 1))
    return names, order, starts


def targets(ev: EvalSet, *, policy: Policy = "set") -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_pred)`` class indices under a scoring policy.

    Parameters
    ----------
    ev : EvalSet
    policy : {"set", "primary"}
        ``set``: ``y_pred`` = arg-max; ``y_true = y_pred`` when it is in the label set, else the
        label-set class with the highest predicted probability. ``primary``: ``y_true`` = the
        first annotation's class.

    Returns
    -------
    y_true, y_pred : ndarray of int64, shape (n,)

    Examples
    --------
    With labels {zebra, wildebeest} and a wildebeest prediction, ``set`` counts it correct;
    ``primary`` (zebra annotated first) counts it as zebra -> wildebeest.
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    key = f"targets:{policy}"
    if key not in ev._cache:
        y_pred = ev.pred
        if policy == "primary":
            y_true = ev.primary.astype(np.int64, copy=False)
        else:
            rows = np.arange(len(ev))
            hit = ev.labels[rows, y_pred]
            y_true = y_pred.copy()
            miss = np.flatnonzero(~hit)
            # Only wrong rows need the masked arg-max (-1 keeps unlabelled columns below any
            # probability), in blocks so the temporaries stay small at millions of rows.
            for lo in range(0, len(miss), _BLOCK):
                rows_b = miss[lo:lo + _BLOCK]
                masked = np.where(ev.labels[rows_b], ev.probs[rows_b], np.float32(-1))
                y_true[rows_b] = masked.argmax(axis=1)
        ev._cache[key] = (y_true, y_pred)
    return ev._cache[key]


def given_labels(ev: EvalSet, rows: np.ndarray) -> list[tuple[str, ...]]:
    """Label sets of ``rows`` as tuples of class names: primary label first, then class order.

    Parameters
    ----------
    ev : EvalSet
    rows : ndarray of int, shape (k,)
        Row indices into ``ev``.

    Returns
    -------
    list of tuple of str, length k
        One tuple per row; empty for an image without labels.

    Examples
    --------
    >>> ev = evalset_from_arrays(np.full((1, 3), 1 / 3), np.array([[True, False, True]]),
    ...                          classes=["a", "b", "c"], primary=np.array([2]))
    >>> given_labels(ev, np.array([0]))
    [('c', 'a')]
    """
    rows = np.asarray(rows, dtype=np.int64)
    r, c = np.nonzero(ev.labels[rows])
    prim = ev.primary[rows]
    # Primary first: sort by (row, not-primary, class index).
    order = np.lexsort((c, c != prim[r], r))
    r, c = r[order], c[order]
    bounds = np.searchsorted(r, np.arange(len(rows) + 1))
    names = np.asarray(ev.classes, dtype=object)[c]
    return [tuple(names[bounds[i]:bounds[i + 1]]) for i in range(len(rows))]


def _align(dataset, run) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(prediction rows, dataset rows) in dataset order, and dataset ids without prediction."""
    pos = dataset.image_rows(run.image_ids)
    unknown = np.flatnonzero(pos < 0)
    if len(unknown):
        raise PredictionsError(f"{run.path}: column 'image_id': {len(unknown)} id(s) not in the "
                               f"dataset, e.g. row {unknown[0]}: {run.image_ids[unknown[0]]!r}")
    if len(pos) and np.all(pos[1:] > pos[:-1]):
        pred_rows = np.arange(len(pos))
    else:
        pred_rows = np.argsort(pos, kind="stable")
    seen = np.zeros(len(dataset.images), bool)
    seen[pos] = True
    missing = np.flatnonzero(~seen)
    return pred_rows, pos[pred_rows], dataset.images["image_id"].iloc[missing].tolist()


def apply_corrections(image_ids: np.ndarray, labels: np.ndarray, primary: np.ndarray,
                      classes: list[str], corrections: pd.DataFrame) -> np.ndarray:
    """Replace label sets in place; return the rows a correction left without labels.

    Parameters
    ----------
    image_ids : ndarray of str, shape (n,)
    labels : ndarray of bool, shape (n, C)
        Modified in place.
    primary : ndarray of int, shape (n,)
        Modified in place (first class of the corrected tuple).
    classes : list of str
    corrections : DataFrame
        Columns ``image_id`` and ``labels`` (tuple/list of class names). The tuple REPLACES the
        image's label set; ``("empty",)`` marks a confirmed empty image (an ordinary class);
        ``()`` means "no usable label" and removes the image from evaluation. Ids without a
        prediction are ignored; the last row wins when an id repeats.

    Returns
    -------
    ndarray of bool, shape (n,)
        True for rows whose corrected label set is empty.
    """
    for col in ("image_id", "labels"):
        if col not in corrections.columns:
            raise CorrectionsError(f"corrections: missing column {col!r}; has "
                                   f"{list(corrections.columns)}")
    corr = corrections.drop_duplicates("image_id", keep="last")
    rows = pd.Index(image_ids).get_indexer(corr["image_id"].astype(str))
    corr, rows = corr[rows >= 0], rows[rows >= 0]
    sets = corr["labels"].map(lambda v: tuple(v) if isinstance(v, (list, tuple, np.ndarray))
                              else (v,) if isinstance(v, str) else None)
    if sets.isna().any():
        bad = corr["image_id"].iloc[int(np.flatnonzero(sets.isna().to_numpy())[0])]
        raise CorrectionsError(f"corrections: field 'labels' of image {bad!r} is not a tuple of "
                               f"class names")
    exploded = pd.DataFrame({"row": rows, "cls": sets.to_numpy()}).explode("cls")
    named = exploded.dropna(subset=["cls"])
    cls_idx = pd.Index(classes).get_indexer(named["cls"])
    if (cls_idx < 0).any():
        i = int(np.flatnonzero(cls_idx < 0)[0])
        raise CorrectionsError(f"corrections: image {image_ids[named['row'].iloc[i]]!r} names "
                               f"unknown class {named['cls'].iloc[i]!r}")
    labels[rows] = False
    labels[named["row"].to_numpy(np.int64), cls_idx] = True
    first = named.drop_duplicates("row")
    primary[rows] = -1
    primary[first["row"].to_numpy(np.int64)] = pd.Index(classes).get_indexer(first["cls"])
    emptied = np.zeros(len(image_ids), bool)
    emptied[rows] = True
    emptied[first["row"].to_numpy(np.int64)] = False
    return emptied


def build_evalset(dataset, run, *, corrections: pd.DataFrame | None = None,
                  mapping: str | Path | Mapping[str, str] | None = None,
                  score_unknown: bool = False) -> EvalSet:
    """Join a run's predictions with a dataset's labels and metadata.

    The run's classes need not be the dataset's (a permutation, a subset, a superset, or
    labels mapped onto dataset classes): the result's classes are the dataset's, then the
    model labels outside them, whose probabilities stay in each row (predicting one is an
    error); see :func:`analysis.labelspace.model_space` and docs/formats.md.

    Parameters
    ----------
    dataset : data.cct.Dataset
        Labels and image metadata.
    run : data.runs.Run
        Loaded predictions.
    corrections : DataFrame, optional
        ``image_id``, ``labels`` (tuple of class names) replacing those images' label sets;
        see :func:`apply_corrections` for ``()`` and ``("empty",)``.
    mapping : str, Path or mapping of str to str, optional
        Model label -> dataset class, probabilities summed per class: a mapping file
        (``model_label,dataset_class``) or a dict. Default: the run folder's ``mapping.csv``
        when there is one.
    score_unknown : bool
        Keep images whose only labels the model cannot predict ("not scorable"), scored as
        errors; default: leave them out (listed in ``label_space.not_scorable``).

    Returns
    -------
    EvalSet
        Rows in dataset order, one per predicted image that has at least one label (and,
        unless ``score_unknown``, one the model can predict). Images without any label
        (none annotated, or corrected to ``()``) are left out and logged. ``label_space``
        says how the class lists met.

    Raises
    ------
    PredictionsError
        A predicted id is not in the dataset.
    analysis.labelspace.LabelSpaceError
        No class in common, or a bad mapping file (file, line and reason).
    CorrectionsError
        A correction names an unknown class or is malformed.
    """
    run_classes = list(run.classes)
    mapping_, source = resolve_mapping(run.path, run_classes, dataset.classes, mapping)
    space = model_space(run_classes, dataset.classes, mapping_, source=source,
                        where=str(run.path))
    classes = list(space.classes)
    images = dataset.images
    pred_rows, data_rows, missing = _align(dataset, run)
    if missing:
        log.warning("%d dataset image(s) have no prediction in %s, e.g. %s", len(missing),
                    run.path, missing[0])
    identity = bool(np.all(pred_rows == np.arange(len(pred_rows))))  # already in dataset order
    ids = run.image_ids if identity else run.image_ids[pred_rows]
    probs = space.probs(run.probs if identity else run.probs[pred_rows])
    # Columns of model labels outside the dataset stay False; unknown classes get labels.
    labels, primary = dataset.label_arrays_at(data_rows, classes)
    if corrections is not None and len(corrections):  # both arrays are fresh: edit in place
        apply_corrections(ids, labels, primary, classes, corrections)
    columns = [c for c in META_COLUMNS if c in images.columns and c != "split"]
    if len(data_rows) == len(images) and identity and np.array_equal(data_rows, pred_rows):
        meta = images[columns].reset_index(drop=True)  # every image in order: no row copy
    else:
        meta = images[columns].iloc[data_rows].reset_index(drop=True)
    split = run.split if identity else run.split[pred_rows]
    meta["split"] = pd.Categorical(split)
    keep = labels.any(axis=1)
    cols = space.dataset_columns
    own = (labels if np.array_equal(cols, np.arange(labels.shape[1]))  # no (n, C) copy
           else labels[:, cols])
    info = _label_space_info(space, run_classes, ids, own, split, keep, score_unknown)
    if info.n_not_scorable:
        log.warning("%d image(s) carry only classes the model cannot predict: %s",
                    info.n_not_scorable, "scored as errors" if score_unknown else "left out")
        if not score_unknown:
            keep = keep & ~pd.Index(ids).isin(info.not_scorable["image_id"])
    ev = EvalSet(classes=classes, image_ids=ids, probs=probs, labels=labels, primary=primary,
                 meta=meta, missing=missing, label_space=info)
    if not keep.all():
        log.warning("%d predicted image(s) are not evaluated (no label, or not scorable)",
                    int((~keep).sum()))
        ev = ev.subset(keep)
    if (ev.primary < 0).any():  # labelled but no primary (only possible via odd datasets)
        bad = np.flatnonzero(ev.primary < 0)
        ev.primary[bad] = ev.labels[bad].argmax(axis=1)
    return ev


def _label_space_info(space: ModelSpace, run_classes: list[str], ids: np.ndarray,
                      labels: np.ndarray, split: np.ndarray, labelled: np.ndarray,
                      score_unknown: bool) -> LabelSpaceInfo:
    """The labels the model cannot predict and the images that carry nothing else."""
    unknown_cols = np.flatnonzero(~space.predictable)
    names = np.asarray(space.dataset_classes, dtype=object)
    if len(unknown_cols):
        sub = labels[:, unknown_cols]
        r, c = np.nonzero(sub)
        unknown = pd.DataFrame({"image_id": ids[r], "class": names[unknown_cols][c],
                                "split": np.asarray(split)[r]})
        rows = np.flatnonzero(not_scorable(labels, space.predictable) & labelled)
    else:
        unknown = pd.DataFrame({"image_id": [], "class": [], "split": []}, dtype=object)
        rows = np.zeros(0, np.int64)
    r, c = np.nonzero(labels[rows])
    sets = pd.Series(names[c]).groupby(r).agg(";".join).reindex(range(len(rows)),
                                                                 fill_value="")
    not_scor = pd.DataFrame({"image_id": np.asarray(ids, dtype=object)[rows],
                             "labels": sets.to_numpy(object),
                             "split": np.asarray(split, dtype=object)[rows]})
    return LabelSpaceInfo(space=space, run_classes=tuple(run_classes), unknown_labels=unknown,
                          not_scorable=not_scor, scored_as_errors=score_unknown)


def at_level(ev: EvalSet, level: str = "label", *, taxonomy=None) -> EvalSet:
    """``ev`` with its classes rolled up to a taxonomic level (computed once per set and level).

    Probabilities are summed and labels united within each group
    (:func:`analysis.labelspace.rollup`: the three lion categories become *Panthera leo* at
    species level, the two gazelles meet in Bovidae at family level); the primary class
    becomes its group. ``label`` returns ``ev`` itself. Which images are scorable is decided
    at the label level, before the roll-up.

    Parameters
    ----------
    ev : EvalSet
    level : {"label", "species", "genus", "family", "order", "class"}
    taxonomy : data.taxonomy.Taxonomy, optional
        Default: the shipped Snapshot Serengeti table (unknown classes are their own taxon).

    Returns
    -------
    EvalSet

    Examples
    --------
    >>> ev = evalset_from_arrays(np.array([[0.2, 0.3, 0.5]]), np.array([0]),
    ...                          classes=["lionmale", "lionfemale", "zebra"])
    >>> up = at_level(ev, "species")
    >>> up.classes, up.probs.tolist(), up.primary.tolist()
    (['Panthera leo', 'Equus quagga'], [[0.5, 0.5]], [0])
    """
    if level not in TAXON_LEVELS:
        raise ValueError(f"taxon level must be one of {', '.join(TAXON_LEVELS)}, got {level!r}")
    if level == "label":
        return ev
    key = f"level:{level}"
    if key in ev._cache and taxonomy is None:
        return ev._cache[key]
    probs, labels, groups = rollup(ev.probs, ev.labels, ev.classes, level, taxonomy=taxonomy)
    pos = {g: i for i, g in enumerate(groups)}
    from data.taxonomy import load_taxonomy  # the table is read once (cached)

    tax = load_taxonomy() if taxonomy is None else taxonomy
    group_of_class = np.array([pos[g] for g in tax.group_of(ev.classes, level)], np.int64)
    primary = np.where(ev.primary >= 0, group_of_class[np.maximum(ev.primary, 0)], -1)
    info = (replace(ev.label_space, taxon_level=level) if ev.label_space is not None else None)
    out = EvalSet(classes=groups, image_ids=ev.image_ids, probs=probs, labels=labels,
                  primary=primary, meta=ev.meta, missing=ev.missing, label_space=info,
                  origin=None if ev.origin is None else (ev.origin, "taxon", level))
    if taxonomy is None:
        ev._cache[key] = out
    return out


def evalset_from_arrays(probs: np.ndarray, labels: np.ndarray, *, classes: list[str] | None = None,
                        primary: np.ndarray | None = None, meta: pd.DataFrame | None = None,
                        image_ids: np.ndarray | None = None) -> EvalSet:
    """An :class:`EvalSet` straight from arrays (tests, benchmarks, notebooks).

    Parameters
    ----------
    probs : ndarray, shape (n, C)
    labels : ndarray, shape (n,) of int (single label) or (n, C) of bool (label sets)
    classes : list of str, optional
        Default ``["c0", "c1", ...]``.
    primary : ndarray of int, shape (n,), optional
        Default: the single label, or the lowest-index label of each set.
    meta : DataFrame, optional
        Default: ``image_id`` plus ``seq_id`` = one capture per image.
    image_ids : ndarray of str, optional
    """
    probs = np.asarray(probs)
    n, c = probs.shape
    labels = np.asarray(labels)
    if labels.ndim == 1:
        primary = labels.astype(np.int64) if primary is None else primary
        mat = np.zeros((n, c), bool)
        mat[np.arange(n), labels] = True
        labels = mat
    if primary is None:
        primary = labels.argmax(axis=1)
    if image_ids is None:
        image_ids = np.array([f"img{i}" for i in range(n)], dtype=object)
    if meta is None:
        meta = pd.DataFrame({"image_id": image_ids, "seq_id": image_ids})
    return EvalSet(classes=list(classes) if classes is not None else [f"c{i}" for i in range(c)],
                   image_ids=np.asarray(image_ids), probs=probs,
                   labels=labels.astype(bool, copy=False),
                   primary=np.asarray(primary, dtype=np.int64),
                   meta=meta.reset_index(drop=True))


def _run_starts(seq: pd.Series) -> np.ndarray | None:
    """True where a row's value differs from the previous row's (row 0: True); None when the
    values are Python objects (comparing them would cost more than hashing them)."""
    n = len(seq)
    if pd.api.types.is_numeric_dtype(seq.dtype) and not isinstance(seq.dtype, pd.ArrowDtype):
        values = seq.to_numpy()
        differs = values[1:] != values[:-1]
    elif isinstance(seq.dtype, (pd.ArrowDtype, pd.StringDtype)) and seq.dtype != object:
        try:
            arr = pa.chunked_array(pa.array(seq.array))
        except (pa.ArrowException, TypeError, ValueError):
            return None
        differs = pc.fill_null(pc.not_equal(arr[1:], arr[:-1]), True).to_numpy(
            zero_copy_only=False)
    else:
        return None
    return np.r_[True, differs] if n else np.zeros(0, bool)


def _factorize_runs(seq: pd.Series) -> tuple[np.ndarray, int]:
    """``pd.factorize(seq)`` codes (int64, -1 for missing) and the number of distinct values.

    Frames of a capture are usually adjacent: only the first row of each run of equal values
    is hashed, and its code is spread over the run (first-appearance order is unchanged).
    """
    starts = _run_starts(seq)
    if starts is None:
        codes, uniques = pd.factorize(seq, use_na_sentinel=True)
        return codes.astype(np.int64, copy=False), len(uniques)
    heads = np.flatnonzero(starts)
    run = np.cumsum(starts, dtype=np.int64)
    run -= 1
    if pd.api.types.is_numeric_dtype(seq.dtype) and not isinstance(seq.dtype, pd.ArrowDtype):
        first = seq.to_numpy()[heads]
        if np.all(first[1:] > first[:-1]):  # sorted ids (no NaN): every run is a new value
            return run, len(heads)
    head_codes, uniques = pd.factorize(seq.iloc[heads], use_na_sentinel=True)
    return head_codes.astype(np.int64, copy=False)[run], len(uniques)


def capture_codes(ev: EvalSet) -> tuple[np.ndarray, int]:
    """Integer capture (``seq_id``) code per row and the number of captures.

    Rows with a missing ``seq_id`` are captures of their own. Computed once per EvalSet.

    Returns
    -------
    codes : ndarray of int64, shape (n,)
        Values in ``0 .. n_groups-1``.
    n_groups : int
    """
    if "groups" not in ev._cache:
        seq = ev.meta["seq_id"] if "seq_id" in ev.meta.columns else pd.Series(ev.image_ids)
        codes, n_groups = _factorize_runs(seq)
        na = np.flatnonzero(codes < 0)
        if len(na):
            codes[na] = n_groups + np.arange(len(na))
            n_groups += len(na)
        ev._cache["groups"] = (codes, n_groups)
    return ev._cache["groups"]


AGGREGATIONS = ("mean", "max", "vote")


def _group_layout(codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows ordered by group, CSR ``indptr``): group g owns ``order[indptr[g]:indptr[g+1]]``.

    Codes from :func:`capture_codes` number groups by first appearance, so the first row of
    group g is ``order[indptr[g]]`` and group order is first-appearance order.
    """
    if len(codes) and np.all(codes[1:] >= codes[:-1]):  # the usual case: frames contiguous
        order = np.arange(len(codes))
    else:
        order = np.argsort(codes, kind="stable")
    indptr = np.r_[0, np.cumsum(np.bincount(codes, minlength=n_groups))]
    return order, indptr


def _group_reduce(values: np.ndarray, order: np.ndarray, indptr: np.ndarray, op
                  ) -> np.ndarray:
    """Per-group ``op``-reduction of rows (max, logical or), one gather per frame position:
    captures are short, so this touches each row once."""
    sizes = np.diff(indptr)
    first = indptr[:-1]
    out = values[order[first]]
    live = np.arange(len(sizes))
    for j in range(1, int(sizes.max()) if len(sizes) else 0):
        live = live[sizes[live] > j]
        out[live] = op(out[live], values[order[first[live] + j]])
    return out


def _group_union(labels: np.ndarray, order: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Per-group union of boolean label rows: rows packed into 64-bit words, then one 1-D
    ``bitwise_or.reduceat`` per word (a 61-class row is a single word)."""
    n, c = labels.shape
    if n == 0:
        return np.zeros((len(indptr) - 1, c), bool)
    n_words = -(-c // 64)
    packed = np.packbits(labels, axis=1)
    if packed.shape[1] != n_words * 8:  # pad rows to whole words
        packed = np.concatenate([packed, np.zeros((n, n_words * 8 - packed.shape[1]),
                                                  np.uint8)], axis=1)
    words = packed.view(np.uint64)
    if not _is_identity(order):
        words = words[order]
    out = np.empty((len(indptr) - 1, n_words), np.uint64)
    for w in range(n_words):
        out[:, w] = np.bitwise_or.reduceat(words[:, w], indptr[:-1])
    return np.unpackbits(out.view(np.uint8), axis=1, count=c).view(bool)


def _is_identity(order: np.ndarray) -> bool:
    """Whether ``order`` is ``arange(len(order))`` (frames already grouped)."""
    return bool(len(order) == 0 or (order[0] == 0 and order[-1] == len(order) - 1
                                    and np.all(order[1:] > order[:-1])))


def aggregate_sequences(ev: EvalSet, *, how: str = "mean") -> EvalSet:
    """One row per capture: frame probabilities aggregated, label sets united.

    Parameters
    ----------
    ev : EvalSet
        Image-level rows; captures are ``meta["seq_id"]`` (missing ids: one capture per row).
    how : {"mean", "max", "vote"}
        ``mean``: mean of frame probabilities. ``max``: per-class maximum over frames,
        renormalised to sum to 1. ``vote``: share of frames whose arg-max is each class (ties
        go to the lower class index).

    Returns
    -------
    EvalSet
        Rows in order of first appearance (captures without ``seq_id`` last). ``labels`` =
        union of the frames' label sets, ``primary`` = first frame's primary class,
        ``image_ids`` and ``meta`` from the first frame, with an extra ``meta["n_frames"]``
        (frames present).

    Examples
    --------
    Frames [0.9, 0.1] and [0.3, 0.7] average to [0.6, 0.4]; ``max`` gives
    [0.9, 0.7] / 1.6; ``vote`` gives [0.5, 0.5] (class 0 wins the tie).
    """
    if how not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {how!r}")
    key = f"aggregate:{how}"  # memoised: computed once per set (see analysis.prepare)
    if key not in ev._cache:
        ev._cache[key] = _aggregate(ev, how)
    return ev._cache[key]


def _aggregate(ev: EvalSet, how: str) -> EvalSet:
    codes, n_groups = capture_codes(ev)
    order, indptr = _group_layout(codes, n_groups)
    sizes = np.diff(indptr)
    first = order[indptr[:-1]]
    # Sparse (captures x images) membership matrix: one pass over the probabilities.
    member = sparse.csr_matrix((np.ones(len(ev), np.float32), order, indptr),
                               shape=(n_groups, len(ev)))
    if how == "mean":
        probs = np.asarray(member @ ev.probs, dtype=np.float32)
        probs /= sizes[:, None].astype(np.float32)
    elif how == "max":
        probs = _group_reduce(ev.probs, order, indptr, np.maximum).astype(np.float32,
                                                                          copy=False)
        probs /= probs.sum(axis=1, keepdims=True)
    else:
        # Vote counts: (captures x images) @ one-hot arg-max, as a sparse product.
        onehot = sparse.csr_matrix((np.ones(len(ev), np.float32), ev.pred,
                                    np.arange(len(ev) + 1)), shape=(len(ev), ev.n_classes))
        probs = (member @ onehot).toarray()
        probs /= sizes[:, None].astype(np.float32)
    labels = _group_union(ev.labels, order, indptr)
    meta = ev.meta.iloc[first].reset_index(drop=True)
    meta["n_frames"] = sizes.astype(np.int32)
    return EvalSet(classes=ev.classes, image_ids=ev.image_ids[first], probs=probs,
                   labels=labels, primary=ev.primary[first], meta=meta, missing=ev.missing,
                   label_space=ev.label_space)


def select_split(ev: EvalSet, split: str | None) -> EvalSet:
    """Rows of ``ev`` predicted in ``split`` (all rows for None).

    Raises
    ------
    ValueError
        No row has that split (the message lists the splits there are).
    """
    if split is None:
        return ev
    values = (ev.meta["split"].astype("string") if "split" in ev.meta.columns
              else pd.Series(pd.NA, index=ev.meta.index, dtype="string"))
    mask = values.eq(split).fillna(False).to_numpy(bool)
    if not mask.any():
        known = sorted(values.dropna().unique().tolist())
        raise ValueError(f"--split {split!r}: no prediction has that split (splits: {known})")
    out = ev.subset(mask)
    if ev.label_space is not None:
        out.label_space = ev.label_space.in_split(split)
    return out
