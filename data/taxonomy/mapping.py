"""The mapping file ``model_label,dataset_class`` (docs/formats.md, "The mapping file").

It lives in ``data`` because both layers read it: ``data.imports`` maps another model's labels
onto dataset classes while importing its predictions, and ``analysis.labelspace`` maps a run's
classes (it re-exports :func:`read_mapping`, :data:`MAPPING_HEADER` and
:class:`LabelSpaceError`).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

MAPPING_HEADER = ("model_label", "dataset_class")


class LabelSpaceError(ValueError):
    """Class lists that cannot be aligned, or a bad mapping file (message names file and line)."""


def read_mapping(path: str | Path, *, model_classes: Sequence[str] | None,
                 dataset_classes: Sequence[str], keep_unmapped: bool = False) -> dict[str, str]:
    """Read a mapping file ``model_label,dataset_class`` into ``{model_label: dataset_class}``.

    The header is required (further columns are ignored, e.g. notes). A row with an empty
    ``dataset_class`` leaves its label unmapped (as the template writes it).

    Parameters
    ----------
    path : str or Path
    model_classes : sequence of str, or None
        The run's classes: every ``model_label`` must be one of them. None accepts any label
        (an importer's mapping may cover labels the imported file never uses).
    dataset_classes : sequence of str
        Every non-empty ``dataset_class`` must be one of them.
    keep_unmapped : bool
        Also return the labels left unmapped, with ``""`` as their class (an importer must
        not map them on its own).

    Raises
    ------
    LabelSpaceError
        One line naming the file, the line number and the reason: unreadable file, missing
        header, unknown model label, unknown dataset class, a duplicate row, one label
        mapped to two classes.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "mapping.csv"
    >>> _ = p.write_text("model_label,dataset_class\\nPanthera leo,lion\\n")
    >>> read_mapping(p, model_classes=["Panthera leo"], dataset_classes=["lion"])
    {'Panthera leo': 'lion'}
    """
    path = Path(path)
    models = None if model_classes is None else set(model_classes)
    ds = set(dataset_classes)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise LabelSpaceError(f"{path}: cannot read the mapping file "
                              f"({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise LabelSpaceError(f"{path}: the mapping file is not UTF-8 text") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise LabelSpaceError(f"{path}, line 1: not CSV ({exc})") from exc
    if header is None or tuple(h.strip().lower() for h in header[:2]) != MAPPING_HEADER:
        got = ",".join(header or [])
        raise LabelSpaceError(f"{path}, line 1: the header must be "
                              f"'{','.join(MAPPING_HEADER)}', got {got!r}")
    mapping: dict[str, str] = {}
    where: dict[str, int] = {}
    while True:
        try:
            rec = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise LabelSpaceError(f"{path}, line {reader.line_num}: not CSV ({exc})") from exc
        line = reader.line_num
        if not any(f.strip() for f in rec):
            continue
        if len(rec) < 2:
            raise LabelSpaceError(f"{path}, line {line}: expected 2 fields "
                                  f"(model_label,dataset_class), got {len(rec)}")
        label, target = rec[0].strip(), rec[1].strip()
        if not label:
            raise LabelSpaceError(f"{path}, line {line}: empty model_label")
        if models is not None and label not in models:
            raise LabelSpaceError(f"{path}, line {line}: unknown model label {label!r} "
                                  f"(not among the run's {len(models)} classes)")
        if target and target not in ds:
            raise LabelSpaceError(f"{path}, line {line}: unknown dataset class {target!r} "
                                  f"(not among the dataset's {len(ds)} classes)")
        if label in where:
            first = where[label]
            if mapping.get(label, "") == target:
                raise LabelSpaceError(f"{path}, line {line}: duplicate row for {label!r} "
                                      f"(same as line {first})")
            raise LabelSpaceError(f"{path}, line {line}: {label!r} mapped to two classes: "
                                  f"{target or '(none)'!r} here, "
                                  f"{mapping.get(label, '(none)')!r} on line {first}")
        where[label] = line
        if target or keep_unmapped:
            mapping[label] = target
    return mapping
