"""SpeciesNet predictions JSON (google/cameratrapai README, "Output format").

``{"predictions": [{"filepath", "classifications": {"classes", "scores"} (top 5),
"detections": [{"category", "label", "conf", "bbox"}], "prediction", "prediction_score",
"prediction_source", "failures", "model_version"}]}``. Labels are
``uuid;class;order;family;genus;species;common name``; blank, animal, human and vehicle have
labels of their own. An image's prediction is the ensemble's final ``prediction`` with its
``prediction_score``; the classifier's top five fill the rest of the vector
(:func:`data.imports.common.assemble`). A record with ``failures`` and no prediction is an
image without a prediction.
"""
from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data.files import atomic_write
from data.imports.common import Record, Source, check_score, fail, read_json
from data.taxonomy import Taxonomy, load_taxonomy

FORMAT = "speciesnet"
#: SpeciesNet's labels of no taxon (their published uuids).
BLANK = "f1856211-cfb7-4a5b-9158-c0f72fd09ee6;;;;;;blank"
ANIMAL = "1f689929-883d-4dae-958c-3d57ab5b6c16;;;;;;animal"
VEHICLE = "e2895ed5-780b-48f6-8a11-9e27cb594511;;;;;;vehicle"
HUMAN = "990ae9dd-7a59-4344-afcb-1b7b21368000;mammalia;primates;hominidae;homo;sapiens;human"


def read(path: str | Path) -> Source:
    """Parse a SpeciesNet predictions file into records (one per ``predictions[]`` entry).

    Raises
    ------
    ImportFormatError
        Not JSON, no ``predictions`` list (e.g. a MegaDetector file), a record without
        ``filepath``, a prediction without its score, labels and scores of different lengths,
        a score outside [0, 1].
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("predictions"), list):
        hint = (" (it has 'images': a MegaDetector file? use --format megadetector)"
                if isinstance(data, dict) and "images" in data else "")
        raise fail(path, "top level", f"no 'predictions' list: not a SpeciesNet predictions "
                   f"file{hint}")
    records: list[Record] = []
    versions: dict[str, None] = {}
    for i, rec in enumerate(data["predictions"]):
        where = f"predictions[{i}]"
        if not isinstance(rec, dict):
            raise fail(path, where, f"is {type(rec).__name__}, expected an object")
        key = rec.get("filepath")
        if not isinstance(key, str) or not key.strip():
            raise fail(path, where, "missing required field 'filepath'")
        where = f"predictions[{i}] ({key})"
        if isinstance(rec.get("model_version"), str):
            versions[rec["model_version"]] = None
        labels: tuple[str, ...] = ()
        scores: tuple[float, ...] = ()
        cls = rec.get("classifications")
        if cls is not None:
            if not isinstance(cls, dict) or not isinstance(cls.get("classes"), list) \
                    or not isinstance(cls.get("scores"), list):
                raise fail(path, where, "'classifications' needs lists 'classes' and 'scores'")
            if len(cls["classes"]) != len(cls["scores"]):
                raise fail(path, where, f"'classifications' has {len(cls['classes'])} classes "
                           f"but {len(cls['scores'])} scores")
            if not all(isinstance(c, str) for c in cls["classes"]):
                raise fail(path, where, "'classifications.classes' must be label strings")
            labels = tuple(cls["classes"])
            scores = tuple(check_score(s, path=path, record=where, what="classification score")
                           for s in cls["scores"])
        conf = None
        if isinstance(rec.get("detections"), list):
            confs = [check_score(d.get("conf") if isinstance(d, dict) else d, path=path,
                                 record=where, what="detection 'conf'")
                     for d in rec["detections"]]
            conf = max(confs, default=0.0)
        pred = rec.get("prediction")
        failures = rec.get("failures") or []
        if pred is None:
            if failures or not labels:
                if not failures:
                    raise fail(path, where, "missing required field 'prediction' (and no "
                               "'failures' or 'classifications')")
                records.append(Record(key, where, failed=True))
                continue
            # classifier-only output: the classifier's arg-max is the prediction
            records.append(Record(key, where, labels, scores, detector_conf=conf))
            continue
        if not isinstance(pred, str):
            raise fail(path, where, f"'prediction' {pred!r} is not a label string")
        if "prediction_score" not in rec:
            raise fail(path, where, "missing required field 'prediction_score'")
        score = check_score(rec["prediction_score"], path=path, record=where,
                            what="'prediction_score'")
        records.append(Record(key, where, labels, scores, prediction=pred, score=score,
                              detector_conf=conf))
    if not records:
        raise fail(path, "predictions", "the list is empty")
    return Source(format=FORMAT, path=path, records=records,
                  model_version=", ".join(versions) or None)


# -- writing (the demo's stand-in for a SpeciesNet run) ----------------------------------------
def label_for(category: str, taxonomy: Taxonomy | None = None) -> str:
    """A SpeciesNet-style label for a dataset category, from the taxonomy table.

    Non-taxa get SpeciesNet's own labels (``empty`` -> blank); a group with members is labelled
    by its first member (a jackal by genus *Lupulella*, as SpeciesNet would name one).

    >>> label_for("guineafowl").split(";")[1:]
    ['aves', 'galliformes', 'numididae', '', '', 'numididae family']
    >>> label_for("empty") == BLANK
    True
    """
    tax = taxonomy or load_taxonomy()
    row = tax.row(category)
    if category == "empty" or row.kind == "non_taxon":
        return BLANK
    if category == "human":
        return HUMAN
    if row.members:
        member = tax.parse_path(row.members[0]) or {"genus": row.members[0].split()[0].lower()}
        names = [row.class_, row.order, row.family, member.get("genus", ""),
                 member.get("species", "")]
        common = row.members[0].lower()
    else:
        names = [row.class_, row.order, row.family, row.genus, row.species]
        common = re.sub(r"\s*\(.*\)", "", row.vernacular_name).lower()  # "lion (female)"
        if row.taxon_rank not in ("species", ""):
            common = f"{row.scientific_name.lower()} {row.taxon_rank}"
    names = [n.lower() for n in names]
    uid = uuid.uuid5(uuid.NAMESPACE_URL, "traplens-speciesnet:" + ";".join(names))
    return ";".join([str(uid), *names, common])


def family_label(category: str, taxonomy: Taxonomy | None = None) -> str:
    """The SpeciesNet-style label of a category's family (a roll-up target)."""
    row = (taxonomy or load_taxonomy()).row(category)
    names = [row.class_.lower(), row.order.lower(), row.family.lower(), "", ""]
    uid = uuid.uuid5(uuid.NAMESPACE_URL, "traplens-speciesnet:" + ";".join(names))
    return ";".join([str(uid), *names, f"{row.family.lower()} family"])


def export(out: str | Path, *, file_paths: Sequence[str], probs: np.ndarray,
           classes: Sequence[str], failed: Sequence[str] = (), rollup_below: float = 0.5,
           model_version: str = "traplens-demo") -> Path:
    """Write predictions in SpeciesNet's format (the demo's imported run).

    Each image gets the top five classes of ``probs`` as ``classifications``, one full-frame
    animal detection with confidence ``1 - p(empty)``, and as ``prediction`` the top class,
    or, when its score is below ``rollup_below`` and the top two share a family, that family
    with their summed score (SpeciesNet's roll-up). ``failed`` paths get
    ``"failures": ["CLASSIFIER", "DETECTOR"]`` and no prediction.
    """
    tax = load_taxonomy()
    labels = [label_for(c, tax) for c in classes]
    empty = list(classes).index("empty") if "empty" in classes else None
    preds: list[dict] = []
    for fp, p in zip(file_paths, np.asarray(probs, np.float64)):
        order = np.argsort(-p, kind="stable")[:5]
        top, second = int(order[0]), int(order[1]) if len(order) > 1 else int(order[0])
        pred, score, source = labels[top], float(p[top]), "classifier"
        fam = tax.row(classes[top]).family
        if (score < rollup_below and fam and top != second
                and tax.row(classes[second]).family == fam):
            pred, score, source = family_label(classes[top], tax), float(p[top] + p[second]), \
                "rollup_to_family"
        conf = 1.0 - float(p[empty]) if empty is not None else 1.0
        preds.append({
            "filepath": fp,
            "classifications": {"classes": [labels[k] for k in order],
                                "scores": [round(float(p[k]), 6) for k in order]},
            "detections": [{"category": "1", "label": "animal", "conf": round(conf, 6),
                            "bbox": [0.25, 0.25, 0.5, 0.5]}] if conf >= 0.01 else [],
            "prediction": pred, "prediction_score": round(min(score, 1.0), 6),
            "prediction_source": source, "model_version": model_version})
    for fp in failed:
        preds.append({"filepath": fp, "failures": ["CLASSIFIER", "DETECTOR"],
                      "model_version": model_version})
    return atomic_write(out, json.dumps({"predictions": preds}, indent=1) + "\n")
