"""Export: corrected COCO Camera Traps JSON, one file per input file, streamed.

Written atomically through :func:`data.files.atomic_write`: a crash or a kill mid-export leaves
the previous export as it was.
"""
from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pandas as pd

from data.cct import CHUNK_BYTES, DatasetError, iter_members
from data.curation.common import ExportError, now
from data.curation.store import DecisionStore
from data.files import atomic_write

if TYPE_CHECKING:
    from data.cct import Dataset

log = logging.getLogger(__name__)

# Fields copied from an image's existing annotation onto an annotation added for a new class:
# they describe the capture, not the species. Species fields (count, behaviour) become NaN.
CONTEXT_FIELDS = ("seq_id", "season", "datetime", "location", "subject_id")
_NAMESPACE = uuid.UUID("6f1d1c2e-7a0b-4c1e-9a57-3c6b1f0e2d41")


_STREAMED = ("images", "annotations")


def _get(obj: object, key: str) -> str | None:
    """An image id as ``data.cct`` reads it (``str`` of any non-null value)."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if value is None or isinstance(value, str) else str(value)


def _batch(raw: bytes) -> list:
    """Array elements as the standard ``json`` reads them (a bare NaN stays float NaN)."""
    return json.loads(b"[" + raw + b"]")


@dataclass
class _Found:
    """What the first pass over a COCO-CT file keeps: its members other than the two big
    arrays, and the records of the images to correct."""
    members: dict = field(default_factory=dict)
    images: dict[str, dict] = field(default_factory=dict)
    annotations: dict[str, list[dict]] = field(default_factory=dict)


def _first_pass(src: Path, wanted: dict, chunk_bytes: int) -> _Found:
    found = _Found()
    for key, kind, (items, raw) in iter_members(src, stream=_STREAMED, raw=True,
                                                chunk_bytes=chunk_bytes):
        if kind == "value":
            found.members[key] = json.loads(raw)
        elif kind == "start":
            continue
        elif key == "images" and any(_get(i, "id") in wanted for i in items):
            found.images.update((_get(i, "id"), i) for i in _batch(raw)
                                if _get(i, "id") in wanted)
        elif key == "annotations" and any(_get(a, "image_id") in wanted for a in items):
            for ann in _batch(raw):
                if _get(ann, "image_id") in wanted:
                    found.annotations.setdefault(_get(ann, "image_id"), []).append(ann)
    return found


def _categories_for(cats: list[dict], fixes: dict, categories: pd.DataFrame | None
                    ) -> list[dict]:
    """The file's category list, extended by the corrected classes it lacks."""
    have = {c["name"] for c in cats}
    needed = {c for r in fixes.values() for c in r.labels if c not in have}
    if not needed:
        return cats
    known = {} if categories is None else dict(zip(categories["name"],
                                                   categories["category_id"]))
    missing = sorted(needed - set(known))
    if missing:
        raise ExportError(f"corrected classes {missing} are not categories of the dataset")
    return cats + [{"id": int(known[n]), "name": n} for n in sorted(needed, key=known.get)]


def _replacement(image_id: str, fix, old: list[dict], image: dict, ids: dict[str, int]
                 ) -> list[dict]:
    """One annotation per corrected class of ``image_id``, in the decided order."""
    template = old[0] if old else None
    out = []
    for name in fix.labels:
        same = next((a for a in old if a.get("category_id") == ids[name]), None)
        if same is not None:
            ann = dict(same)
        else:
            ann = {k: float("nan") for k in (template or {})}
            ann.update({k: image[k] for k in CONTEXT_FIELDS if k in image})
            ann.update({k: template[k] for k in CONTEXT_FIELDS if template and k in template})
            ann["id"] = str(uuid.uuid5(_NAMESPACE, f"{image_id}|{name}|{fix.decision_id}"))
            ann["image_id"] = image_id
            ann["category_id"] = ids[name]
        ann["sequence_level_annotation"] = fix.scope == "capture"
        out.append(ann)
    return out


def write_corrected_cct(src: str | Path, fh: IO[str], effective: pd.DataFrame, *,
                        categories: pd.DataFrame | None = None, info: dict | None = None,
                        chunk_bytes: int = CHUNK_BYTES) -> int:
    """Write COCO-CT file ``src`` to ``fh`` with corrected label sets; return how many of its
    images were corrected.

    ``effective`` is ``DecisionStore.effective(dataset)``: ``image_id``, ``labels``, ``scope``,
    ``decision_id``. A corrected image's annotations are replaced, in place of its first one,
    by one annotation per corrected class in the decided order (at the end of the list for an
    image that had none); ``sequence_level_annotation`` is true for a capture-level decision
    and false for a frame-level one. An existing annotation of the same class keeps its fields
    (count, behaviour); a new class gets the capture fields of the image's first annotation
    and NaN elsewhere. ``categories`` (``category_id``, ``name``) supplies classes this file's
    list lacks; ``info`` entries are merged into the file's ``info``.

    ``src`` is streamed twice (``chunk_bytes`` at a time), first for the records of the
    corrected images, then to write, so memory stays near one read batch whatever the file's
    size (the all-seasons Snapshot Serengeti file is 5.2 GB). Batches of images and
    annotations without a corrected image, and top-level members other than ``categories``
    and ``info``, are copied byte for byte; bare ``NaN`` tokens stay bare ``NaN``, as in the
    published files.
    """
    src = Path(src)
    wanted = {r.image_id: r for r in effective.itertuples(index=False)}
    found = _first_pass(src, wanted, chunk_bytes)
    fixes = {i: r for i, r in wanted.items() if i in found.images}
    cats = _categories_for(list(found.members.get("categories") or []), fixes, categories)
    ids = {c["name"]: c["id"] for c in cats}
    members = {"categories": cats}
    if info is not None:
        old = found.members.get("info")
        members["info"] = (old if isinstance(old, dict) else {}) | info
    done: set[str] = set()

    def replaced(image_id: str) -> list[dict]:
        done.add(image_id)
        return _replacement(image_id, fixes[image_id], found.annotations.get(image_id, []),
                            found.images[image_id], ids)

    def corrected(batch: list) -> Iterator[dict]:
        for ann in batch:
            image_id = _get(ann, "image_id")
            if image_id not in fixes:
                yield ann
            elif image_id not in done:  # an image's first annotation: its replacement
                yield from replaced(image_id)

    array, sep, first = None, "", True  # the open array, the separator before its next item

    def close_array() -> None:
        nonlocal array
        if array == "annotations":  # corrected images that had no annotation
            extra = [a for i in fixes if i not in done for a in replaced(i)]
            if extra:
                fh.write(sep + ",".join(json.dumps(a) for a in extra))
        if array is not None:
            fh.write("]")
        array = None

    fh.write("{")
    for key, kind, (items, raw) in iter_members(src, stream=_STREAMED, raw=True,
                                                chunk_bytes=chunk_bytes):
        if kind == "items":
            if key == "annotations" and any(_get(a, "image_id") in fixes for a in items):
                text = ",".join(json.dumps(a) for a in corrected(_batch(raw)))
            else:
                text = raw.decode("utf-8")
            if text:
                fh.write(sep + text)
                sep = ","
            continue
        close_array()
        fh.write(("" if first else ",") + json.dumps(key) + ":")
        first = False
        if kind == "start":
            fh.write("[")
            array, sep = key, ""
        else:
            fh.write(json.dumps(members.pop(key)) if key in members else raw.decode("utf-8"))
    close_array()
    for key, value in members.items():  # info, when the file has none
        fh.write(("" if first else ",") + json.dumps(key) + ":" + json.dumps(value))
        first = False
    fh.write("}\n")
    return len(fixes)


def coco_targets(sources: Sequence[Path], out: Path) -> list[Path]:
    """One output per input: ``out`` itself when it ends in .json (one input only), else a
    folder holding each input under its own file name."""
    if out.suffix.lower() == ".json":
        if len(sources) != 1:
            raise ExportError(f"--out {out}: {len(sources)} input files give {len(sources)} "
                              "outputs; pass a folder instead of a .json file")
        targets = [out]
    else:
        names = [s.name for s in sources]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ExportError(f"input files share the name(s) {dup}; export them separately")
        targets = [out / n for n in names]
    for src, dst in zip(sources, targets):
        if dst.resolve() == src.resolve():
            raise ExportError(f"--out {dst}: refusing to overwrite the input file")
    return targets


def export_coco(dataset: "Dataset", store: DecisionStore, out: str | Path) -> list[Path]:
    """Write the corrected COCO Camera Traps JSON (one file per input file); return paths."""
    from tqdm import tqdm

    sources = [Path(s["path"]) for s in dataset.sources]
    targets = coco_targets(sources, Path(out))
    effective = store.effective(dataset)
    written = []
    for src, dst in tqdm(list(zip(sources, targets)), desc="export coco", unit="file",
                         leave=False, disable=None):
        stamp = {"source": src.name, "decisions": Path(store.path).name, "exported_at": now()}
        counts: list[int] = []

        def write(fh: IO[str], src: Path = src, stamp: dict = stamp) -> None:
            try:
                n = write_corrected_cct(src, fh, effective, categories=dataset.categories,
                                        info={"traplens_corrections": stamp})
            except DatasetError as exc:  # changed or unreadable since the dataset was loaded
                raise ExportError(str(exc)) from None
            counts.append(n)

        written.append(atomic_write(dst, write=write, text=True))
        log.info("%s: %d corrected images -> %s", src.name, counts[0], dst)
    return written
