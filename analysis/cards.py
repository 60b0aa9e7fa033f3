"""Species cards: what a presenter shows beside a photo of a species (issue 18).

A card joins three sources: the taxonomy table (names, family, order), the species facts
table (IUCN Red List category and assessment year, the project's two or three sentences and
the look-alikes), both shipped in :mod:`data.taxonomy`, and, when a run is selected, the
run's own confusion matrix: the classes the model takes the species for, with their share of
the species' images. :func:`species_card` builds the card (pure, no drawing);
:func:`card_text` writes it as plain text for the HTML report and downloads (the caller
escapes it; it is never HTML or Markdown).

>>> from data.taxonomy import load_taxonomy
>>> card = species_card("zebra", taxonomy=load_taxonomy())
>>> card.vernacular_name, card.scientific_name, card.family, card.order
('Plains zebra', 'Equus quagga', 'Equidae', 'Perissodactyla')
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from data.taxonomy import Taxonomy

log = logging.getLogger(__name__)

#: The IUCN Red List categories in words (IUCN 2012, Red List Categories and Criteria 3.1).
IUCN_NAMES = {"EX": "Extinct", "EW": "Extinct in the Wild", "CR": "Critically Endangered",
              "EN": "Endangered", "VU": "Vulnerable", "NT": "Near Threatened",
              "LC": "Least Concern", "DD": "Data Deficient", "NE": "Not Evaluated"}
#: Where the Red List categories of the facts table come from (data/taxonomy/README.md).
RED_LIST_SOURCE = ("IUCN Red List of Threatened Species, as published; entered by hand, "
                   "check the current version at https://www.iucnredlist.org")
#: At most this many confusions on a card.
MAX_CONFUSIONS = 3
NOT_EVALUATED_NOTE = "Not in this run's evaluation."


class CardError(ValueError):
    """A confusion matrix or class list a card cannot use; the message names the problem."""


@dataclass(frozen=True)
class Confusion:
    """One class the model takes a species for: ``count`` of its images, ``share`` of them."""

    predicted: str
    vernacular_name: str
    count: int
    share: float


@dataclass(frozen=True)
class SpeciesCard:
    """Everything a species card shows; empty strings where a field does not apply.

    ``known`` is False for a category outside the taxonomy table (a minimal card: its name
    only). ``iucn_category`` is the code (``VU``), ``iucn_name`` its words (``Vulnerable``),
    ``red_list_source`` the source line (empty when there is no category to cite).
    ``confusions`` and ``confusion_note`` describe the current run: ``n_images`` is the
    species' row total in the run's confusion matrix (None without a run, or when the run
    does not evaluate the class); ``confusion_note`` is "" without a run.
    """

    category: str
    vernacular_name: str
    scientific_name: str
    taxon_rank: str
    family: str
    order: str
    kind: str
    iucn_category: str
    iucn_name: str
    iucn_year: int | None
    red_list_source: str
    text: str
    lookalikes: tuple[str, ...]
    confusions: tuple[Confusion, ...]
    n_images: int | None
    confusion_note: str
    known: bool


def _pct(share: float) -> str:
    return f"{100 * share:.1f} %"


def top_confusions(confusion: np.ndarray, classes: Sequence[str], category: str, *,
                   k: int = MAX_CONFUSIONS) -> tuple[list[tuple[str, int, float]], int | None]:
    """The ``k`` classes a class is most often predicted as, from a confusion matrix.

    Parameters
    ----------
    confusion : array-like of int, shape (C, C)
        Rows true class, columns predicted class (:func:`analysis.metrics.confusion`).
    classes : sequence of str, length C
        The class of each row and column, explicitly.
    category : str
        The true class whose row is read.
    k : int
        At most this many confusions.

    Returns
    -------
    confusions : list of (predicted, count, share)
        Non-zero off-diagonal cells of the row, largest count first, ties in class order;
        ``share`` = count / the row total.
    n_images : int or None
        The row total; None when ``category`` is not one of ``classes``.

    Raises
    ------
    CardError
        When the matrix is not square, does not match ``classes``, or holds negative counts.

    Examples
    --------
    >>> cm = [[8, 2, 0], [1, 9, 0], [0, 0, 0]]
    >>> top_confusions(cm, ["gazellegrants", "gazellethomsons", "impala"], "gazellegrants")
    ([('gazellethomsons', 2, 0.2)], 10)
    """
    cm = np.asarray(confusion)
    classes = list(classes)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise CardError(f"confusion matrix: expected a square (C, C) array, got shape {cm.shape}")
    if cm.shape[0] != len(classes):
        raise CardError(f"confusion matrix: shape {cm.shape} does not match the "
                        f"{len(classes)} classes given")
    if cm.size and (not np.all(np.isfinite(cm)) or cm.min() < 0):
        raise CardError("confusion matrix: counts must be finite and >= 0, got "
                        f"{cm[~np.isfinite(cm) | (cm < 0)].ravel()[0]!r}")
    if category not in classes:
        return [], None
    i = classes.index(category)
    row = cm[i].astype(np.int64)
    total = int(row.sum())
    off = row.copy()
    off[i] = 0
    nz = np.flatnonzero(off)
    order = nz[np.lexsort((nz, -off[nz]))][:k]       # largest first, ties by class order
    return [(classes[j], int(off[j]), float(off[j] / total)) for j in order], total


def _confusion_note(vernacular: str, confusions: Sequence[Confusion], n_images: int | None
                    ) -> str:
    if n_images is None or n_images == 0:
        return NOT_EVALUATED_NOTE
    images = f"{n_images:,} image{'s' if n_images != 1 else ''}"
    if not confusions:
        return f"No confusions on this run: all {images} of {vernacular} are predicted as it."
    parts = [f"{c.vernacular_name} on {c.count:,} ({_pct(c.share)})" for c in confusions]
    wrong = sum(c.count for c in confusions)
    return (f"On this run the model takes {vernacular} for {', '.join(parts)} of its "
            f"{images}" + (f" ({wrong:,} in all)." if len(confusions) > 1 else "."))


def species_card(category: str, *, taxonomy: Taxonomy, confusion: np.ndarray | None = None,
                 classes: Sequence[str] | None = None) -> SpeciesCard:
    """The species card of a dataset category, with the current run's confusions.

    Parameters
    ----------
    category : str
        A dataset category (``gazellethomsons``); one not in the table gets a minimal card.
    taxonomy : data.taxonomy.Taxonomy
        Usually :func:`data.taxonomy.load_taxonomy`.
    confusion : array-like of int, shape (C, C), optional
        The run's confusion matrix, rows true, columns predicted. Without it the card says
        nothing about a run (``confusion_note`` is "").
    classes : sequence of str, length C
        The class of each row and column; required with ``confusion``.

    Returns
    -------
    SpeciesCard

    Raises
    ------
    CardError
        ``confusion`` without ``classes``, or a matrix that does not fit them.

    Examples
    --------
    >>> from data.taxonomy import load_taxonomy
    >>> cm = [[8, 2, 0], [1, 9, 0], [0, 0, 0]]
    >>> card = species_card("gazellegrants", taxonomy=load_taxonomy(), confusion=cm,
    ...                     classes=["gazellegrants", "gazellethomsons", "impala"])
    >>> card.iucn_category, card.iucn_name
    ('LC', 'Least Concern')
    >>> print(card.confusion_note)  # doctest: +NORMALIZE_WHITESPACE
    On this run the model takes Grant's gazelle for Thomson's gazelle
    on 2 (20.0 %) of its 10 images.
    >>> species_card("impala", taxonomy=load_taxonomy(), confusion=cm,
    ...              classes=["gazellegrants", "gazellethomsons", "impala"]).confusion_note
    "Not in this run's evaluation."
    """
    row = taxonomy.row(category)
    facts = taxonomy.species_facts(category)
    if confusion is not None and classes is None:
        raise CardError("species_card: a confusion matrix needs its class list (classes=)")
    confusions: tuple[Confusion, ...] = ()
    n_images: int | None = None
    note = ""
    vernacular = row.vernacular_name or category
    if confusion is not None:
        top, n_images = top_confusions(confusion, classes, category)
        confusions = tuple(Confusion(p, taxonomy.vernacular(p) or p, n, s) for p, n, s in top)
        note = _confusion_note(vernacular, confusions, n_images)
    if not row.known:
        log.debug("species card: %r is not in the taxonomy table", category)
    iucn = facts.iucn_category if facts else ""
    return SpeciesCard(
        category=category, vernacular_name=vernacular,
        # An unknown category is its own taxon named by itself: not a scientific name to print.
        scientific_name=row.scientific_name if row.known else "",
        taxon_rank=row.taxon_rank, family=row.family, order=row.order, kind=row.kind,
        iucn_category=iucn, iucn_name=IUCN_NAMES.get(iucn, ""),
        iucn_year=facts.iucn_year if facts else None,
        red_list_source=RED_LIST_SOURCE if iucn else "",
        text=facts.text if facts else "",
        lookalikes=facts.lookalikes if facts else (),
        confusions=confusions, n_images=n_images, confusion_note=note, known=row.known)


def red_list_line(card: SpeciesCard) -> str:
    """The card's Red List line in words, e.g. ``Vulnerable (VU), assessed 2016``.

    >>> from data.taxonomy import load_taxonomy
    >>> red_list_line(species_card("empty", taxonomy=load_taxonomy()))
    'not applicable (not a taxon)'
    """
    if not card.iucn_category:
        if card.kind == "non_taxon":
            return "not applicable (not a taxon)"
        return "no category in the facts table"
    line = f"{card.iucn_name} ({card.iucn_category})"
    if card.iucn_year:
        line += f", assessed {card.iucn_year}"
    elif card.iucn_category == "NE":
        line += ": a group or domestic animal carries no category of its own"
    return line


def card_text(card: SpeciesCard, *, taxonomy: Taxonomy | None = None) -> str:
    """The card as plain text (lines separated by newlines), for the report and downloads.

    Parameters
    ----------
    card : SpeciesCard
    taxonomy : data.taxonomy.Taxonomy, optional
        Used to name the look-alikes by their vernacular names (categories otherwise).

    Returns
    -------
    str
        Never HTML or Markdown: escape it where it goes into a page.

    Examples
    --------
    >>> from data.taxonomy import load_taxonomy
    >>> print(card_text(species_card("unicorn", taxonomy=load_taxonomy())))
    unicorn
    Not in the Snapshot Serengeti taxonomy table: no names or facts to show.
    """
    lines = [card.vernacular_name if not card.scientific_name
             else f"{card.vernacular_name} ({card.scientific_name})"]
    if not card.known:
        lines.append("Not in the Snapshot Serengeti taxonomy table: no names or facts to show.")
    else:
        ranks = [f"{name}: {value}" for name, value in (("Family", card.family),
                                                         ("Order", card.order)) if value]
        if ranks:
            lines.append("; ".join(ranks))
        lines.append(f"IUCN Red List: {red_list_line(card)}")
        if card.red_list_source:
            lines.append(f"Source: {card.red_list_source}")
        if card.text:
            lines.append(card.text)
        if card.lookalikes:
            names = [taxonomy.vernacular(c) if taxonomy is not None else c
                     for c in card.lookalikes]
            lines.append(f"Look-alikes: {', '.join(names)}")
    if card.confusion_note:
        lines.append(card.confusion_note)
    return "\n".join(lines)
