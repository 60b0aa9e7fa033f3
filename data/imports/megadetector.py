"""MegaDetector batch output, format 1.x (lila.science/megadetector-output-format).

``{"info": {"format_version", "detector", "classifier"}, "detection_categories": {"1":
"animal", "2": "person", "3": "vehicle"}, "classification_categories": {"0": name},
"classification_category_descriptions": {"0": taxonomy string}, "images": [{"file",
"failure", "detections": [{"category", "conf", "bbox", "classifications": [[id, score],
...]}]}]}``. An image's class is the top classification of its most confident detection at or
above the threshold (the detection's own category when it has none); no detection at or above
it means ``empty``, with probability ``1 - `` the largest confidence. Without
``classification_categories`` the run is a detector run over animal / human / vehicle / empty.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data.files import atomic_write
from data.imports.common import Record, Source, check_score, fail, read_json

FORMAT = "megadetector"
#: MegaDetector's usual threshold for v5 models (its documentation suggests 0.1-0.2).
DEFAULT_THRESHOLD = 0.2
DETECTION_CATEGORIES = {"1": "animal", "2": "person", "3": "vehicle"}


def _classifications(det: dict, names: dict, *, path: Path, where: str) -> list[tuple[str, float]]:
    out = []
    for pair in det.get("classifications") or []:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise fail(path, where, f"classification {pair!r} is not a [class_id, score] pair")
        cid = str(pair[0])
        if cid not in names:
            raise fail(path, where, f"classification id {cid!r} is not in "
                       "'classification_categories'")
        out.append((names[cid], check_score(pair[1], path=path, record=where,
                                            what="classification score")))
    return sorted(out, key=lambda kv: -kv[1])


def read(path: str | Path, *, threshold: float = DEFAULT_THRESHOLD) -> Source:
    """Parse a MegaDetector batch output file into records (one per ``images[]`` entry).

    Raises
    ------
    ImportFormatError
        Not JSON, no ``images`` list or ``detection_categories`` (e.g. a SpeciesNet file), an
        image without ``file``, an unknown category or class id, a confidence outside [0, 1].
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        hint = (" (it has 'predictions': a SpeciesNet file? use --format speciesnet)"
                if isinstance(data, dict) and "predictions" in data else "")
        raise fail(path, "top level", f"no 'images' list: not a MegaDetector batch output "
                   f"file{hint}")
    det_names = data.get("detection_categories")
    if not isinstance(det_names, dict) or not det_names:
        raise fail(path, "top level", "missing required field 'detection_categories'")
    det_names = {str(k): str(v) for k, v in det_names.items()}
    cls_names = {str(k): str(v) for k, v in (data.get("classification_categories") or {}).items()}
    descriptions = data.get("classification_category_descriptions") or {}
    # A taxonomy string (from SpeciesNet) says more than the short name: match on it.
    labels_of = {k: str(descriptions.get(k) or v) for k, v in cls_names.items()}
    classifier = bool(cls_names)
    records: list[Record] = []
    for i, im in enumerate(data["images"]):
        where = f"images[{i}]"
        if not isinstance(im, dict):
            raise fail(path, where, f"is {type(im).__name__}, expected an object")
        key = im.get("file")
        if not isinstance(key, str) or not key.strip():
            raise fail(path, where, "missing required field 'file'")
        where = f"images[{i}] ({key})"
        dets = im.get("detections")
        if im.get("failure") and not dets:
            records.append(Record(key, where, failed=True))
            continue
        if not isinstance(dets, list):
            raise fail(path, where, "missing required field 'detections' (a list)")
        best, conf = None, 0.0
        for j, det in enumerate(dets):
            dwhere = f"{where} detections[{j}]"
            if not isinstance(det, dict):
                raise fail(path, dwhere, "is not an object")
            cat = str(det.get("category"))
            if cat not in det_names:
                raise fail(path, dwhere, f"category {det.get('category')!r} is not in "
                           "'detection_categories'")
            c = check_score(det.get("conf"), path=path, record=dwhere, what="'conf'")
            if c >= threshold and (best is None or c > best[1]):
                best = (det, c, dwhere)
            conf = max(conf, c)
        if best is None:
            records.append(Record(key, where, prediction="empty", score=1.0 - conf,
                                  detector_conf=conf))
            continue
        det, c, dwhere = best
        tops = _classifications(det, labels_of, path=path, where=dwhere) if classifier else []
        if tops:
            labels, scores = zip(*tops)
            records.append(Record(key, where, labels, scores, prediction=labels[0],
                                  score=scores[0], detector_conf=conf))
        else:
            records.append(Record(key, where, prediction=det_names[str(det["category"])],
                                  score=c, detector_conf=conf))
    if not records:
        raise fail(path, "images", "the list is empty")
    info = data.get("info") if isinstance(data.get("info"), dict) else {}
    version = " + ".join(str(info[k]) for k in ("detector", "classifier") if info.get(k))
    return Source(format=FORMAT, path=path, records=records, model_version=version or None,
                  detector_only=not classifier,
                  info={"threshold": threshold, "format_version": info.get("format_version"),
                        "detection_categories": det_names})


def export(out: str | Path, *, file_paths: Sequence[str], probs: np.ndarray,
           classes: Sequence[str], failed: Sequence[str] = (),
           detector: str = "traplens-demo-detector") -> Path:
    """Write a detector-only MegaDetector 1.4 file from a run (the demo's detector run).

    Each image gets one full-frame ``animal`` detection (``human`` for a human top class) with
    confidence ``1 - p(empty)``, kept when at least 0.005 (as MegaDetector drops the faintest);
    ``failed`` paths get a ``failure``.
    """
    classes = list(classes)
    empty = classes.index("empty") if "empty" in classes else None
    images = []
    for fp, p in zip(file_paths, np.asarray(probs, np.float64)):
        conf = 1.0 - float(p[empty]) if empty is not None else float(p.max())
        top = classes[int(np.argmax(p))]
        cat = "2" if top == "human" else "1"
        dets = ([{"category": cat, "conf": round(conf, 4), "bbox": [0.2, 0.3, 0.5, 0.4]}]
                if conf >= 0.005 else [])
        images.append({"file": fp, "detections": dets})
    images += [{"file": fp, "failure": "Failure image access"} for fp in failed]
    data = {"info": {"format_version": "1.4", "detector": detector},
            "detection_categories": dict(DETECTION_CATEGORIES), "images": images}
    return atomic_write(out, json.dumps(data, indent=1) + "\n")
