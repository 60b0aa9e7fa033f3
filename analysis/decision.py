"""Decision-grade evaluation of one run: what the report and the pages share.

The analysis lives in :mod:`analysis.generalisation`, :mod:`analysis.certify`,
:mod:`analysis.temperature` and :mod:`analysis.ecology`; this module joins them to a run and
an :class:`~analysis.evalset.EvalSet`: which sites the model trained on (the run's
``split.parquet``, its predictions' ``split`` column, or a file for imported runs), the
temperature fitted on the validation split and stored beside the run (``calibration.json``),
calibrated probabilities, and the ecology comparison of labels with the arg-max and with
"model where certified, people elsewhere".
"""
from __future__ import annotations

import copy
import csv
import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.certify import accept_mask, certify_for, thresholds_array
from analysis.ecology import (CaptureLayout, activity_curves, capture_layout, capture_table,
                              ecology)
from analysis.evalset import EvalSet, Policy, aggregate_sequences, capture_codes, targets
from analysis.generalisation import generalisation_for
from analysis.temperature import apply_temperature, calibration_fit
from data.runs import read_calibration, read_split_table, run_stamp, write_calibration

log = logging.getLogger(__name__)

#: Column names a train-sites CSV may use for the site.
SITE_COLUMNS = ("site", "location")
#: Rows of the validation split the temperature is fitted on at most (NLL is a mean).
FIT_ROWS = 500_000


class TrainSitesError(ValueError):
    """A train-sites file is unreadable or names no site; the message names file and row."""


def read_train_sites(path: str | Path) -> list[str]:
    """Training sites from a file: one site per line, or a CSV with a ``site``/``location``
    column (blank lines and duplicates ignored); see :func:`parse_train_sites`.

    Raises
    ------
    TrainSitesError
        Unreadable file, a CSV header without a site column, or no site at all.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrainSitesError(f"{path}: cannot read the train sites: {exc}") from exc
    return parse_train_sites(text, name=str(path))


def parse_train_sites(text: str, *, name: str = "train sites") -> list[str]:
    r"""Training sites from the text of a sites file (``name`` is used in messages).

    Examples
    --------
    >>> parse_train_sites("location,season\nB03,S1\nA01,S1\nB03,S2\n")
    ['A01', 'B03']
    >>> parse_train_sites("L01\n\nL02\n")
    ['L01', 'L02']
    """
    lines = [line for line in text.lstrip("\ufeff").splitlines() if line.strip()]
    if not lines:
        raise TrainSitesError(f"{name}: no site listed (one per line, or a CSV with a "
                              f"'site' or 'location' column)")
    if "," in lines[0] or "\t" in lines[0] or lines[0].strip().lower() in SITE_COLUMNS:
        rows = list(csv.reader(lines, delimiter="\t" if "\t" in lines[0] else ","))
        header = [h.strip().lower() for h in rows[0]]
        col = next((header.index(c) for c in SITE_COLUMNS if c in header), None)
        if col is None:
            raise TrainSitesError(f"{name}: row 1: no 'site' or 'location' column in "
                                  f"{rows[0]!r}")
        sites = []
        for i, row in enumerate(rows[1:], start=2):
            if col >= len(row):
                raise TrainSitesError(f"{name}: row {i}: no value in column "
                                      f"{header[col]!r}: {row!r}")
            sites.append(row[col].strip())
    else:
        sites = [line.strip() for line in lines]
    sites = sorted({s for s in sites if s})
    if not sites:
        raise TrainSitesError(f"{name}: no site listed")
    return sites


def train_sites_from_split(images: pd.DataFrame, split: pd.Series) -> list[str]:
    """Sites of the images a split assigns to ``train``.

    Parameters
    ----------
    images : DataFrame
        ``Dataset.images`` (``image_id``, ``location``).
    split : Series
        ``image_id -> split`` name.

    Examples
    --------
    >>> imgs = pd.DataFrame({"image_id": ["a", "b", "c"], "location": ["X", "Y", "X"]})
    >>> train_sites_from_split(imgs, pd.Series({"a": "train", "b": "val"}))
    ['X']
    """
    which = pd.Series(images["image_id"].astype(str)).map(pd.Series(split)).to_numpy()
    sites = images["location"].astype(object).to_numpy()[which == "train"]
    return sorted({str(s) for s in sites if pd.notna(s)})


def run_train_sites(run, dataset, *, train_sites_file: str | Path | None = None
                    ) -> tuple[list[str] | None, str | None]:
    """The sites a run trained on and where that came from.

    In order: ``train_sites_file`` (imported runs), the run's ``split.parquet``, the
    predictions' ``split`` column (when it holds ``train`` rows). ``(None, None)`` when none
    says: an imported run without a file.
    """
    if train_sites_file is not None:
        return read_train_sites(train_sites_file), str(train_sites_file)
    table = read_split_table(run.path)
    if table is not None:
        return train_sites_from_split(dataset.images, table), "split.parquet"
    split = np.asarray(run.split, dtype=object)
    if (split == "train").any():
        return (train_sites_from_split(dataset.images, pd.Series(split, index=run.image_ids)),
                "predictions.parquet (split column)")
    return None, None


def generalisation_report(ev: EvalSet, *, train_sites: list[str], source: str | None,
                          policy: Policy = "set", n_resamples: int = 200) -> dict:
    """:func:`analysis.generalisation.generalisation_for` on the images the model did not
    train on, plus where the training sites came from.

    Rows whose ``meta["split"]`` is ``train`` are left out (a model scored on its own
    training images says nothing about either seen or unseen sites); ``n_train_excluded``
    counts them. Adds ``train_sites_source`` and ``n_train_sites``.
    """
    n_train = 0
    if "split" in ev.meta.columns:
        is_train = ev.meta["split"].astype(str).to_numpy() == "train"
        n_train = int(is_train.sum())
        if n_train:
            ev = ev.subset(~is_train)
    out = generalisation_for(ev, train_sites=train_sites, policy=policy,
                             n_resamples=n_resamples)
    return {**out, "train_sites_source": source, "n_train_sites": len(train_sites),
            "n_train_excluded": n_train}


# --- fitted temperature ---------------------------------------------------------------------

def _stamp_key(run_dir: Path) -> list:
    return [[mtime, size] for _, mtime, size in run_stamp(run_dir)]


def fit_run_temperature(full: EvalSet, ev: EvalSet, *, run_dir: str | Path | None = None,
                        store: bool = True, n_bins: int = 15) -> dict | None:
    """Temperature fitted on the run's validation split, ECE before/after on ``ev``.

    Parameters
    ----------
    full : EvalSet
        Every prediction of the run (its ``meta["split"] == "val"`` rows are the fit set).
    ev : EvalSet
        The evaluated images (the chosen split and slices); when it is ``full`` itself, the
        result is memoised on it (the dashboard fits it in the background,
        :func:`analysis.prepare.prepare`).
    run_dir : path, optional
        The run folder: a ``calibration.json`` fitted on the same predictions is reused, and a
        new fit is written there (``store``; a read-only folder only logs a warning).
    n_bins : int

    Returns
    -------
    dict or None
        :func:`analysis.temperature.calibration_fit`'s block (``temperature, ece_before,
        ece_after, per_class, capture_level``) plus ``fitted_on`` ("val"), ``n_fit`` and
        ``stored`` (path of ``calibration.json`` or None); None without validation rows.
    """
    memo = (f"calibration_fit:{None if run_dir is None else Path(run_dir).resolve()}:"
            f"{store}:{n_bins}")
    if ev is full and memo in full._cache:  # the whole run: fitted once (analysis.prepare)
        return copy.deepcopy(full._cache[memo])
    split = full.meta["split"].astype(str).to_numpy() if "split" in full.meta else None
    val = np.flatnonzero(split == "val") if split is not None else np.zeros(0, np.int64)
    if not len(val) or not len(ev):
        return None
    run_dir = Path(run_dir) if run_dir is not None else None
    cached = read_calibration(run_dir) if run_dir is not None else None
    fresh = (cached is not None and cached.get("predictions") == _stamp_key(run_dir)
             and cached.get("fitted_on") == "val" and cached.get("n_fit") == len(val))
    val_ev = full.subset(split == "val")
    y_val = targets(val_ev, policy="set")[0]
    out = calibration_fit(val_ev.probs, y_val, ev.probs, ev.labels, classes=ev.classes,
                          eval_captures=capture_codes(ev)[0], n_bins=n_bins, max_rows=FIT_ROWS,
                          temperature=cached["temperature"] if fresh else None)
    out.update(fitted_on="val", n_fit=int(len(val)), stored=None)
    if run_dir is not None:
        if fresh:
            out["stored"] = str(run_dir / "calibration.json")
        elif store:
            record = {"temperature": out["temperature"], "fitted_on": "val",
                      "n_fit": int(len(val)), "method": "temperature scaling (NLL)",
                      "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                      "predictions": _stamp_key(run_dir)}
            try:
                out["stored"] = str(write_calibration(run_dir, record))
            except OSError as exc:
                log.warning("could not store the fitted temperature in %s: %s", run_dir, exc)
    if ev is full:
        full._cache[memo] = copy.deepcopy(out)
    return out


def calibrated(ev: EvalSet, temperature: float) -> EvalSet:
    """``ev`` with its probabilities replaced by ``softmax(log p / T)``, stored at the run's
    own precision (float16 runs stay float16: 0.9 GB, not 1.8, at 7.2 M x 61). The arg-max
    is ``ev``'s (temperature scaling keeps the order of a row; rounding could tie it)."""
    origin = None if ev.origin is None else (ev.origin, ("temperature", float(temperature)))
    dtype = np.float16 if ev.probs.dtype == np.float16 else np.float32
    return EvalSet(classes=ev.classes, image_ids=ev.image_ids,
                   probs=apply_temperature(ev.probs, temperature, dtype=dtype),
                   labels=ev.labels, primary=ev.primary, meta=ev.meta, missing=ev.missing,
                   origin=origin, _cache={"pred": ev.pred})


def calibrated_level(ev: EvalSet, temperature: float | None, *, level: str = "image"
                     ) -> EvalSet:
    """Image-level ``ev`` with temperature ``T`` applied (None: as is), then aggregated to
    captures (mean of the frames' calibrated probabilities) when ``level="sequence"``."""
    out = ev if temperature is None else calibrated(ev, temperature)
    return aggregate_sequences(out, how="mean") if level == "sequence" else out


# --- certification and ecology --------------------------------------------------------------

def certified_automation(ev: EvalSet, *, target: float = 0.95, confidence: float = 0.95
                         ) -> dict:
    """The report's ``certified_automation`` block: :func:`analysis.certify.certify_for` at
    image level, with the capture-level result under ``capture_level``."""
    out = certify_for(ev, target=target, confidence=confidence, level="image")
    out["capture_level"] = certify_for(ev, target=target, confidence=confidence,
                                       level="capture")
    return out


def ecology_for(ev: EvalSet, *, accept: np.ndarray | None = None,
                species: list[str] | None = None, site_species: str | None = None,
                n_resamples: int = 200, seed: int = 0) -> dict:
    """:func:`analysis.ecology.ecology` of an EvalSet: labels (label sets) against the
    arg-max, captures from ``seq_id``, sites from ``location``, times from ``datetime``.
    ``accept``: frames the model labels ("model where certified, people elsewhere")."""
    return ecology(model=ev.pred, classes=ev.classes, accept=accept, species=species,
                   site_species=site_species, n_resamples=n_resamples, seed=seed,
                   layout=layout_for(ev))


def layout_for(ev: EvalSet) -> CaptureLayout:
    """:func:`analysis.ecology.capture_layout` of an EvalSet (captures from ``seq_id``, sites
    from ``location``, times from ``datetime``, label sets), computed once per EvalSet: the
    arg-max and the certified comparisons and the activity curves share it."""
    if "capture_layout" not in ev._cache:
        ev._cache["capture_layout"] = capture_layout(
            captures=capture_codes(ev)[0], sites=ev.meta["location"],
            times=ev.meta["datetime"], labels=ev.labels, n_classes=len(ev.classes))
    return ev._cache["capture_layout"]


def activity_for(ev: EvalSet, species: str, *, accept: np.ndarray | None = None
                 ) -> pd.DataFrame:
    """Time-of-day densities of ``species`` from the labels and from the model
    (:func:`analysis.ecology.activity_curves`): ``hour, labels, model``."""
    table = capture_table(model=ev.pred, classes=ev.classes, accept=accept,
                          layout=layout_for(ev))
    return activity_curves(table, species)


def certified_accept(ev: EvalSet, *, target: float = 0.95) -> np.ndarray:
    """Which images "model where certified" lets the model label: arg-max at or above its
    class's certified threshold (:func:`analysis.certify.certify_for`, image level)."""
    return accept_mask(ev.probs, thresholds_array(certify_for(ev, target=target)))


def ecology_report(ev: EvalSet, *, target: float = 0.95, certification: dict | None = None,
                   site_species: str | None = None, n_resamples: int = 200) -> dict:
    """The report's ``ecology`` block: labels against the arg-max (top level), and against
    "model where certified (at ``target``), people elsewhere" under ``certified``."""
    out = ecology_for(ev, site_species=site_species, n_resamples=n_resamples)
    cert = certification if certification is not None else certify_for(ev, target=target)
    accept = accept_mask(ev.probs, thresholds_array(cert))
    mixed = ecology_for(ev, accept=accept, site_species=out["per_site"]["species"],
                        n_resamples=n_resamples)
    out["certified"] = {"target_precision": cert["target_precision"],
                        "share_model": float(accept.mean()) if len(accept) else 0.0,
                        "per_species": mixed["per_species"], "per_site": mixed["per_site"]}
    return out
