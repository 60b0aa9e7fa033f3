"""Run comparison: per-class change in F1 with paired capture-bootstrap intervals, and the
images one run fixes (wrong -> right) or breaks (right -> wrong) relative to the other."""
from __future__ import annotations

import numpy as np

from analysis.evalset import EvalSet, Policy, capture_codes, targets
from analysis.metrics import (confusion, f1_from_counts, interval_list, per_class,
                              percentile_interval, resampled_counts, summary,
                              summary_from_counts)


def align_runs(ev_a: EvalSet, ev_b: EvalSet) -> tuple[EvalSet, EvalSet]:
    """Both sets restricted to their common images, ``ev_b`` in ``ev_a``'s row and class order.

    Raises
    ------
    ValueError
        The two runs' class sets differ.
    """
    if set(ev_a.classes) != set(ev_b.classes):
        raise ValueError(f"compare: runs have different classes: only in A "
                         f"{sorted(set(ev_a.classes) - set(ev_b.classes))}, only in B "
                         f"{sorted(set(ev_b.classes) - set(ev_a.classes))}")
    if len(ev_a) == len(ev_b) and np.array_equal(ev_a.image_ids, ev_b.image_ids):
        a, b = ev_a, ev_b  # two runs over one dataset: same rows (skips hashing n ids)
    else:
        rows_b = ev_b.rows_of(ev_a.image_ids)
        common = rows_b >= 0
        a = ev_a if common.all() else ev_a.subset(common)
        b = ev_b.subset(rows_b[common])
    if b.classes != a.classes:
        perm = np.asarray([b.classes.index(c) for c in a.classes])
        b = EvalSet(classes=list(a.classes), image_ids=b.image_ids, probs=b.probs[:, perm],
                    labels=b.labels[:, perm], primary=np.argsort(perm)[b.primary],
                    meta=b.meta, missing=b.missing)
    return a, b


def compare(ev_a: EvalSet, ev_b: EvalSet, *, policy: Policy = "set", n_resamples: int = 200,
            level: float = 0.95, seed: int = 0) -> dict:
    """Compare run B against run A on the images both predicted.

    Intervals come from a paired capture bootstrap: each resample weights the same captures
    for both runs, so the interval of a difference reflects the runs' disagreement, not the
    sampling noise of the images themselves.

    Parameters
    ----------
    ev_a, ev_b : EvalSet
        Two runs over the same dataset (any row or class order).
    policy : {"set", "primary"}
    n_resamples : int
    level : float
    seed : int

    Returns
    -------
    dict
        ``n, n_only_a, n_only_b, accuracy_a, accuracy_b, macro_f1_a, macro_f1_b,
        macro_f1_delta, macro_f1_delta_ci, per_class: [{class, support, f1_a, f1_b, delta,
        delta_ci}], n_fixed, n_broken, fixed, broken`` (image ids; B right where A was wrong,
        and the reverse). JSON-ready; intervals are ``[None, None]`` without resamples.
    """
    a, b = align_runs(ev_a, ev_b)
    c = a.n_classes
    ta, pa = targets(a, policy=policy)
    tb, pb = targets(b, policy=policy)
    cm_a, cm_b = confusion(ta, pa, c), confusion(tb, pb, c)
    sa, sb = summary(cm_a), summary(cm_b)
    fa = per_class(cm_a, a.classes)
    fb = per_class(cm_b, a.classes)
    delta_ci = np.full((c, 2), np.nan)
    macro_ci = np.full(2, np.nan)
    if n_resamples > 0 and len(a):
        (tpa, pra, tra), (tpb, prb, trb) = resampled_counts(
            [(ta, pa), (tb, pb)], capture_codes(a)[0], c, n_resamples=n_resamples, seed=seed)
        delta_ci = percentile_interval(
            f1_from_counts(tpb, prb, trb) - f1_from_counts(tpa, pra, tra), level)
        macro = summary_from_counts(tpb, prb, trb)["macro_f1"] - \
            summary_from_counts(tpa, pra, tra)["macro_f1"]
        macro_ci = percentile_interval(macro, level)
    right_a, right_b = ta == pa, tb == pb
    fixed = a.image_ids[~right_a & right_b]
    broken = a.image_ids[right_a & ~right_b]

    return {
        "n": int(len(a)), "n_only_a": int(len(ev_a) - len(a)),
        "n_only_b": int(len(ev_b) - len(b)),
        "accuracy_a": sa["accuracy"], "accuracy_b": sb["accuracy"],
        "macro_f1_a": sa["macro_f1"], "macro_f1_b": sb["macro_f1"],
        "macro_f1_delta": sb["macro_f1"] - sa["macro_f1"],
        "macro_f1_delta_ci": interval_list(macro_ci),
        "per_class": [{"class": name, "support": int(fa["support"].iloc[k]),
                       "f1_a": float(fa["f1"].iloc[k]), "f1_b": float(fb["f1"].iloc[k]),
                       "delta": float(fb["f1"].iloc[k] - fa["f1"].iloc[k]),
                       "delta_ci": interval_list(delta_ci[k])}
                      for k, name in enumerate(a.classes)],
        "n_fixed": int(len(fixed)), "n_broken": int(len(broken)),
        "fixed": fixed.tolist(), "broken": broken.tolist(),
    }
