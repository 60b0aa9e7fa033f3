"""The taxonomy of Snapshot Serengeti's categories: one table shipped beside this module.

``snapshot_serengeti.csv`` gives every published category its vernacular and scientific name,
taxon rank, higher ranks (phylum, class, order, family, genus, species epithet), the Camtrap DP
qualifiers it encodes (``sex``, ``life_stage``) and whether it is a ``taxon``, a ``group``
(a taxon above species standing for several species, or an informal group of ``members``) or a
``non_taxon`` (``empty``, ``fire``). ``species_facts.csv`` holds the Red List category and a
short text per category for species cards. See ``README.md`` here and docs/formats.md.

Categories that are not in the table (another project's COCO-CT file) still work everywhere:
each is its own taxon, unranked, named by the category itself.
"""
from __future__ import annotations

import csv
import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TABLE_PATH = HERE / "snapshot_serengeti.csv"
FACTS_PATH = HERE / "species_facts.csv"

#: Ranks of a taxonomic path, highest first (the columns of the table).
PATH_RANKS = ("class", "order", "family", "genus", "species")
#: Every rank a row may carry, lowest first.
RANKS = ("species", "genus", "family", "order", "class", "phylum")
#: Levels of :meth:`Taxonomy.group_of`.
LEVELS = ("label", "species", "genus", "family", "order", "class")
KINDS = ("taxon", "group", "non_taxon")
SEXES = ("", "female", "male", "unknown")                       # Camtrap DP 1.0 vocabularies
LIFE_STAGES = ("", "adult", "subadult", "juvenile")
IUCN_CATEGORIES = ("", "EX", "EW", "CR", "EN", "VU", "NT", "LC", "DD", "NE")
COLUMNS = ("category", "vernacular_name", "scientific_name", "taxon_rank", "kind", "phylum",
           "class", "order", "family", "genus", "species", "sex", "life_stage", "members",
           "synonyms", "note")
FACT_COLUMNS = ("category", "iucn_category", "iucn_year", "lookalikes", "text")
# Columns that must be filled / empty for a row of each rank (the rank's own column and above).
_HIERARCHY = ("phylum", "class", "order", "family", "genus", "species")


class TaxonomyError(ValueError):
    """A taxonomy or facts table that cannot be used; the message names the file and row."""


@dataclass(frozen=True)
class TaxonRow:
    """One category of the table (or an unknown category: its own unranked taxon)."""

    category: str
    vernacular_name: str
    scientific_name: str
    taxon_rank: str            # species/genus/family/order/class/phylum, "" = unranked / non-taxon
    kind: str                  # taxon | group | non_taxon
    phylum: str = ""
    class_: str = ""
    order: str = ""
    family: str = ""
    genus: str = ""
    species: str = ""          # the epithet
    sex: str = ""
    life_stage: str = ""
    members: tuple[str, ...] = ()
    synonyms: tuple[str, ...] = ()
    note: str = ""
    known: bool = True         # False: not in the table

    def at(self, rank: str) -> str:
        """The name of this row's taxon at ``rank`` ("" when not filled); species as binomial."""
        if rank == "species":
            return f"{self.genus} {self.species}" if self.species else ""
        return getattr(self, "class_" if rank == "class" else rank)


@dataclass(frozen=True)
class SpeciesFacts:
    """A species card's facts: Red List category and year, look-alikes and a short text."""

    category: str
    iucn_category: str         # LC/NT/VU/EN/CR/DD/NE, "" for non-taxa
    iucn_year: int | None
    lookalikes: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class TaxonMatch:
    """What :meth:`Taxonomy.match` found.

    ``classes`` holds every dataset class whose taxon is the matched one: several when classes
    share a taxon (the three lion categories), to be scored together at species level.
    ``taxon`` and ``rank`` name the matched taxon; ``exact`` is True when it is the predicted
    taxon itself, False when it only contains it (a bird falling into ``otherbird``).
    """

    classes: tuple[str, ...]
    taxon: str
    rank: str
    exact: bool


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(";") if v.strip())


def _norm(name: str) -> str:
    return " ".join(name.split()).casefold()


def _check_row(row: TaxonRow, where: str) -> None:
    """Raise TaxonomyError when a row's rank, kind, names or qualifiers disagree."""
    def bad(reason: str) -> TaxonomyError:
        return TaxonomyError(f"{where} (category {row.category!r}): {reason}")

    if row.kind not in KINDS:
        raise bad(f"kind {row.kind!r} is not one of {', '.join(KINDS)}")
    if row.sex not in SEXES:
        raise bad(f"sex {row.sex!r} is not one of female, male, unknown")
    if row.life_stage not in LIFE_STAGES:
        raise bad(f"life_stage {row.life_stage!r} is not one of adult, subadult, juvenile")
    filled = {r: bool(row.at(r) if r != "species" else row.species) for r in _HIERARCHY}
    if row.kind == "non_taxon":
        if row.scientific_name or row.taxon_rank or any(filled.values()) or row.members:
            raise bad("a non_taxon row has no scientific name, rank or higher ranks")
        return
    if row.taxon_rank not in RANKS:
        raise bad(f"taxon_rank {row.taxon_rank!r} is not one of {', '.join(RANKS)}")
    if not row.scientific_name:
        raise bad("scientific_name is empty")
    depth = _HIERARCHY.index(row.taxon_rank)
    top = 0 if row.phylum else 1          # phylum is optional above class
    missing = [r for r in _HIERARCHY[top:depth + 1] if not filled[r]]
    if missing:
        raise bad(f"a {row.taxon_rank} row needs {', '.join(missing)} filled")
    extra = [r for r in _HIERARCHY[depth + 1:] if filled[r]]
    if extra:
        raise bad(f"a {row.taxon_rank} row must leave {', '.join(extra)} empty")
    if row.at(row.taxon_rank) != row.scientific_name:
        raise bad(f"scientific_name {row.scientific_name!r} is not its {row.taxon_rank} "
                  f"{row.at(row.taxon_rank)!r}")
    if row.kind == "taxon" and row.taxon_rank != "species":
        raise bad(f"kind taxon is for species rows; a {row.taxon_rank} is kind group")
    if row.members and row.kind != "group":
        raise bad("only group rows have members")
    for name in row.members + row.synonyms:
        if len(name.split()) > 2:
            raise bad(f"member or synonym {name!r} is neither one name nor a binomial")


def _read_csv(path: Path, columns: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in columns if c not in header]
            if missing:
                raise TaxonomyError(f"{path}, line 1: missing column(s) {', '.join(missing)}")
            rows = []
            for rec in reader:
                if None in rec:
                    raise TaxonomyError(f"{path}, line {reader.line_num}: more fields than "
                                        f"the header's {len(header)}")
                rows.append((reader.line_num, {k: (v or "").strip() for k, v in rec.items()}))
            return rows
    except OSError as exc:
        raise TaxonomyError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise TaxonomyError(f"{path}: not a UTF-8 CSV file ({exc})") from exc


class Taxonomy:
    """The category table with look-ups, roll-up groups and matching of taxonomic paths.

    Build it with :func:`load_taxonomy` (the shipped table, loaded once) or
    :meth:`Taxonomy.from_csv` (another table, e.g. in tests).

    >>> tax = load_taxonomy()
    >>> tax.scientific_name("gazellethomsons"), tax.rank("gazellethomsons")
    ('Eudorcas thomsonii', 'species')
    >>> tax.group_of(["lionmale", "lioncub", "zebra"], "species")
    ['Panthera leo', 'Panthera leo', 'Equus quagga']
    >>> tax.match("uuid;aves;galliformes;numididae;numida;meleagris;helmeted guineafowl").classes
    ('guineafowl',)
    """

    def __init__(self, rows: Iterable[TaxonRow], facts: Iterable[SpeciesFacts] = (), *,
                 source: str = "<rows>") -> None:
        self.source = source
        self._rows: dict[str, TaxonRow] = {}
        for i, row in enumerate(rows, start=1):
            where = f"{source}, row {i}"
            if not row.category:
                raise TaxonomyError(f"{where}: empty category")
            if row.category in self._rows:
                raise TaxonomyError(f"{where}: duplicate category {row.category!r}")
            _check_row(row, where)
            self._rows[row.category] = row
        self._facts = {f.category: f for f in facts}
        # A synonym or scientific name -> the row holding that name's lineage.
        self._by_name: dict[str, TaxonRow] = {}
        for row in self._rows.values():
            if row.kind != "non_taxon" and not row.members:
                for name in (row.scientific_name, *row.synonyms):
                    self._by_name.setdefault(_norm(name), row)

    @classmethod
    def from_csv(cls, path: str | Path, facts_path: str | Path | None = None) -> Taxonomy:
        """Read a table (and optionally a facts table) in the shipped format."""
        path = Path(path)
        rows = []
        seen: dict[str, int] = {}
        for line, rec in _read_csv(path, COLUMNS):
            cat = rec["category"]
            if cat in seen:
                raise TaxonomyError(f"{path}, line {line}: duplicate category {cat!r} "
                                    f"(first on line {seen[cat]})")
            seen[cat] = line
            row = TaxonRow(
                category=cat, vernacular_name=rec["vernacular_name"],
                scientific_name=rec["scientific_name"], taxon_rank=rec["taxon_rank"],
                kind=rec["kind"], phylum=rec["phylum"], class_=rec["class"],
                order=rec["order"], family=rec["family"], genus=rec["genus"],
                species=rec["species"], sex=rec["sex"], life_stage=rec["life_stage"],
                members=_split_list(rec["members"]), synonyms=_split_list(rec["synonyms"]),
                note=rec["note"])
            _check_row(row, f"{path}, line {line}")
            rows.append(row)
        facts = [] if facts_path is None else _read_facts(Path(facts_path), set(seen))
        return cls(rows, facts, source=str(path))

    # -- look-ups ------------------------------------------------------------------------------
    @property
    def categories(self) -> list[str]:
        """The table's categories, in table order."""
        return list(self._rows)

    def __contains__(self, category: object) -> bool:
        return category in self._rows

    def row(self, category: str) -> TaxonRow:
        """The row of ``category``; an unknown category is its own unranked taxon."""
        row = self._rows.get(category)
        if row is None:
            return TaxonRow(category=category, vernacular_name=category,
                            scientific_name=category, taxon_rank="", kind="taxon", known=False)
        return row

    def scientific_name(self, category: str) -> str:
        """Scientific name of the category's taxon ("" for non-taxa)."""
        return self.row(category).scientific_name

    def vernacular(self, category: str) -> str:
        """English vernacular name."""
        return self.row(category).vernacular_name

    def rank(self, category: str) -> str:
        """Taxon rank ("" for non-taxa and unknown categories)."""
        return self.row(category).taxon_rank

    def species_facts(self, category: str) -> SpeciesFacts | None:
        """The species card facts of ``category``; None when the facts table has no row."""
        return self._facts.get(category)

    # -- roll-up -------------------------------------------------------------------------------
    def group_of(self, categories: Sequence[str], level: str) -> list[str]:
        """Each category's group at a taxonomic ``level``.

        Parameters
        ----------
        categories : sequence of str
            Category names (dataset classes or model labels; unknown ones are their own taxon).
        level : {"label", "species", "genus", "family", "order", "class"}
            ``label`` keeps every category; otherwise a category becomes the name of its taxon
            at that level (species as a binomial). Non-taxa, unknown categories and groups
            above the level (``otherbird`` at species level) stay themselves.

        Returns
        -------
        list of str, one per category.

        >>> load_taxonomy().group_of(["gazellegrants", "gazellethomsons", "otherbird"], "family")
        ['Bovidae', 'Bovidae', 'otherbird']
        """
        if level not in LEVELS:
            raise ValueError(f"taxonomic level {level!r} is not one of {', '.join(LEVELS)}")
        if level == "label":
            return list(categories)
        return [self.row(c).at(level) or c for c in categories]

    # -- matching other taxonomies ------------------------------------------------------------
    def parse_path(self, path: str | Sequence[str] | Mapping[str, str]) -> dict[str, str]:
        """A taxonomic path as ``{rank: lower-case name}`` over :data:`PATH_RANKS`.

        Accepts a SpeciesNet label (``uuid;class;order;family;genus;species;common name``), a
        5-field ``class;order;family;genus;species`` string, a sequence of those five names, a
        mapping rank -> name, or a scientific name found in the table (its lineage is used).
        Returns an empty dict when nothing taxonomic is in it (SpeciesNet's ``blank``).
        """
        if isinstance(path, Mapping):
            names = [str(path.get(r, "") or "") for r in PATH_RANKS]
        elif isinstance(path, str):
            parts = path.split(";")
            if len(parts) == 7:
                names = parts[1:6]
            elif len(parts) == 5:
                names = parts
            elif len(parts) == 1:
                row = self._by_name.get(_norm(path))
                if row is None:
                    return {}
                names = [row.class_, row.order, row.family, row.genus, row.species]
            else:
                raise ValueError(f"taxonomic path {path!r}: expected 5 fields (class..species) "
                                 f"or a 7-field SpeciesNet label, got {len(parts)}")
        else:
            names = [str(n or "") for n in path]
            if len(names) != len(PATH_RANKS):
                raise ValueError(f"taxonomic path {path!r}: expected {len(PATH_RANKS)} names "
                                 "(class, order, family, genus, species)")
        return {r: _norm(n) for r, n in zip(PATH_RANKS, names) if _norm(n)}

    def match(self, path: str | Sequence[str] | Mapping[str, str], *,
              classes: Sequence[str] | None = None) -> TaxonMatch | None:
        """The dataset class(es) whose taxon is the given taxon or contains it.

        Parameters
        ----------
        path : str, sequence or mapping
            A taxonomic path, see :meth:`parse_path` (case-insensitive).
        classes : sequence of str, optional
            The dataset classes to choose from (default: every category of the table).
            Classes not in the table match only a taxon of the same name.

        Returns
        -------
        TaxonMatch or None
            The most specific containing class(es): a helmeted guineafowl and a family-level
            Numididae both give ``guineafowl``; a vulture genus gives ``vulture`` before
            ``otherbird``; all three lion categories come together. None when no class
            contains the taxon (family Bovidae when only bovid species are classes; "animal").

        >>> tax = load_taxonomy()
        >>> tax.match(["mammalia", "rodentia", "muridae", "mastomys", "natalensis"]).classes
        ('rodents',)
        >>> tax.match(["mammalia", "artiodactyla", "bovidae", "", ""]) is None
        True
        """
        p = self.parse_path(path)
        if not p:
            return None
        deepest = max(PATH_RANKS.index(r) for r in p)
        names = {r: (f"{p.get('genus', '')} {p['species']}" if r == "species" else p[r])
                 for r in p}
        if "species" in p and "genus" not in p:
            names.pop("species")              # an epithet without its genus names nothing
        best: tuple[int, list[str], str, str] | None = None   # (depth, classes, taxon, rank)
        for cat in (self.categories if classes is None else classes):
            hit = self._match_row(self.row(cat), names)
            if hit is None:
                continue
            depth, taxon, rank = hit
            if best is None or depth > best[0]:
                best = (depth, [cat], taxon, rank)
            elif depth == best[0]:
                best[1].append(cat)
        if best is None:
            return None
        depth, cats, taxon, rank = best
        return TaxonMatch(classes=tuple(cats), taxon=taxon, rank=rank, exact=depth == deepest)

    @staticmethod
    def _match_row(row: TaxonRow, names: dict[str, str]) -> tuple[int, str, str] | None:
        """(depth in PATH_RANKS, taxon, rank) of the deepest of the row's taxa on the path."""
        if row.kind == "non_taxon":
            return None
        if not row.known:
            targets = [row.scientific_name]
        elif row.members:
            targets = list(row.members)
        else:
            targets = [row.scientific_name, *row.synonyms]
        best = None
        for target in targets:
            t = _norm(target)
            for rank, name in names.items():
                if name == t:
                    depth = PATH_RANKS.index(rank)
                    if best is None or depth > best[0]:
                        best = (depth, target, rank)
        return best


def _read_facts(path: Path, categories: set[str]) -> list[SpeciesFacts]:
    facts = []
    seen: set[str] = set()
    for line, rec in _read_csv(path, FACT_COLUMNS):
        cat = rec["category"]
        where = f"{path}, line {line} (category {cat!r})"
        if cat in seen:
            raise TaxonomyError(f"{where}: duplicate category")
        if cat not in categories:
            raise TaxonomyError(f"{where}: not a category of the taxonomy table")
        if rec["iucn_category"] not in IUCN_CATEGORIES:
            raise TaxonomyError(f"{where}: iucn_category {rec['iucn_category']!r} is not a "
                                "Red List category")
        year = rec["iucn_year"]
        if year and not (year.isdigit() and 1990 <= int(year) <= 2100):
            raise TaxonomyError(f"{where}: iucn_year {year!r} is not a year")
        seen.add(cat)
        facts.append(SpeciesFacts(category=cat, iucn_category=rec["iucn_category"],
                                  iucn_year=int(year) if year else None,
                                  lookalikes=_split_list(rec["lookalikes"]), text=rec["text"]))
    return facts


@functools.lru_cache(maxsize=1)
def load_taxonomy() -> Taxonomy:
    """The shipped Snapshot Serengeti taxonomy with its species facts, read once."""
    tax = Taxonomy.from_csv(TABLE_PATH, FACTS_PATH)
    log.debug("taxonomy: %d categories from %s", len(tax.categories), TABLE_PATH)
    return tax


def species_facts(category: str) -> SpeciesFacts | None:
    """Species card facts of a category from the shipped table (None when not there)."""
    return load_taxonomy().species_facts(category)
