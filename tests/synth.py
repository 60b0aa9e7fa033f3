"""Synthetic predictions for tests and benchmarks (no torch, no training).

``make_arrays`` gives small seeded arrays with a known truth; ``make_synthetic_run`` writes a
valid run folder over a demo dataset whose probabilities imitate a classifier that sees what
``demo_truth.json`` says is visible (so frames that inherited a label look empty, a missed
second species gets probability mass, look-alikes get confused).
"""
from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import pandas as pd

from data.runs import write_run


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, returned as float32."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def make_arrays(n: int, n_classes: int, seed: int = 0, *, accuracy: float = 0.7,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(probs (n, C) float32, y_true (n,), capture (n,))``: captures of 1-3 frames sharing
    the truth, class frequencies decaying geometrically, about ``accuracy`` arg-max accuracy.
    """
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 4, n)
    capture = np.repeat(np.arange(n), sizes)[:n]
    freq = 0.75 ** np.arange(n_classes)
    cap_truth = rng.choice(n_classes, n, p=freq / freq.sum())
    y_true = cap_truth[capture]
    logits = rng.normal(0, 1.0, (n, n_classes))
    right = rng.random(n) < accuracy
    target = np.where(right, y_true, rng.integers(0, n_classes, n))
    logits[np.arange(n), target] += rng.uniform(1.5, 5.0, n)
    return softmax(logits), y_true, capture


LOOKALIKES = {"gazellethomsons": "gazellegrants", "gazellegrants": "gazellethomsons"}


def small_evalset(n: int = 300, n_classes: int = 5, seed: int = 3):
    """An in-memory ``EvalSet`` of ``make_arrays`` (one label per image, one frame per capture)
    with ``image_id``, ``file_name`` and ``seq_id`` metadata, for gallery and page tests."""
    from analysis.evalset import evalset_from_arrays

    probs, y, cap = make_arrays(n, n_classes, seed=seed)
    labels = np.zeros(probs.shape, bool)
    labels[np.arange(len(y)), y] = True
    ids = [f"img{i:04d}" for i in range(len(y))]
    meta = pd.DataFrame({"image_id": ids, "file_name": [f"{i}.JPG" for i in ids],
                         "seq_id": pd.Categorical([f"cap{c}" for c in cap]),
                         "frame_num": np.ones(len(y), int)})
    return evalset_from_arrays(probs, labels, primary=y, meta=meta,
                               image_ids=meta["image_id"].to_numpy(dtype=object))


def _split_of(seq_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """train/val/test per capture (70/15/15), the same for every frame of a capture."""
    codes, uniques = pd.factorize(pd.Series(seq_ids))
    draw = rng.choice(np.array(["train", "val", "test"], dtype=object), len(uniques),
                      p=[0.7, 0.15, 0.15])
    return draw[codes]


def make_synthetic_run(demo, run_dir: Path, *, seed: int = 0, accuracy: float = 0.8) -> Path:
    """Write a run folder with synthetic predictions (and embeddings) over a demo dataset.

    The "model" sees ``demo_truth.json``'s ``visible`` species: the first visible species (or
    ``empty``) gets a large logit boost, a second visible species a smaller one (so a missed
    second species carries probability mass), night frames are less confident, and with
    probability ``1 - accuracy`` the top class is replaced by the look-alike (gazelles) or a
    random class. Frames listed as ``missing`` or ``truncated`` get no prediction and are listed
    in the manifest's ``unreadable``, as ``training.predict`` does.

    Parameters
    ----------
    demo : data.demo.DemoPaths
        ``json_paths`` and ``truth`` (``demo_truth.json``).
    run_dir : Path
        Created; written through :func:`data.runs.write_run`.
    seed : int
    accuracy : float
        Probability that the top class is what the frame shows.

    Returns
    -------
    Path
        ``run_dir``.
    """
    from data.cct import load_dataset

    dataset = load_dataset(demo.json_paths)
    truth = json.loads(Path(demo.truth).read_text())["images"]
    classes = list(dataset.classes)
    col = {c: i for i, c in enumerate(classes)}
    rng = np.random.default_rng(seed)
    images = dataset.images
    ids = images["image_id"].to_numpy(dtype=object)
    n, c = len(ids), len(classes)
    logits = rng.normal(0.0, 0.8, (n, c))
    first = np.empty(n, np.int64)
    unreadable = []
    keep = np.ones(n, bool)
    for i, iid in enumerate(ids):
        rec = truth.get(iid, {"visible": [], "phenomena": []})
        visible = [v for v in rec["visible"] if v in col] or ["empty"]
        scale = 0.7 if "night" in rec["phenomena"] else 1.0
        first[i] = col[visible[0]]
        logits[i, first[i]] += scale * rng.uniform(3.5, 6.5)
        for extra in visible[1:]:
            logits[i, col[extra]] += scale * rng.uniform(2.5, 5.0)
        bad = [p for p in ("missing", "truncated") if p in rec["phenomena"]]
        if bad:
            keep[i] = False
            unreadable.append({"image_id": iid, "reason": bad[0]})
    wrong = np.flatnonzero(rng.random(n) > accuracy)
    partner = np.array([col.get(LOOKALIKES.get(classes[k], ""), -1) for k in first[wrong]])
    other = np.where(partner >= 0, partner, rng.integers(0, c, len(wrong)))
    logits[wrong, other] = logits[wrong].max(axis=1) + rng.uniform(0.2, 2.0, len(wrong))
    probs = softmax(logits)
    manifest = {
        "classes": classes,
        "dataset": {"paths": [str(p) for p in demo.json_paths],
                    "sha256": [s["sha256"] for s in dataset.sources],
                    "images_root": str(demo.images_root)},
        "model": {"arch": "synthetic", "checkpoint": None, "input_size": None},
        "training": {"synthetic": True, "seed": seed, "accuracy": accuracy},
        "software": {"python": platform.python_version(), "numpy": np.__version__},
        "unreadable": unreadable,
    }
    split = _split_of(images["seq_id"].astype(str).to_numpy()[keep], rng)
    return write_run(run_dir, manifest=manifest, image_ids=ids[keep], probs=probs[keep],
                     split=split, embedding=_embedding(first, seed)[keep])


EMBEDDING_DIM = 16


def _embedding(first: np.ndarray, seed: int) -> np.ndarray:
    """A 16-D "embedding" clustered by what each frame shows (one centre per class); its own
    generator, so the probabilities are those of runs written before it existed."""
    rng = np.random.default_rng(10_000 + seed)
    centres = rng.normal(0.0, 3.0, (int(first.max()) + 1, EMBEDDING_DIM))
    return (centres[first] + rng.normal(0.0, 0.6, (len(first), EMBEDDING_DIM))).astype(np.float16)


def attach_tiny_checkpoint(run_dir: Path) -> Path:
    """Give a synthetic run a tiny seeded ``test_efficientnet`` checkpoint (needs torch).

    For the "Try the model" page: the manifest's ``model`` points at ``checkpoint_best.pt``.
    """
    import torch

    from training.checkpoint import save
    from training.model import build_model

    manifest = json.loads((run_dir / "manifest.json").read_text())
    torch.manual_seed(0)
    model = build_model("test_efficientnet", len(manifest["classes"]), weights="none")
    save({"model": model.state_dict(), "classes": manifest["classes"],
          "arch": "test_efficientnet", "image_size": 64, "mean": [0.5] * 3, "std": [0.25] * 3,
          "config": {}}, run_dir / "checkpoint_best.pt")
    manifest["model"] = {"arch": "test_efficientnet", "checkpoint": "checkpoint_best.pt",
                         "input_size": 64}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir
