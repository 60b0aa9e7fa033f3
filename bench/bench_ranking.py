"""Relabel ranking on planted label errors: precision@k of the merged list and its parts.

A seeded synthetic camera-trap run (captures of 1-3 frames, ~75 % empty images, a long species
tail, some two-species herds) with two kinds of planted label errors, as Snapshot Serengeti
has them:

- *inherited labels*: a later frame of a capture the animal has left, still labelled with it;
- *missed species*: a herd of two species annotated with one, on every frame showing both.

The "model" sees the truth with realistic confidences: it is unsure (the true class only
mildly boosted) on a quarter of the planted frames, and makes confident mistakes on about as
many correctly labelled images (distractors, which confident learning and top losses cannot
tell from label errors on one frame). For k in (N/4, N/2, N, 2N), N the number of planted
errors, the bench prints the precision among the top k of:

- the merged list ``analysis.ranking.label_issues`` (all signals, calibrated, one scale);
- each component alone: the sequence suspects, confident learning, top losses;
- cleanlab alone in multi-label mode (``cleanlab.multilabel_classification``), the baseline.

and records the merged figure against the best component at that depth (target ``>=``).

    python -m bench ranking      # TRAPLENS_BENCH_RANKING_IMAGES overrides 40,000
"""
from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pandas as pd

from analysis.evalset import EvalSet, evalset_from_arrays

N_IMAGES = int(os.environ.get("TRAPLENS_BENCH_RANKING_IMAGES", "40000"))
N_SPECIES = 20
#: Species pairs that form mixed herds (index pairs into the species list).
COMPANIONS = ((0, 1), (0, 2), (3, 4), (1, 5))
DEPTHS = (0.25, 0.5, 1.0, 2.0)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def planted(n_images: int = N_IMAGES, *, seed: int = 0, unsure: float = 0.25,
            distractors: float = 1.0) -> tuple[EvalSet, np.ndarray]:
    """A planted evaluation set and the mask of its wrongly labelled frames.

    Parameters
    ----------
    n_images : int
        Frames (approximately: whole captures are generated).
    seed : int
    unsure : float
        Share of the planted frames on which the model is unsure of what it sees.
    distractors : float
        Confident model mistakes on correctly labelled frames, as a multiple of the number of
        planted errors.

    Returns
    -------
    ev : EvalSet
        Classes ``empty`` then ``sp00 ... sp19``; every frame in split ``test``; ``meta``
        with ``seq_id``, ``frame_num``, ``seq_num_frames``, ``location``, ``file_name``.
    wrong : ndarray of bool, shape (n,)
        The planted label errors (inherited labels and missed species).
    """
    rng = np.random.default_rng(seed)
    c = N_SPECIES + 1
    n_caps = max(n_images // 2, 4)
    sizes = rng.choice([1, 2, 3], n_caps, p=[0.2, 0.2, 0.6])
    cap = np.repeat(np.arange(n_caps), sizes)
    frame = np.arange(len(cap)) - np.r_[0, np.cumsum(sizes)][cap] + 1
    n = len(cap)
    # Captures with an animal (~25 % of frames), species from a long tail; some mixed herds.
    animal = rng.random(n_caps) < 0.25
    freq = 0.85 ** np.arange(N_SPECIES)
    first = 1 + rng.choice(N_SPECIES, n_caps, p=freq / freq.sum())
    second = np.full(n_caps, -1)
    pairs = np.array(COMPANIONS) + 1
    herd = animal & (rng.random(n_caps) < 0.12)
    pick = pairs[rng.integers(0, len(pairs), n_caps)]
    first = np.where(herd, pick[:, 0], first)
    second[herd] = pick[herd, 1]
    missed_cap = herd & (rng.random(n_caps) < 0.5)  # annotators kept one species only
    # What each frame shows: later frames of an animal capture may be empty (animal left).
    left = animal[cap] & (frame >= 2) & (rng.random(n) < 0.18)
    shows_first = animal[cap] & ~left
    shows_second = shows_first & (second[cap] >= 0) & (rng.random(n) < 0.9)
    truth = np.zeros((n, c), bool)
    truth[np.flatnonzero(shows_first), first[cap][shows_first]] = True
    truth[np.flatnonzero(shows_second), second[cap][shows_second]] = True
    truth[~truth.any(axis=1), 0] = True
    # Labels belong to the capture: copied to every frame.
    labels = np.zeros((n, c), bool)
    labels[~animal[cap], 0] = True
    rows = np.flatnonzero(animal[cap])
    labels[rows, first[cap][rows]] = True
    kept2 = animal[cap] & (second[cap] >= 0) & ~missed_cap[cap]
    labels[np.flatnonzero(kept2), second[cap][kept2]] = True
    wrong = (labels != truth).any(axis=1)
    # The model: a noisy logit per class, the visible classes boosted.
    logits = rng.normal(0.0, 0.8, (n, c))
    vis_first = np.where(shows_first, first[cap], 0)
    boost = rng.uniform(4.0, 7.0, n)
    is_unsure = wrong & (rng.random(n) < unsure)
    boost[is_unsure] = rng.uniform(0.8, 2.2, int(is_unsure.sum()))
    logits[np.arange(n), vis_first] += boost
    r2 = np.flatnonzero(shows_second)
    b2 = rng.uniform(3.0, 6.0, len(r2))
    b2[is_unsure[r2]] = rng.uniform(0.5, 1.8, int(is_unsure[r2].sum()))
    logits[r2, second[cap][r2]] += b2
    # Distractors: confident mistakes on correctly labelled frames (frame-level slips).
    clean = np.flatnonzero(~wrong)
    k = min(int(distractors * wrong.sum()), len(clean))
    slip = rng.choice(clean, k, replace=False)
    target = np.where(rng.random(k) < 0.1, 0, rng.integers(1, c, k))
    target = np.where(target == vis_first[slip], (target % N_SPECIES) + 1, target)
    logits[slip, target] = logits[slip].max(axis=1) + rng.uniform(3.0, 6.5, k)
    probs = _softmax(logits)
    ids = np.array([f"S1/L{k % 40:02d}/IMG{k:07d}_{f}" for k, f in zip(cap, frame)],
                   dtype=object)
    meta = pd.DataFrame({"image_id": ids, "file_name": [f"{i}.JPG" for i in ids],
                         "seq_id": [f"SEQ{k:07d}" for k in cap], "frame_num": frame,
                         "seq_num_frames": sizes[cap], "location": [f"L{k % 40:02d}" for k in cap],
                         "split": "test"})
    primary = labels.argmax(axis=1)
    first_lab = np.where(animal[cap], first[cap], 0)
    primary = np.where(labels[np.arange(n), first_lab], first_lab, primary)
    classes = ["empty"] + [f"sp{i:02d}" for i in range(N_SPECIES)]
    ev = evalset_from_arrays(probs, labels, classes=classes, primary=primary, meta=meta,
                             image_ids=ids)
    return ev, wrong


def precision_at(ranked_rows: np.ndarray, wrong: np.ndarray, k: int) -> float:
    """Share of planted errors among the first ``k`` rows (a shorter list counts as misses)."""
    top = np.asarray(ranked_rows, dtype=np.int64)[:k]
    return float(wrong[top].sum()) / k if k else float("nan")


def cleanlab_multilabel(ev: EvalSet) -> np.ndarray:
    """Rows cleanlab's multi-label mode flags, ranked by its self-confidence (the baseline)."""
    from cleanlab.multilabel_classification.filter import find_label_issues

    given = [list(np.flatnonzero(r)) for r in ev.labels]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(find_label_issues(given, ev.probs.astype(np.float64),
                                            return_indices_ranked_by="self_confidence",
                                            n_jobs=1), dtype=np.int64)


def rankings(ev: EvalSet) -> dict[str, np.ndarray]:
    """Ranked row indices of the merged list, each component and the cleanlab baseline."""
    from analysis.ranking import label_issues

    out = {"merged": ev.rows_of(label_issues(ev, k_losses=None)["image_id"])}
    for name, src in (("sequence", "sequence"), ("confident learning", "cleanlab"),
                      ("top losses", "loss")):
        part = label_issues(ev, sources=(src,), k_losses=None, calibrate=False)
        out[name] = ev.rows_of(part["image_id"])
    out["cleanlab multi-label"] = cleanlab_multilabel(ev)
    return out


COMPONENTS = ("sequence", "confident learning", "top losses")


def depths(n_wrong: int) -> list[int]:
    return [max(1, int(round(f * n_wrong))) for f in DEPTHS]


def main() -> None:
    from bench import figures

    t0 = time.perf_counter()
    ev, wrong = planted(N_IMAGES, seed=0)
    n_wrong = int(wrong.sum())
    print(f"planted set: {len(ev):,} frames, {n_wrong} planted errors "
          f"({int((ev.labels[:, 0]).sum() / len(ev) * 100)} % labelled empty), "
          f"generated in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    ranked = rankings(ev)
    print(f"rankings in {time.perf_counter() - t0:.1f} s")
    ks = depths(n_wrong)
    header = "".join(f"{f'P@{k}':>10}" for k in ks)
    print(f"{'list':<24}{'length':>8}{header}")
    table = {name: [precision_at(rows, wrong, k) for k in ks] for name, rows in ranked.items()}
    for name, rows in ranked.items():
        print(f"{name:<24}{len(rows):>8}" + "".join(f"{p:>10.3f}" for p in table[name]))
    for j, (k, frac) in enumerate(zip(ks, DEPTHS)):
        best = max(COMPONENTS, key=lambda c: table[c][j])
        figures.record("ranking", f"merged precision@{frac:g}N (k={k})", table["merged"][j],
                       "precision", target=table[best][j], op=">=",
                       baseline=f"best component ({best})", baseline_value=table[best][j])
        figures.record("ranking", f"cleanlab multi-label precision@{frac:g}N (k={k})",
                       table["cleanlab multi-label"][j], "precision")


if __name__ == "__main__":
    main()
