"""Cached loaders: every heavy object the pages need, keyed by file path AND mtime.

A cache key always includes ``stamp(path)`` (path, mtime, size), so a rewritten dataset, run or
curation database is picked up on the next interaction without restarting the server.

Two cache kinds, on purpose:

- ``st.cache_resource`` for the large immutable objects (``Dataset``, ``Run``, ``EvalSet``):
  ``st.cache_data`` would pickle-copy a (n, C) probability array on every rerun, which alone
  breaks the 1 s budget on big runs. Callers must treat them as read-only.
- ``st.cache_data`` for derived tables and figures (small, and copies keep pages honest):
  ``cached_table(view, fn, *args, **kwargs)`` keys them on ``fn``'s qualified name, a digest
  of its arguments and the view, so no argument can be left out of the key by hand.

This is the dashboard's only cache that lives across reruns; per-object look-ups (arg-max,
targets, id and capture indexes) are memoised on the ``EvalSet`` itself. A SQLite connection
is never cached: the corrections are read fresh whenever the database's mtime changes.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st

from dashboard.config import Config, ConfigError
from data.paths import resolve_images_root

if TYPE_CHECKING:  # pragma: no cover
    from analysis.evalset import EvalSet
    from dashboard.state import ViewState
    from data.cct import Dataset
    from data.runs import Run

log = logging.getLogger(__name__)

Stamp = tuple[str, int, int]

#: What a broken dataset, run or image raises while loading; ``app.py`` shows a friendly page.
LOAD_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


def data_errors() -> tuple[type[BaseException], ...]:
    """The specific bad-input errors (DatasetError, PredictionsError, ImageError, ConfigError).

    Narrower than ``LOAD_ERRORS``: around page code a plain ``ValueError`` is a bug and must
    surface as one.
    """
    from data.cct import DatasetError
    from data.images import ImageError
    from data.runs import PredictionsError
    from analysis.labelspace import LabelSpaceError

    return (ConfigError, OSError, DatasetError, PredictionsError, ImageError, LabelSpaceError)


def stamp(path: str | Path) -> Stamp:
    """``(resolved path, mtime_ns, size)``; ``(path, 0, 0)`` when the file is absent."""
    p = Path(path).expanduser().resolve()
    try:
        st_ = p.stat()
    except OSError:
        return (str(p), 0, 0)
    return (str(p), st_.st_mtime_ns, st_.st_size)


def _run_stamp(run_dir: str | Path) -> tuple[Stamp, ...]:
    from data.runs import run_stamp

    return run_stamp(run_dir)


def _curation_stamp() -> tuple[Stamp, ...]:
    from data.paths import curation_db

    db = curation_db()
    # SQLite in WAL mode writes to the -wal file first; its mtime counts too.
    return (stamp(db), stamp(str(db) + "-wal"))


# --- runs -----------------------------------------------------------------------------------

def list_runs(runs_dir: str | Path) -> list[str]:
    """Names of the run folders in ``runs_dir`` (sorted by name, as ``data.runs.list_runs``)."""
    d = Path(runs_dir)
    if not d.is_dir():
        raise ConfigError(
            f"The runs folder {d} does not exist.",
            "Point the dashboard at a folder of run folders: `python -m dashboard --runs DIR` "
            "or set TRAPLENS_RUNS. `make demo` creates demo runs under workspace/runs.")
    names = _list_runs_cached(str(d.resolve()), stamp(d))
    if not names:
        raise ConfigError(
            f"No run folders (manifest.json + predictions.parquet) in {d}.",
            "Write one with `python -m training.predict ... --out DIR/<run>` (or `make demo`), "
            "then reload this page.")
    return names


@st.cache_data(show_spinner=False, max_entries=16)
def _list_runs_cached(runs_dir: str, dir_stamp: Stamp) -> list[str]:
    from data.runs import list_runs as io_list_runs

    return [Path(p).name for p in io_list_runs(runs_dir)]


def load_run(run_dir: str | Path) -> "Run":
    """``data.runs.load_run`` cached by the manifest's and predictions' mtimes."""
    return _load_run_cached(str(Path(run_dir).resolve()), _run_stamp(run_dir))


@st.cache_resource(show_spinner="Loading run…", max_entries=8)
def _load_run_cached(run_dir: str, stamps: tuple[Stamp, ...]) -> "Run":
    from data.runs import load_run as io_load_run

    return io_load_run(run_dir)



_PRELOADED: set[tuple] = set()
_PRELOAD_LOCK = threading.Lock()
_PRELOAD_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="traplens-preload")


def preload_run(run_dir: str | Path) -> None:
    """Start reading ``run_dir`` (``load_run``) in the background, once per version of its
    files. The sidebar calls it before loading the dataset, so that reading the predictions
    overlaps with the dataset (a 7.2 M run takes seconds of each); a page that asks for the
    run meanwhile waits on the same cache entry. Errors surface on the page that uses it."""
    key = (str(Path(run_dir).resolve()), _run_stamp(run_dir))
    with _PRELOAD_LOCK:
        if key in _PRELOADED:
            return
        _PRELOADED.add(key)
    _PRELOAD_POOL.submit(_preload, key)


def _preload(key: tuple) -> None:
    try:
        _load_run_cached(*key)
    except LOAD_ERRORS as exc:  # shown by the page that needs the run
        log.info("preload of %s failed: %s", key[0], exc)


def detector_scores(run_dir: str | Path) -> Any:
    """An imported run's detector confidences (image_id -> float Series), or None
    (``data.imports.read_detector_scores``), cached by the file's stamp."""
    from data.imports.common import DETECTOR_FILE

    return _detector_scores_cached(str(Path(run_dir).resolve()),
                                   stamp(Path(run_dir) / DETECTOR_FILE))


@st.cache_data(show_spinner=False, max_entries=8)
def _detector_scores_cached(run_dir: str, file_stamp: Stamp) -> Any:
    from data.imports import read_detector_scores

    return read_detector_scores(run_dir)


@st.cache_data(show_spinner=False, max_entries=32)
def read_manifest(run_dir: str, file_stamp: Stamp | None = None) -> dict[str, Any]:
    """The run's ``manifest.json`` as a dict (cheap; used before the predictions load)."""
    from data.runs import MANIFEST, PredictionsError
    from data.runs import read_manifest as runs_read_manifest

    try:
        return runs_read_manifest(run_dir)
    except PredictionsError as exc:
        hint = ("Re-run prediction to rewrite the run folder."
                if (Path(run_dir) / MANIFEST).exists() else
                "Every run folder needs a manifest.json written by `python -m training.predict`.")
        raise ConfigError(str(exc), hint) from exc


# --- dataset --------------------------------------------------------------------------------

def resolve_data(cfg: Config, run_dir: str | Path) -> tuple[list[str], str | None]:
    """Dataset JSON paths and image root: the environment's, else those in the run's manifest."""
    paths = list(cfg.dataset_paths)
    images = cfg.images_root
    if not paths or not images:
        ds = read_manifest(str(run_dir), stamp(Path(run_dir) / "manifest.json")).get(
            "dataset") or {}
        base = Path(run_dir)
        if not paths:
            paths = [str((base / p).resolve()) if not Path(p).is_absolute() else p
                     for p in ds.get("paths") or []]
        images = resolve_images_root(ds.get("images_root"), override=images)
    if not paths:
        raise ConfigError(
            "No dataset is configured and the run's manifest names none.",
            "Pass the COCO Camera Traps JSON file(s): `python -m dashboard --dataset "
            "SnapshotSerengetiS01.json ... --images ROOT --runs DIR`, or set TRAPLENS_DATASET "
            "(several files joined with the path separator).")
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise ConfigError(
            f"Dataset file not found: {missing[0]}",
            "Check --dataset / TRAPLENS_DATASET; it must name existing COCO Camera Traps JSON "
            "files (e.g. SnapshotSerengetiS01.json from LILA).")
    return paths, images


def load_dataset(paths: Sequence[str | Path]) -> "Dataset":
    """``data.cct.load_dataset`` over several JSON files, cached by each file's mtime."""
    stamps = tuple(stamp(p) for p in paths)
    return _load_dataset_cached(stamps)


@st.cache_resource(show_spinner="Loading dataset…", max_entries=4)
def _load_dataset_cached(stamps: tuple[Stamp, ...]) -> "Dataset":
    from data.cct import load_dataset as cct_load_dataset

    return cct_load_dataset([s[0] for s in stamps])


def sites_file(paths: Sequence[str | Path], name: str, data: bytes) -> str:
    """An uploaded camera-sites CSV, saved under the cache folder and checked against the
    dataset of ``paths`` (every deployment has coordinates): its path, for the ``locations``
    of ``data.curation.camtrapdp.export_camtrapdp``.

    Raises ``data.curation.ExportError`` naming the file, row, field and value at fault.
    """
    return _sites_file_cached(tuple(stamp(p) for p in paths), Path(name).name, data)


@st.cache_data(show_spinner="Checking the camera sites…", max_entries=4)
def _sites_file_cached(stamps: tuple[Stamp, ...], name: str, data: bytes) -> str:
    import hashlib

    from data.curation.camtrapdp import deployments, read_locations
    from data.paths import cache_dir

    folder = cache_dir() / "uploads" / hashlib.sha256(data).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name  # the user's file name, so messages name their file
    path.write_bytes(data)
    deployments(_load_dataset_cached(stamps), read_locations(path))
    return str(path)


@st.cache_data(show_spinner=False, max_entries=8)
def _slice_options_cached(stamps: tuple[Stamp, ...]) -> dict[str, list]:
    images = _load_dataset_cached(stamps).images

    def values(col: str) -> list:  # categorical columns: their used categories are the values
        col = images[col]
        if col.dtype == "category":
            codes = col.cat.codes.to_numpy()
            used = np.bincount(codes[codes >= 0], minlength=len(col.cat.categories)) > 0
            return sorted(map(str, col.cat.categories[used]))
        return sorted(col.dropna().astype(str).unique().tolist())

    return {
        "site": values("location"),
        "season": values("season"),
        "frame": sorted(int(f) for f in images["frame_num"].dropna().unique()),
    }


def slice_options(paths: Sequence[str | Path]) -> dict[str, list]:
    """Choices for the sidebar's slice widgets: sites, seasons and frame positions."""
    return _slice_options_cached(tuple(stamp(p) for p in paths))


def train_sites(view: "ViewState") -> tuple[list[str] | None, str | None]:
    """The sites the view's run trained on and their source
    (``analysis.decision.run_train_sites``); ``(None, None)`` for an imported run."""
    run_dir = Path(view.run_path)
    split_file = run_dir / "split.parquet"
    return _train_sites_cached(tuple(stamp(p) for p in view.dataset_paths), str(run_dir),
                               _run_stamp(run_dir), stamp(split_file))


@st.cache_data(show_spinner=False, max_entries=8)
def _train_sites_cached(ds: tuple, run_dir: str, run_st: tuple, split_st: Stamp):
    from analysis.decision import run_train_sites

    return run_train_sites(_load_run_cached(run_dir, run_st), _load_dataset_cached(ds))


# --- corrections and eval sets --------------------------------------------------------------

def corrections(paths: Sequence[str | Path]) -> Any:
    """Curated label corrections for the dataset (``DecisionStore.corrections``), or None."""
    db_stamps = _curation_stamp()
    if db_stamps[0][1] == 0:  # no database yet: nothing was curated
        return None
    return _corrections_cached(tuple(stamp(p) for p in paths), db_stamps)


@st.cache_resource(show_spinner=False, max_entries=4)
def _corrections_cached(ds_stamps: tuple[Stamp, ...], db_stamps: tuple[Stamp, ...]) -> Any:
    from data.curation import DecisionStore

    # DecisionStore opens a connection per call and holds none: only the corrections are cached.
    return DecisionStore(db_stamps[0][0]).corrections(_load_dataset_cached(ds_stamps))


def _view_key(view: "ViewState", run: str) -> tuple:
    ds = tuple(stamp(p) for p in view.dataset_paths)
    fix = _curation_stamp() if view.corrected else None
    run_dir = Path(view.runs_dir) / run
    # The run's mapping.csv (analysis.labelspace.MAPPING_FILE) joins its files' stamps: an
    # edited mapping rebuilds the eval set.
    mapping = (stamp(run_dir / "mapping.csv"), bool(view.score_unknown))
    return ds, str(run_dir.resolve()), _run_stamp(run_dir), fix, mapping


def _slice_key(view: "ViewState") -> tuple:
    """``view.slice_kwargs()`` as a hashable, sorted tuple (lists become tuples)."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                        for k, v in view.slice_kwargs().items()))


def full_evalset(view: "ViewState", *, run: str | None = None) -> "EvalSet":
    """The unfiltered image-level ``EvalSet`` of ``run`` (default: the view's run)."""
    return _full_evalset_cached(*_view_key(view, run or view.run))


_PREFETCH: dict[tuple, Future] = {}
COMPARE_RESAMPLES = 200  # the Compare page's paired bootstrap
_PREFETCH_LOCK = threading.Lock()
_PREFETCH_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="traplens-prefetch")


def prefetch(view: "ViewState", run: str) -> Future:
    """Start loading ``run``'s full ``EvalSet`` in the background; returns its future.

    The sidebar calls it for the comparison run as soon as one is chosen, so the Compare page
    (seconds of loading at 1 M images) usually finds it ready, with its comparison of the two
    runs (for the view of that moment) computed too; a page that asks earlier waits on the
    same cache entry instead of loading twice. Errors surface on the page that uses the run,
    not here.
    """
    key = _view_key(view, run)
    with _PREFETCH_LOCK:
        fut = _PREFETCH.get(key)
        if fut is None:  # compared for the view of the moment only: later filter changes
            pair = (_view_key(view, view.run), _slice_key(view), view.policy)  # cost nothing
            fut = _PREFETCH_POOL.submit(_prefetch_run, key, pair)
            _PREFETCH[key] = fut
    return fut


def wait_prefetched(timeout: float | None = None) -> None:
    """Block until every background load started by ``prefetch``, and every preparation
    (``analysis.prepare``) of a loaded run, has finished (benchmarks)."""
    with _PREFETCH_LOCK:
        futures = list(_PREFETCH.values())
    for fut in futures:
        fut.exception(timeout=timeout)
    with _PREPARE_LOCK:
        futures = [fut for fut, _ in _PREPARE.values()]
    for fut in futures:
        fut.exception(timeout=timeout)


# What every page needs once per run (losses, arg-max, captures, calibration inputs) is
# computed in the background as soon as the run's EvalSet is built, on its own thread so that
# the Compare run's prefetch does not queue behind it. Pages that need it call ``preparation``
# and show its progress (``components.wait_prepared``) instead of computing it themselves.
_PREPARE: dict[tuple, tuple[Future, dict]] = {}
_PREPARE_LOCK = threading.Lock()
_PREPARE_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="traplens-prepare")


def _start_prepare(key: tuple, ev: "EvalSet") -> None:
    from analysis.prepare import prepare

    progress = {"fraction": 0.0, "step": "queued"}

    def report(fraction: float, step: str) -> None:
        progress.update(fraction=fraction, step=step)

    def run() -> None:
        try:
            prepare(ev, run_dir=key[1], progress=report)
        except Exception:  # the page computes what is missing itself and shows the error
            log.exception("preparing %s failed", key[1])

    with _PREPARE_LOCK:
        if key not in _PREPARE:
            _PREPARE[key] = (_PREPARE_POOL.submit(run), progress)


def preparation(view: "ViewState", *, run: str | None = None) -> tuple[float, str] | None:
    """``(fraction done, current step)`` while the run's once-per-run tables are being
    prepared in the background; None when they are ready. Loads the run first if needed
    (which starts its preparation)."""
    full_evalset(view, run=run)
    with _PREPARE_LOCK:
        entry = _PREPARE.get(_view_key(view, run or view.run))
    if entry is None or entry[0].done():
        return None
    return entry[1]["fraction"], entry[1]["step"]


def _prefetch_run(key: tuple, pair: tuple) -> None:
    """Load the comparison run, then compare the view's run with it as the Compare page will
    (``analysis.compare.compare`` keeps the result on the view's set)."""
    try:
        _full_evalset_cached(*key)
        view_key, slices, policy = pair
        if view_key == key:  # the run compared with itself: nothing to prepare
            return
        with _PREPARE_LOCK:  # after the run's own preparation: their temporaries never meet
            preparing = _PREPARE.get(key)
        if preparing is not None:
            preparing[0].exception()
        from analysis.compare import compare

        compare(_evalset_cached(*view_key, slices, "image"),
                _evalset_cached(*key, slices, "image"), policy=policy,
                n_resamples=COMPARE_RESAMPLES)
    except LOAD_ERRORS as exc:  # shown by the page that needs the run
        log.info("prefetch of %s failed: %s", key[1], exc)
        with _PREFETCH_LOCK:
            _PREFETCH.pop(key, None)


@st.cache_resource(show_spinner="Joining predictions and labels…", max_entries=8)
def _full_evalset_cached(ds: tuple, run_dir: str, run_st: tuple, fix: tuple | None,
                         mapping: tuple) -> "EvalSet":
    from analysis.evalset import build_evalset

    dataset = _load_dataset_cached(ds)
    run = _load_run_cached(run_dir, run_st)
    corr = _corrections_cached(ds, fix) if fix is not None and fix[0][1] else None
    # The run folder's mapping.csv is read by build_evalset itself (stamped in ``mapping``).
    ev = build_evalset(dataset, run, corrections=corr, score_unknown=mapping[1])
    ev.origin = ("evalset", ds, run_dir, run_st, fix, mapping)  # its files' stamps name it
    _start_prepare((ds, run_dir, run_st, fix, mapping), ev)
    return ev


def evalset(view: "ViewState", *, run: str | None = None, level: str = "image") -> "EvalSet":
    """The view's image-level ``EvalSet``: split and slice filters applied, corrections if on.

    ``level="sequence"`` aggregates the filtered images into one row per capture
    (``analysis.evalset.aggregate_sequences``, mean of frame probabilities; first frame's
    id and metadata); pages pass ``view.level`` where the level matters.
    """
    return _evalset_cached(*_view_key(view, run or view.run), _slice_key(view), level)


@st.cache_resource(show_spinner=False, max_entries=32)
def _evalset_cached(ds: tuple, run_dir: str, run_st: tuple, fix: tuple | None,
                    mapping: tuple, kwargs: tuple, level: str) -> "EvalSet":
    full = _full_evalset_cached(ds, run_dir, run_st, fix, mapping)
    args = {k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs}
    if any(v is not None for v in args.values()):
        from analysis.slices import slice_mask

        ev = full.subset(np.asarray(slice_mask(full.meta, **args), dtype=bool))
    else:
        ev = full
    if level == "sequence":
        from analysis.evalset import aggregate_sequences

        ev = aggregate_sequences(ev, how="mean")
    if ev is not full:
        ev.origin = (full.origin, kwargs, level)
    return ev


def calibrated_evalset(view: "ViewState", temperature: float | None, *,
                       level: str = "image") -> "EvalSet":
    """The view's ``EvalSet`` with a fitted temperature applied (None: as is), at ``level``
    (``analysis.decision.calibrated_level``); cached like ``evalset``."""
    if temperature is None:
        return evalset(view, level=level)
    return _calibrated_cached(*_view_key(view, view.run), _slice_key(view), float(temperature),
                              level)


@st.cache_resource(show_spinner="Applying the fitted temperature…", max_entries=8)
def _calibrated_cached(ds: tuple, run_dir: str, run_st: tuple, fix: tuple | None,
                       mapping: tuple, kwargs: tuple, temperature: float,
                       level: str) -> "EvalSet":
    from analysis.decision import calibrated_level

    return calibrated_level(_evalset_cached(ds, run_dir, run_st, fix, mapping, kwargs, "image"),
                            temperature, level=level)


def targets(view: "ViewState", *, run: str | None = None,
            level: str = "image") -> tuple[np.ndarray, np.ndarray]:
    """``analysis.evalset.targets`` of the view's eval set under the view's scoring policy.

    The cached ``EvalSet`` memoises its targets, so repeated calls cost nothing.
    """
    from analysis.evalset import targets as ev_targets

    return ev_targets(evalset(view, run=run, level=level), policy=view.policy)


def confusion(view: "ViewState", *, run: str | None = None, level: str = "image") -> np.ndarray:
    """The (C, C) confusion matrix of the view (rows actual, columns predicted)."""
    from analysis.metrics import confusion as metrics_confusion

    ev = evalset(view, run=run, level=level)
    y_true, y_pred = targets(view, run=run, level=level)
    return metrics_confusion(y_true, y_pred, len(ev.classes))


def evaluate(view: "ViewState", *, run: str | None = None, level: str = "image",
             n_resamples: int = 200) -> dict:
    """``analysis.metrics.evaluate`` of the view's filtered eval set (with bootstrap intervals)."""
    return _evaluate_cached(*_view_key(view, run or view.run), _slice_key(view), level,
                            view.policy, n_resamples)


@st.cache_data(show_spinner="Scoring…", max_entries=64)
def _evaluate_cached(ds, run_dir, run_st, fix, mapping, kwargs, level, policy,
                     n_resamples) -> dict:
    from analysis.metrics import evaluate as metrics_evaluate

    # evaluate() does the sequence aggregation itself: give it the filtered image-level set.
    ev = _evalset_cached(ds, run_dir, run_st, fix, mapping, kwargs, "image")
    return metrics_evaluate(ev, policy=policy, level=level, n_resamples=n_resamples)


#: View fields that change no table of the view's run: choosing a comparison run or presenter
#: mode must not recompute every page (at 1 M images that is seconds). A table that depends on
#: the comparison run gets it through an argument (its ``EvalSet``), which is part of the key.
_KEY_IGNORES = ("vs", "present")


def _table_key(view: "ViewState") -> tuple:
    query = tuple(sorted((k, str(v)) for k, v in view.query().items() if k not in _KEY_IGNORES))
    return _view_key(view, view.run), query


def run_version(view: "ViewState", run: str) -> str:
    """``run`` and its files' mtimes and sizes: a readable label of the run's current files."""
    stamps = _run_stamp(Path(view.runs_dir) / run)
    return run + ":" + ",".join(f"{m}-{n}" for _, m, n in stamps)


def _feed(h: Any, value: Any) -> None:
    """Feed ``value`` into the hash ``h``, tagged by type so ``1``, ``"1"`` and ``[1]`` differ."""
    import pandas as pd

    from analysis.evalset import EvalSet

    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        h.update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, np.generic):
        h.update(f"np.{value.dtype.str}:{value.item()!r};".encode())
    elif isinstance(value, EvalSet):
        h.update(b"EvalSet:" + value.fingerprint().encode() + b";")
    elif isinstance(value, np.ndarray):
        h.update(f"ndarray:{value.dtype.str}:{value.shape};".encode())
        if value.dtype.hasobject:
            for item in value.ravel():
                _feed(h, item)
        else:
            h.update(np.ascontiguousarray(value).view(np.uint8).reshape(-1).data)
    elif isinstance(value, (pd.DataFrame, pd.Series, pd.Index)):
        frame = value.to_frame() if isinstance(value, (pd.Series, pd.Index)) else value
        h.update(f"{type(value).__name__}:{list(frame.columns)!r}:"
                 f"{[str(t) for t in frame.dtypes]!r};".encode())
        h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().data)
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        h.update(f"{type(value).__name__}[{len(items)}];".encode())
        for item in items:
            _feed(h, item)
    elif isinstance(value, dict):
        h.update(f"dict[{len(value)}];".encode())
        for k in sorted(value, key=repr):
            _feed(h, k)
            _feed(h, value[k])
    elif callable(value):
        h.update(b"fn:" + _function_name(value).encode() + b";")
    else:
        raise TypeError(f"cached_table: cannot derive a cache key from a {type(value).__name__} "
                        f"argument ({value!r:.80}); pass arrays, tables, EvalSets or plain values")


def _function_name(fn: Any) -> str:
    """``module.qualname`` of a module-level function; refuses closures and lambdas, whose
    captured values would not be part of the key."""
    import functools

    if isinstance(fn, functools.partial):
        h = hashlib.blake2b(digest_size=16)
        _feed(h, (fn.args, fn.keywords))
        return f"partial({_function_name(fn.func)}, {h.hexdigest()})"
    if getattr(fn, "memoised", False):  # analysis.evalset.memoised: name the function itself
        fn = fn.__wrapped__
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"
    if "<" in name or getattr(fn, "__closure__", None):
        raise TypeError(f"cached_table: {name} is a lambda or closure; pass a module-level "
                        "function and its inputs as arguments, so they key the cache")
    return name


def call_key(fn: Any, args: tuple = (), kwargs: dict | None = None) -> str:
    """The cache key of ``fn(*args, **kwargs)``: the function's qualified name and a digest of
    every argument (``EvalSet.fingerprint`` for eval sets, the bytes of arrays and tables).

    Two calls share a cached result only when this key, and the view's, are equal.
    """
    h = hashlib.blake2b(digest_size=20)
    _feed(h, tuple(args))
    _feed(h, dict(kwargs or {}))
    return f"{_function_name(fn)}:{h.hexdigest()}"


def cached_table(view: "ViewState", fn, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` (a page's derived table), cached for this view.

    The key is :func:`call_key` (``fn``'s qualified name plus a digest of its arguments) and
    the view's files and filters: no hand-typed name, so an argument cannot be forgotten.
    ``fn`` must be a module-level function (``functools.partial`` of one is fine).
    """
    return _cached_table(call_key(fn, args, kwargs), _table_key(view), fn, args, kwargs)


@st.cache_data(show_spinner=False, max_entries=256)
def _cached_table(call: str, key: tuple, _fn, _args, _kwargs):
    return _fn(*_args, **_kwargs)


def cached_figure(view: "ViewState", fn, *args: Any, **kwargs: Any):
    """Like ``cached_table`` for a Plotly figure builder; returns a fresh ``go.Figure``.

    Use this (not ``cached_table``) for figures: a pickled figure comes back with its layout
    keys reordered, so its JSON, and with it the chart's widget id, changes between reruns,
    and ``st.plotly_chart(on_select=...)`` then drops the user's click. The figure is cached
    as its JSON text, which rebuilds identically every time.
    """
    import plotly.io as pio

    return pio.from_json(_cached_figure_json(call_key(fn, args, kwargs), _table_key(view),
                                             fn, args, kwargs))


@st.cache_data(show_spinner=False, max_entries=128)
def _cached_figure_json(call: str, key: tuple, _fn, _args, _kwargs) -> str:
    return _fn(*_args, **_kwargs).to_json()


# --- taxonomy and take-away files ----------------------------------------------------------

@st.cache_resource(show_spinner=False)
def taxonomy() -> Any:
    """The shipped taxonomy with its species facts (``data.taxonomy.load_taxonomy``), read once."""
    from data.taxonomy import load_taxonomy

    return load_taxonomy()


@st.cache_data(show_spinner=False, max_entries=64)
def figure_file(figure_json: str, fmt: str) -> bytes:
    """A slide figure (its Plotly JSON) as PNG or SVG bytes (``analysis.plots.figure_bytes``),
    cached by the JSON: a second download of the same figure costs nothing."""
    import plotly.io as pio

    from analysis.plots import figure_bytes

    return figure_bytes(pio.from_json(figure_json), format=fmt)
# --- out-of-distribution reference ----------------------------------------------------------

def ood_reference(view: "ViewState") -> tuple[Any, Any]:
    """``(analysis.ood.run_reference(run), data.embeddings.load_pca(run folder))`` of the
    view's run, cached by its files' stamps. Raises ``analysis.ood.OODError`` (a
    ``ValueError``) naming the run when it has no embeddings or no train/val split."""
    return _ood_reference_cached(str(view.run_path.resolve()), _run_stamp(view.run_path))


@st.cache_resource(show_spinner="Measuring what the run was trained on…", max_entries=4)
def _ood_reference_cached(run_dir: str, stamps: tuple[Stamp, ...]) -> tuple[Any, Any]:
    from analysis.ood import run_reference
    from data.embeddings import load_pca

    return run_reference(_load_run_cached(run_dir, stamps)), load_pca(run_dir)
