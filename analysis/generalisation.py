"""Generalisation: metrics at camera sites the model trained on ("seen") against new ones.

Accuracy drops at cameras a model never saw (Beery et al. 2018; Norman et al. 2023), so a
random image split that shares sites between training and test flatters a model. Every
evaluated image is assigned to ``seen`` (its site is in the training sites) or ``unseen``;
both get the headline metrics of :mod:`analysis.metrics` with capture-bootstrap intervals
(:func:`analysis.metrics.bootstrap`: whole captures are resampled, fixed seed), plus the
per-class F1 gap and a per-site table, worst site first.

Images without a site (``NaN``/``None``) belong to neither group: they are counted in
``n_unknown_site`` and get a ``site: None`` row in the per-site table.

The block is JSON-ready and carries the report keys ``seen``, ``unseen`` (each ``n,
accuracy, macro_f1, macro_f1_ci``) and ``per_site`` (``site, seen, n, accuracy, macro_f1,
macro_f1_ci``).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd

from analysis.evalset import EvalSet, Policy, capture_codes, targets
from analysis.metrics import bootstrap, confusion, per_class, summary

log = logging.getLogger(__name__)


class GeneralisationError(ValueError):
    """Inputs of the seen/unseen split do not line up (lengths, class indices)."""


def _ci(pair) -> list[float | None]:
    return [float(x) if np.isfinite(x) else None for x in pair]


def _block(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, n_classes: int, *,
           n_resamples: int, seed: int, level: float) -> tuple[dict, np.ndarray]:
    """Headline metrics of one group of images and its per-class F1."""
    cm = confusion(y_true, y_pred, n_classes)
    out = summary(cm)
    n = out["n"]
    ci = bootstrap(y_true, y_pred, groups, n_classes, n_resamples=n_resamples, level=level,
                   seed=seed)
    f1 = per_class(cm, [str(i) for i in range(n_classes)])["f1"].to_numpy()
    block = {"n": int(n), "n_captures": int(len(np.unique(groups))) if n else 0,
             "accuracy": out["accuracy"] if n else None,
             "macro_f1": out["macro_f1"] if n else None,
             "macro_f1_ci": _ci(ci["macro_f1_ci"]) if n_resamples else [None, None]}
    return block, f1


def generalisation(y_true: np.ndarray, y_pred: np.ndarray, *, sites, train_sites: Iterable,
                   captures: np.ndarray | None, classes: list[str], n_resamples: int = 200,
                   level: float = 0.95, seed: int = 0) -> dict:
    """Metrics at seen and at unseen camera sites, the per-class gap and a per-site table.

    Parameters
    ----------
    y_true, y_pred : ndarray of int, shape (n,)
        Class indices in ``0 .. len(classes)-1`` (e.g. from :func:`analysis.evalset.targets`).
    sites : array-like, shape (n,)
        Camera site of each image (``NaN``/``None`` when unknown).
    train_sites : iterable
        Sites the model was trained on (from the run's ``split.parquet``, or a file for
        imported runs). Compared as strings.
    captures : ndarray, shape (n,), or None
        Capture (``seq_id``) of each image; the bootstrap resamples whole captures. None =
        every image is its own capture.
    classes : list of str
        The full class list (column order of the scores).
    n_resamples : int
        Bootstrap resamples (0: intervals are ``[None, None]``).
    level : float
        Coverage of the two-sided percentile intervals.
    seed : int
        Seed of the bootstrap (each group and each site resamples with the same seed).

    Returns
    -------
    dict
        ``seen``, ``unseen``: ``{n, n_captures, accuracy, macro_f1, macro_f1_ci}`` (metrics
        ``None`` when ``n == 0``); ``all_unseen`` (bool: no evaluated image is at a training
        site, e.g. a split by location: read ``site_spread`` instead of a gap);
        ``n_unknown_site``; ``per_class_gap``: list of ``{class, f1_seen, f1_unseen, gap,
        support_seen, support_unseen}`` (gap = seen - unseen, ``None`` unless the class occurs
        in both groups), largest gap first; ``per_site``: list of ``{site, seen, n, accuracy,
        macro_f1, macro_f1_ci}`` worst macro F1 first (ties: fewer images first);
        ``site_spread``: ``{n_sites, min, q25, median, q75, max}`` of per-site macro F1.

    Raises
    ------
    GeneralisationError
        Arrays of different lengths, or class indices outside the class list.

    Examples
    --------
    >>> out = generalisation(np.array([0, 1, 0, 1]), np.array([0, 1, 1, 1]),
    ...                      sites=["A", "A", "B", "B"], train_sites={"A"}, captures=None,
    ...                      classes=["zebra", "gazelle"], n_resamples=0)
    >>> out["seen"]["accuracy"], out["unseen"]["accuracy"], out["all_unseen"]
    (1.0, 0.5, False)
    >>> [r["site"] for r in out["per_site"]]
    ['B', 'A']
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    n, c = len(y_true), len(classes)
    site_s = pd.Series(np.asarray(sites, dtype=object) if not isinstance(sites, pd.Series)
                       else sites.to_numpy(dtype=object))
    for name, arr in (("y_pred", y_pred), ("sites", site_s)):
        if len(arr) != n:
            raise GeneralisationError(f"generalisation: {name} has {len(arr)} rows, y_true {n}")
    if n and (min(y_true.min(), y_pred.min()) < 0 or max(y_true.max(), y_pred.max()) >= c):
        bad = int(np.flatnonzero((y_true < 0) | (y_true >= c) | (y_pred < 0)
                                 | (y_pred >= c))[0])
        raise GeneralisationError(f"generalisation: row {bad}: class index "
                                  f"({y_true[bad]}, {y_pred[bad]}) outside 0..{c - 1}")
    if captures is None:
        groups = np.arange(n)
    else:
        if len(captures) != n:
            raise GeneralisationError(f"generalisation: captures has {len(captures)} rows, "
                                      f"y_true {n}")
        groups = pd.factorize(pd.Series(np.asarray(captures)), use_na_sentinel=False)[0]
    train = {str(s) for s in train_sites}
    site_codes, site_names = pd.factorize(site_s, use_na_sentinel=True)
    known = site_codes >= 0
    site_seen = np.array([str(s) in train for s in site_names], dtype=bool)
    seen = np.zeros(n, bool)
    seen[known] = site_seen[site_codes[known]]
    unseen = known & ~seen
    kw = {"n_resamples": n_resamples, "seed": seed, "level": level}
    out: dict = {}
    f1 = {}
    support = {}
    for name, mask in (("seen", seen), ("unseen", unseen)):
        out[name], f1[name] = _block(y_true[mask], y_pred[mask], groups[mask], c, **kw)
        support[name] = np.bincount(y_true[mask], minlength=c)
    out["all_unseen"] = bool(unseen.any() and not seen.any())
    out["n_unknown_site"] = int((~known).sum())
    if out["all_unseen"]:
        log.info("generalisation: every evaluated site is unseen (a split by location?)")
    both = (support["seen"] > 0) & (support["unseen"] > 0)
    gap = np.where(both, f1["seen"] - f1["unseen"], np.nan)
    order = np.argsort(np.where(both, -gap, np.inf), kind="stable")
    out["per_class_gap"] = [
        {"class": classes[k], "f1_seen": float(f1["seen"][k]) if support["seen"][k] else None,
         "f1_unseen": float(f1["unseen"][k]) if support["unseen"][k] else None,
         "gap": float(gap[k]) if both[k] else None,
         "support_seen": int(support["seen"][k]), "support_unseen": int(support["unseen"][k])}
        for k in order]
    out["per_site"] = site_table(y_true, y_pred, site_codes=site_codes, site_names=site_names,
                                 site_seen=site_seen, groups=groups, n_classes=c, **kw)
    scores = np.array([r["macro_f1"] for r in out["per_site"] if r["site"] is not None],
                      dtype=float)
    q = (np.quantile(scores, [0, 0.25, 0.5, 0.75, 1]).tolist() if len(scores)
         else [None] * 5)
    out["site_spread"] = {"n_sites": int(len(scores)),
                          **dict(zip(("min", "q25", "median", "q75", "max"), q))}
    return out


def site_table(y_true: np.ndarray, y_pred: np.ndarray, *, site_codes: np.ndarray,
               site_names, site_seen: np.ndarray, groups: np.ndarray, n_classes: int,
               n_resamples: int = 200, level: float = 0.95, seed: int = 0) -> list[dict]:
    """Per-site metrics with capture-bootstrap intervals, worst macro F1 first.

    Parameters
    ----------
    y_true, y_pred : ndarray of int, shape (n,)
    site_codes : ndarray of int, shape (n,)
        Index into ``site_names``; -1 for an unknown site (reported as ``site: None``).
    site_names : sequence, length S
    site_seen : ndarray of bool, shape (S,)
        Whether each site is a training site.
    groups : ndarray of int, shape (n,)
        Capture code per image.
    n_classes : int
    n_resamples, level, seed
        As in :func:`generalisation`.

    Returns
    -------
    list of dict
        ``{site, seen, n, accuracy, macro_f1, macro_f1_ci}``, sorted by macro F1 ascending,
        then by ``n`` ascending (a five-image site can top the list by chance: read ``n``).
    """
    # One stable sort by site, then contiguous slices: no per-site boolean scan of n rows.
    order = np.argsort(site_codes, kind="stable")
    bounds = np.searchsorted(site_codes[order], np.arange(-1, len(site_names) + 1))
    rows = []
    for code in range(-1, len(site_names)):
        idx = order[bounds[code + 1]:bounds[code + 2]]
        if not len(idx):
            continue
        block, _ = _block(y_true[idx], y_pred[idx], groups[idx], n_classes,
                          n_resamples=n_resamples, seed=seed, level=level)
        site = None if code < 0 else site_names[code]
        rows.append({"site": None if site is None else str(site),
                     "seen": None if code < 0 else bool(site_seen[code]),
                     "n": block["n"], "accuracy": block["accuracy"],
                     "macro_f1": block["macro_f1"], "macro_f1_ci": block["macro_f1_ci"]})
    rows.sort(key=lambda r: (r["macro_f1"], r["n"]))
    return rows


def generalisation_for(ev: EvalSet, *, train_sites: Iterable, policy: Policy = "set",
                       site_column: str = "location", n_resamples: int = 200,
                       level: float = 0.95, seed: int = 0) -> dict:
    """:func:`generalisation` of an :class:`~analysis.evalset.EvalSet` (image level).

    Parameters
    ----------
    ev : EvalSet
        Its ``meta[site_column]`` gives the site, ``meta["seq_id"]`` the capture.
    train_sites : iterable
        Sites the model was trained on.
    policy : {"set", "primary"}
    site_column : str
    n_resamples, level, seed
        As in :func:`generalisation`.
    """
    if site_column not in ev.meta.columns:
        raise GeneralisationError(f"generalisation: the evaluation set has no column "
                                  f"{site_column!r}; has {list(ev.meta.columns)}")
    y_true, y_pred = targets(ev, policy=policy)
    return generalisation(y_true, y_pred, sites=ev.meta[site_column],
                          train_sites=train_sites, captures=capture_codes(ev)[0],
                          classes=ev.classes, n_resamples=n_resamples, level=level, seed=seed)
