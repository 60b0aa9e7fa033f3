"""Run comparison: per-class change in F1 with paired capture-bootstrap intervals, and the
images one run fixes (wrong -> right) or breaks (right -> wrong) relative to the other."""
from __future__ import annotations

import numpy as np

from analysis.evalset import (EvalSet, Policy, at_level, capture_codes, memoised,
                              targets)
from analysis.metrics import (confusion, f1_from_counts, interval_list, per_class,
                              percentile_interval, resampled_counts, summary,
                              summary_from_counts)


#: The column that pools, in a comparison of runs with different class lists, the
#: probabilities of every class not both runs can predict (predicting it is an error).
LEFT_OUT = "(left out)"


def predictable(ev: EvalSet) -> list[str]:
    """Classes of ``ev`` its model can predict that are dataset classes (all classes of a set
    built by hand), in ``ev``'s order."""
    info = ev.label_space
    if info is None:
        return list(ev.classes)
    drop = set(info.space.unknown_to_model) | set(info.space.extra_in_model)
    return [c for c in ev.classes if c not in drop]


def _project(ev: EvalSet, common: list[str]) -> EvalSet:
    """``ev`` over ``common`` + :data:`LEFT_OUT` (the rest of each row's probability), rows
    with at least one label in ``common``."""
    idx = np.array([ev.classes.index(c) for c in common], dtype=np.int64)
    rest = np.setdiff1d(np.arange(ev.n_classes), idx)
    probs = np.concatenate([ev.probs[:, idx], ev.probs[:, rest].sum(axis=1, keepdims=True)],
                           axis=1)
    labels = np.concatenate([ev.labels[:, idx], np.zeros((len(ev), 1), bool)], axis=1)
    pos = np.full(ev.n_classes, -1, np.int64)
    pos[idx] = np.arange(len(idx))
    primary = pos[ev.primary]
    # A primary class left out: the first remaining label of the set stands in.
    primary = np.where(primary >= 0, primary, labels.argmax(axis=1))
    out = EvalSet(classes=[*common, LEFT_OUT], image_ids=ev.image_ids, probs=probs,
                  labels=labels, primary=primary, meta=ev.meta, missing=ev.missing)
    keep = labels.any(axis=1)
    return out if keep.all() else out.subset(keep)


def _kept_rows(ev: EvalSet, common: list[str]) -> np.ndarray:
    """Rows of ``ev`` that :func:`_project` keeps (a label among ``common``)."""
    idx = [ev.classes.index(c) for c in common]
    return np.flatnonzero(ev.labels[:, idx].any(axis=1))


def common_classes(ev_a: EvalSet, ev_b: EvalSet) -> tuple[list[str], list[str]]:
    """The dataset classes both runs can predict (A's order) and every other class of either
    set (sorted): what a comparison of the two is computed over and what it leaves out.

    Raises
    ------
    ValueError
        No class both runs can predict.
    """
    in_b = set(predictable(ev_b))
    common = [c for c in predictable(ev_a) if c in in_b]
    if not common:
        raise ValueError(f"compare: the runs have different classes and none both can "
                         f"predict: A {sorted(predictable(ev_a))[:5]}, B "
                         f"{sorted(in_b)[:5]}")
    left = sorted((set(ev_a.classes) | set(ev_b.classes)) - set(common))
    return common, left


def align_runs(ev_a: EvalSet, ev_b: EvalSet) -> tuple[EvalSet, EvalSet]:
    """Both sets restricted to their common images, ``ev_b`` in ``ev_a``'s row and class order.

    Runs whose class lists differ are compared over the classes both can predict
    (:func:`common_classes`): the probabilities of every other class are pooled in one
    :data:`LEFT_OUT` column (predicting it is an error) and images without a label among
    the common classes are left out.

    Raises
    ------
    ValueError
        No class both runs can predict.
    """
    return _aligned(ev_a, ev_b)[:2]


def _aligned(ev_a: EvalSet, ev_b: EvalSet
             ) -> tuple[EvalSet, EvalSet, int, int, list[str], np.ndarray]:
    """:func:`align_runs` plus the rows of each set left after projection, the classes left
    out, and the row in ``ev_b`` of each row of the aligned B."""
    common, left = common_classes(ev_a, ev_b)
    in_b = np.arange(len(ev_b))  # row in the given ev_b of each row of ev_b below
    if left:
        in_b = _kept_rows(ev_b, common)
        ev_a, ev_b = _project(ev_a, common), _project(ev_b, common)
    if len(ev_a) == len(ev_b) and np.array_equal(ev_a.image_ids, ev_b.image_ids):
        a, b = ev_a, ev_b  # two runs over one dataset: same rows (skips hashing n ids)
    else:
        rows_b = ev_b.rows_of(ev_a.image_ids)
        common_rows = rows_b >= 0
        a = ev_a if common_rows.all() else ev_a.subset(common_rows)
        b = ev_b.subset(rows_b[common_rows])
        in_b = in_b[rows_b[common_rows]]
    if b.classes != a.classes:
        perm = np.asarray([b.classes.index(c) for c in a.classes])
        b = EvalSet(classes=list(a.classes), image_ids=b.image_ids, probs=b.probs[:, perm],
                    labels=b.labels[:, perm], primary=np.argsort(perm)[b.primary],
                    meta=b.meta, missing=b.missing)
    return a, b, len(ev_a), len(ev_b), left, in_b


@memoised
def compare(ev_a: EvalSet, ev_b: EvalSet, *, policy: Policy = "set", n_resamples: int = 200,
            level: float = 0.95, seed: int = 0, taxon_level: str = "label") -> dict:
    """Compare run B against run A on the images both predicted.

    Intervals come from a paired capture bootstrap: each resample weights the same captures
    for both runs, so the interval of a difference reflects the runs' disagreement, not the
    sampling noise of the images themselves.

    Parameters
    ----------
    ev_a, ev_b : EvalSet
        Two runs over the same dataset (any row or class order; class lists may differ:
        they are compared over the classes both can predict, see :func:`align_runs`).
    policy : {"set", "primary"}
    n_resamples : int
    level : float
    seed : int
    taxon_level : str
        Compare at this taxonomic level (:func:`analysis.evalset.at_level`), after aligning
        the two class lists at the label level.

    Returns
    -------
    dict
        ``n, n_only_a, n_only_b, accuracy_a, accuracy_b, macro_f1_a, macro_f1_b,
        macro_f1_delta, macro_f1_delta_ci, per_class: [{class, support, f1_a, f1_b, delta,
        delta_ci}], n_fixed, n_broken``, ``fixed_rows_b, broken_rows_b`` (int64 arrays: the
        rows in ``ev_b`` of the images B got right where A was wrong, and the reverse, in A's
        row order; ``ev_b.image_ids[rows]`` are their ids), ``classes_left_out`` (classes not
        both runs can predict) and ``n_left_out`` (images of A without a label among the
        compared classes). JSON-ready but for the two row arrays; intervals are
        ``[None, None]`` without resamples.
    """
    a, b, n_a, n_b, left_out, in_b = _aligned(ev_a, ev_b)
    a, b = at_level(a, taxon_level), at_level(b, taxon_level)
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
    fixed, broken = ~right_a & right_b, right_a & ~right_b

    return {
        "n": int(len(a)), "n_only_a": int(n_a - len(a)), "n_only_b": int(n_b - len(b)),
        "classes_left_out": left_out, "n_left_out": int(len(ev_a) - n_a),
        "accuracy_a": sa["accuracy"], "accuracy_b": sb["accuracy"],
        "macro_f1_a": sa["macro_f1"], "macro_f1_b": sb["macro_f1"],
        "macro_f1_delta": sb["macro_f1"] - sa["macro_f1"],
        "macro_f1_delta_ci": interval_list(macro_ci),
        "per_class": [{"class": name, "support": int(fa["support"].iloc[k]),
                       "f1_a": float(fa["f1"].iloc[k]), "f1_b": float(fb["f1"].iloc[k]),
                       "delta": float(fb["f1"].iloc[k] - fa["f1"].iloc[k]),
                       "delta_ci": interval_list(delta_ci[k])}
                      for k, name in enumerate(a.classes)],
        "n_fixed": int(fixed.sum()), "n_broken": int(broken.sum()),
        # rows, not ids, as int64 arrays: at 7.2 M images each holds about a million entries,
        # which a copy or a pickle of Python strings would take seconds over
        "fixed_rows_b": in_b[fixed].astype(np.int64),
        "broken_rows_b": in_b[broken].astype(np.int64),
    }
