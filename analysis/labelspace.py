"""Label spaces: a run's classes need not be the dataset's categories.

Pure functions that align a model's class list with a dataset's (permutation, subset,
superset), read and write the mapping file (``model_label,dataset_class``), sum probabilities
of model labels mapped onto one dataset class, roll classes up to a taxonomic level, and find
the images a model cannot score. See docs/formats.md, "Taxonomy and label mapping".
"""
from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.files import atomic_write
from data.taxonomy import Taxonomy, load_taxonomy
from data.taxonomy.mapping import MAPPING_HEADER, LabelSpaceError, read_mapping

log = logging.getLogger(__name__)

#: The mapping file a run folder may hold (used unless ``--mapping`` names another).
MAPPING_FILE = "mapping.csv"


def _brief(names: Sequence[str], k: int = 5) -> str:
    names = list(names)
    shown = ", ".join(names[:k])
    return f"[{shown}{', ...' if len(names) > k else ''}] ({len(names)})"


def _check_unique(names: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise LabelSpaceError(f"{what} lists {name!r} twice")
        seen.add(name)


@dataclass(frozen=True, eq=False)
class Alignment:
    """How a run's classes line up with a dataset's.

    Attributes
    ----------
    run_classes, dataset_classes : tuple of str
        The two class lists as given (run = probability order).
    common : tuple of str
        Classes in both, in dataset order.
    run_index : ndarray of int, shape (C_dataset,)
        Column of each dataset class in the run's probabilities, -1 when the model cannot
        predict it.
    dataset_index : ndarray of int, shape (K_run,)
        Index of each run class among the dataset classes, -1 for a class outside the dataset.
    unknown_to_model : tuple of str
        Dataset classes the model cannot predict (dataset order).
    extra_in_model : tuple of str
        Run classes outside the dataset (run order): predicting them is an error.
    kind : str
        ``identical``, ``permutation``, ``subset`` (run classes within the dataset's),
        ``superset`` (run classes include all the dataset's) or ``overlap``.
    """

    run_classes: tuple[str, ...]
    dataset_classes: tuple[str, ...]
    common: tuple[str, ...]
    run_index: np.ndarray
    dataset_index: np.ndarray
    unknown_to_model: tuple[str, ...]
    extra_in_model: tuple[str, ...]
    kind: str

    @property
    def predictable(self) -> np.ndarray:
        """Bool (C_dataset,): dataset classes the model can predict."""
        return self.run_index >= 0

    @property
    def classes(self) -> tuple[str, ...]:
        """The scoring class list: dataset classes, then the model's extra classes."""
        return self.dataset_classes + self.extra_in_model

    def probs(self, probs: np.ndarray) -> np.ndarray:
        """Run probabilities (n, K_run) as columns of :attr:`classes` (n, C_dataset + extra).

        Dataset classes the model cannot predict get probability 0; the extra classes keep
        their probability, so an arg-max on one of them is a wrong prediction.
        """
        probs = np.asarray(probs)
        if probs.ndim != 2 or probs.shape[1] != len(self.run_classes):
            raise LabelSpaceError(f"probabilities of shape {probs.shape} do not have one column "
                                  f"per run class ({len(self.run_classes)})")
        cols = np.concatenate([self.run_index, np.flatnonzero(self.dataset_index < 0)])
        out = probs[:, np.where(cols >= 0, cols, 0)]
        out[:, cols < 0] = 0
        return out

    def labels(self, labels: np.ndarray) -> np.ndarray:
        """Dataset labels (n, C_dataset) bool padded with False columns for the extra classes."""
        labels = np.asarray(labels, dtype=bool)
        pad = np.zeros((labels.shape[0], len(self.extra_in_model)), dtype=bool)
        return np.concatenate([labels, pad], axis=1)


def align(run_classes: Sequence[str], dataset_classes: Sequence[str]) -> Alignment:
    """Align a run's class list with a dataset's.

    Parameters
    ----------
    run_classes : sequence of str, length K
        The run's classes in probability order.
    dataset_classes : sequence of str, length C
        The dataset's classes (its class order).

    Returns
    -------
    Alignment

    Raises
    ------
    LabelSpaceError
        When a list repeats a class, or when the two lists have no class in common.

    >>> a = align(["zebra", "empty", "lion"], ["empty", "zebra", "impala"])
    >>> a.kind, a.run_index.tolist(), a.unknown_to_model, a.extra_in_model
    ('overlap', [1, 0, -1], ('impala',), ('lion',))
    """
    run = tuple(run_classes)
    ds = tuple(dataset_classes)
    _check_unique(run, "the run's class list")
    _check_unique(ds, "the dataset's class list")
    run_pos = {c: i for i, c in enumerate(run)}
    ds_pos = {c: i for i, c in enumerate(ds)}
    run_index = np.array([run_pos.get(c, -1) for c in ds], dtype=np.int64)
    dataset_index = np.array([ds_pos.get(c, -1) for c in run], dtype=np.int64)
    common = tuple(c for c in ds if c in run_pos)
    if not common:
        raise LabelSpaceError(f"the run's classes {_brief(run)} have no class in common with "
                              f"the dataset's {_brief(ds)}")
    unknown = tuple(c for c in ds if c not in run_pos)
    extra = tuple(c for c in run if c not in ds_pos)
    if run == ds:
        kind = "identical"
    elif not unknown and not extra:
        kind = "permutation"
    elif not extra:
        kind = "subset"
    elif not unknown:
        kind = "superset"
    else:
        kind = "overlap"
    return Alignment(run, ds, common, run_index, dataset_index, unknown, extra, kind)


def write_mapping_template(path: str | Path, model_classes: Sequence[str],
                           dataset_classes: Sequence[str], *,
                           taxonomy: Taxonomy | None = None) -> Path:
    """Write a mapping file for the user to edit: one row per model label, in model order.

    ``dataset_class`` is the label itself where a dataset class has that name, else the one
    dataset class the taxonomy matches (:meth:`Taxonomy.match`: the class whose taxon is or
    contains the label's taxon; SpeciesNet labels and scientific names are understood), and
    empty otherwise, also when several classes share the taxon (the three lion categories): a
    label maps onto one class, the taxonomic level scores shared taxa together.

    Parameters
    ----------
    path : str or Path
        Written atomically (``data.files.atomic_write``).
    model_classes, dataset_classes : sequence of str
    taxonomy : Taxonomy, optional
        Used for labels without an identical dataset class; None writes identities only.

    Returns
    -------
    Path

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "mapping.csv"
    >>> _ = write_mapping_template(p, ["zebra", "x;aves;galliformes;numididae;numida;meleagris;"
    ...                            "helmeted guineafowl", "tree"], ["zebra", "guineafowl"],
    ...                            taxonomy=load_taxonomy())
    >>> print(p.read_text().replace(";", " "))  # doctest: +NORMALIZE_WHITESPACE
    model_label,dataset_class
    zebra,zebra
    x aves galliformes numididae numida meleagris helmeted guineafowl,guineafowl
    tree,
    """
    ds = list(dataset_classes)
    ds_set = set(ds)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MAPPING_HEADER)
    n_mapped = 0
    for label in model_classes:
        target = label if label in ds_set else ""
        if not target and taxonomy is not None:
            try:
                m = taxonomy.match(label, classes=ds)
            except ValueError:
                m = None                  # not a taxonomic path: leave it for the user
            if m is not None and len(m.classes) == 1:
                target = m.classes[0]
        n_mapped += bool(target)
        writer.writerow([label, target])
    log.info("mapping template %s: %d of %d model labels filled", path, n_mapped,
             len(model_classes))
    return atomic_write(path, out.getvalue())


def map_probs(probs: np.ndarray, model_classes: Sequence[str], mapping: Mapping[str, str],
              dataset_classes: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Sum the probabilities of the model labels mapped onto each dataset class.

    Parameters
    ----------
    probs : ndarray, shape (n, K)
        Probabilities in ``model_classes`` order.
    model_classes : sequence of str, length K
    mapping : mapping of str to str
        Model label -> dataset class. A label not in ``mapping`` but named like a dataset
        class maps onto it; any other label stays a column of its own (after the dataset
        classes, in model order), so predicting it is an error.
    dataset_classes : sequence of str, length C

    Returns
    -------
    probs : ndarray, shape (n, C + U)
        Same dtype; a dataset class nothing maps onto has probability 0.
    classes : list of str
        ``dataset_classes`` followed by the U unmapped model labels.

    >>> p = np.array([[0.5, 0.2, 0.3]])
    >>> out, classes = map_probs(p, ["lion", "leo", "tree"], {"leo": "lion"}, ["lion", "zebra"])
    >>> out.tolist(), classes
    ([[0.7, 0.0, 0.3]], ['lion', 'zebra', 'tree'])
    """
    probs = np.asarray(probs)
    model = list(model_classes)
    ds = list(dataset_classes)
    _check_unique(model, "the model's class list")
    _check_unique(ds, "the dataset's class list")
    if probs.ndim != 2 or probs.shape[1] != len(model):
        raise LabelSpaceError(f"probabilities of shape {probs.shape} do not have one column per "
                              f"model class ({len(model)})")
    target, classes = _mapped_columns(model, mapping, ds)
    return _sum_columns(probs, target, len(classes), np.add), classes


def _mapped_columns(model: list[str], mapping: Mapping[str, str], ds: list[str]
                    ) -> tuple[np.ndarray, list[str]]:
    """Output column of each model label and the output classes (``ds`` + unmapped labels)."""
    ds_pos = {c: i for i, c in enumerate(ds)}
    model_set = set(model)
    for label, target in mapping.items():
        if label not in model_set:
            raise LabelSpaceError(f"mapping names unknown model label {label!r}")
        if target not in ds_pos:
            raise LabelSpaceError(f"mapping sends {label!r} to unknown dataset class {target!r}")
    target = np.empty(len(model), dtype=np.int64)
    unmapped: list[str] = []
    for k, label in enumerate(model):
        dest = mapping.get(label, label)
        if dest in ds_pos:
            target[k] = ds_pos[dest]
        else:
            target[k] = len(ds) + len(unmapped)
            unmapped.append(label)
    return target, ds + unmapped


@dataclass(frozen=True, eq=False)
class ModelSpace:
    """A run's classes as seen from a dataset, after an optional mapping.

    Attributes
    ----------
    classes : tuple of str
        The scoring classes: the run's labels in probability order (each replaced by the
        dataset class it maps onto, labels mapped onto one class merged), then the dataset
        classes the model cannot predict (probability 0). Without a mapping, a run whose
        classes are the dataset's keeps its order and its array untouched.
    target : ndarray of int, shape (K_run,)
        Column of :attr:`classes` each run class's probability is added to.
    dataset_classes : tuple of str
    predictable : ndarray of bool, shape (C_dataset,)
        Dataset classes at least one model label lands on.
    kind : str
        As :attr:`Alignment.kind`; ``mapped`` when a mapping merges or renames labels.
    mapping : dict of str to str
        The mapping used (empty: labels match dataset classes by name).
    mapping_source : str or None
        The mapping file, when the mapping came from one.
    """

    classes: tuple[str, ...]
    target: np.ndarray
    dataset_classes: tuple[str, ...]
    predictable: np.ndarray
    kind: str
    mapping: dict
    mapping_source: str | None = None

    @property
    def identity(self) -> bool:
        """The run's probability columns are already :attr:`classes` (nothing to move)."""
        return (len(self.target) == len(self.classes)
                and bool(np.array_equal(self.target, np.arange(len(self.target)))))

    @property
    def unknown_to_model(self) -> tuple[str, ...]:
        """Dataset classes no model label lands on (dataset order)."""
        return tuple(c for c, ok in zip(self.dataset_classes, self.predictable) if not ok)

    @property
    def extra_in_model(self) -> tuple[str, ...]:
        """Model labels outside the dataset's classes after mapping (model order)."""
        ds = set(self.dataset_classes)
        return tuple(c for c in self.classes if c not in ds)

    @property
    def dataset_columns(self) -> np.ndarray:
        """Column of :attr:`classes` holding each dataset class, shape (C_dataset,)."""
        pos = {c: i for i, c in enumerate(self.classes)}
        return np.array([pos[c] for c in self.dataset_classes], dtype=np.int64)

    def probs(self, probs: np.ndarray) -> np.ndarray:
        """Run probabilities (n, K_run) as columns of :attr:`classes` (summed where several
        labels map onto one class, 0 for classes the model cannot predict); the input itself
        when :attr:`identity`."""
        if self.identity:
            return probs
        return _sum_columns(np.asarray(probs), self.target, len(self.classes), np.add)


def model_space(run_classes: Sequence[str], dataset_classes: Sequence[str],
                mapping: Mapping[str, str] | None = None, *, source: str | None = None,
                where: str = "run") -> ModelSpace:
    """How a run's classes (through an optional mapping) land on a dataset's classes.

    Parameters
    ----------
    run_classes : sequence of str, length K
    dataset_classes : sequence of str, length C
    mapping : mapping of str to str, optional
        Model label -> dataset class (:func:`read_mapping`); a label named like a dataset
        class maps onto it without a row.
    source : str, optional
        Where the mapping came from (kept for reports and messages).
    where : str
        Named first in error messages (the run folder).

    Raises
    ------
    LabelSpaceError
        A list repeats a class, the mapping names unknown classes, or no model label lands
        on a dataset class.

    >>> s = model_space(["zebra", "leo", "lion", "tree"], ["lion", "zebra", "impala"],
    ...                 {"leo": "lion"})
    >>> s.classes, s.target.tolist(), s.unknown_to_model, s.extra_in_model, s.kind
    (('zebra', 'lion', 'tree', 'impala'), [0, 1, 1, 2], ('impala',), ('tree',), 'mapped')
    """
    run, ds = list(run_classes), list(dataset_classes)
    _check_unique(run, "the run's class list")
    _check_unique(ds, "the dataset's class list")
    mapping = dict(mapping or {})
    ds_set, run_set = set(ds), set(run)
    for label, dest in mapping.items():
        if label not in run_set:
            raise LabelSpaceError(f"{where}: mapping names unknown model label {label!r}")
        if dest not in ds_set:
            raise LabelSpaceError(f"{where}: mapping sends {label!r} to unknown dataset class "
                                  f"{dest!r}")
    dests = [mapping.get(c, c) for c in run]
    classes = list(dict.fromkeys(dests))
    landed = set(classes) & ds_set
    if not landed:
        raise LabelSpaceError(f"{where}: the run's classes {_brief(run)} have no class in common "
                              f"with the dataset's {_brief(ds)}"
                              + (f" (mapping {source})" if source else ""))
    classes += [c for c in ds if c not in landed]
    pos = {c: i for i, c in enumerate(classes)}
    target = np.array([pos[d] for d in dests], dtype=np.int64)
    predictable = np.array([c in landed for c in ds], dtype=bool)
    kind = "mapped" if dests != run else align(run, ds).kind
    return ModelSpace(tuple(classes), target, tuple(ds), predictable, kind, mapping, source)


def resolve_mapping(run_dir: str | Path, run_classes: Sequence[str],
                    dataset_classes: Sequence[str], mapping: str | Path | Mapping | None = None
                    ) -> tuple[dict[str, str], str | None]:
    """The mapping a run is scored with, and its file.

    ``mapping`` given as a file is read (:func:`read_mapping`); as a dict, used as is; None:
    ``mapping.csv`` in the run folder when there is one (:data:`MAPPING_FILE`), else no mapping.
    """
    if mapping is not None and not isinstance(mapping, (str, Path)):
        return dict(mapping), None
    path = Path(mapping) if mapping is not None else Path(run_dir) / MAPPING_FILE
    if mapping is None and not path.is_file():
        return {}, None
    return (read_mapping(path, model_classes=run_classes, dataset_classes=dataset_classes),
            str(path))


def _sum_columns(values: np.ndarray, target: np.ndarray, n_out: int, ufunc) -> np.ndarray:
    """Reduce the columns of ``values`` into ``n_out`` columns by ``target`` with ``ufunc``."""
    order = np.argsort(target, kind="stable")
    sorted_target = target[order]
    present, starts = np.unique(sorted_target, return_index=True)
    out = np.zeros((values.shape[0], n_out), dtype=values.dtype)
    if values.shape[0] and len(present):
        out[:, present] = ufunc.reduceat(values[:, order], starts, axis=1)
    return out


def rollup(probs: np.ndarray, labels: np.ndarray, classes: Sequence[str], level: str, *,
           taxonomy: Taxonomy | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Merge classes into their groups at a taxonomic level.

    Probabilities are summed and labels OR-ed within each group (see
    :meth:`data.taxonomy.Taxonomy.group_of`: the three lion categories become ``Panthera leo``
    at species level; Grant's and Thomson's gazelle meet in ``Bovidae`` at family level).

    Parameters
    ----------
    probs : ndarray, shape (n, C)
    labels : ndarray of bool, shape (n, C)
    classes : sequence of str, length C
    level : {"label", "species", "genus", "family", "order", "class"}
    taxonomy : Taxonomy, optional
        Default: the shipped Snapshot Serengeti table.

    Returns
    -------
    probs : ndarray, shape (n, G)
    labels : ndarray of bool, shape (n, G)
    groups : list of str, length G
        Group names in order of their first class.

    >>> p = np.array([[0.2, 0.3, 0.5]])
    >>> y = np.array([[True, False, False]])
    >>> rp, ry, groups = rollup(p, y, ["lionmale", "lionfemale", "zebra"], "species")
    >>> rp.tolist(), ry.tolist(), groups
    ([[0.5, 0.5]], [[True, False]], ['Panthera leo', 'Equus quagga'])
    """
    probs = np.asarray(probs)
    labels = np.asarray(labels, dtype=bool)
    classes = list(classes)
    if probs.ndim != 2 or probs.shape[1] != len(classes) or labels.shape != probs.shape:
        raise LabelSpaceError(f"probabilities {probs.shape} and labels {labels.shape} must both "
                              f"be (n, {len(classes)}), one column per class")
    tax = load_taxonomy() if taxonomy is None else taxonomy
    names = tax.group_of(classes, level)
    groups = list(dict.fromkeys(names))
    pos = {g: i for i, g in enumerate(groups)}
    target = np.array([pos[g] for g in names], dtype=np.int64)
    return (_sum_columns(probs, target, len(groups), np.add),
            _sum_columns(labels, target, len(groups), np.logical_or), groups)


def not_scorable(labels: np.ndarray, predictable: np.ndarray) -> np.ndarray:
    """Images whose only labels are classes the model cannot predict.

    Parameters
    ----------
    labels : ndarray of bool, shape (n, C)
        Label sets over the dataset classes.
    predictable : ndarray of bool, shape (C,)
        Dataset classes the model can predict (:attr:`Alignment.predictable`).

    Returns
    -------
    ndarray of bool, shape (n,)
        True for an image with at least one label and none the model can predict. Images
        without labels are False (they have no ground truth to score at all).

    >>> not_scorable(np.array([[1, 0], [1, 1], [0, 0]], bool), np.array([False, True])).tolist()
    [True, False, False]
    """
    labels = np.asarray(labels, dtype=bool)
    predictable = np.asarray(predictable, dtype=bool)
    if labels.ndim != 2 or predictable.shape != (labels.shape[1],):
        raise LabelSpaceError(f"labels {labels.shape} and predictable {predictable.shape} "
                              "disagree on the number of classes")
    return labels.any(axis=1) & ~(labels & predictable).any(axis=1)


def display_names(names: Sequence[str], *, taxonomy: Taxonomy | None = None) -> list[str]:
    """Vernacular and scientific name of each class or group, for hover texts.

    A dataset category gives ``"Lion (female) · Panthera leo"`` (the vernacular alone for
    non-taxa); a group of :func:`rollup` (a scientific name) gives the vernacular of the
    category that has it as its own taxon where one does; any other name is returned as is.

    >>> display_names(["lionmale", "empty", "Panthera leo", "Bovidae", "tree"])
    ['Lion (male) · Panthera leo', 'Empty (no animal)', 'Lion · Panthera leo', 'Bovidae', 'tree']
    """
    tax = load_taxonomy() if taxonomy is None else taxonomy
    by_taxon: dict[str, str] = {}
    for cat in tax.categories:
        row = tax.row(cat)
        if not row.scientific_name:
            continue
        if row.sex == "" and row.life_stage == "":
            by_taxon[row.scientific_name] = row.vernacular_name  # the plain category wins
        else:  # "Lion (male)" stands for Panthera leo as "Lion" until a plain one shows up
            by_taxon.setdefault(row.scientific_name, row.vernacular_name.split(" (")[0])
    out = []
    for name in names:
        if name in tax:
            row = tax.row(name)
            out.append(f"{row.vernacular_name} · {row.scientific_name}" if row.scientific_name
                       else row.vernacular_name or name)
        elif name in by_taxon:
            out.append(f"{by_taxon[name]} · {name}")
        else:
            out.append(name)
    return out
