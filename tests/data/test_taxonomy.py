"""The shipped taxonomy table: completeness, rank consistency, qualifiers, matching, facts."""
from __future__ import annotations

import csv
import doctest
import json

import pytest

import data.taxonomy as taxonomy_module
from data.taxonomy import (COLUMNS, FACT_COLUMNS, TABLE_PATH, Taxonomy, TaxonomyError,
                           load_taxonomy, species_facts)

# The 61 categories of the published Snapshot Serengeti files (ids 0..60 in this order).
PUBLISHED = [
    "empty", "human", "gazellegrants", "reedbuck", "dikdik", "zebra", "aardvark", "aardwolf",
    "baboon", "batearedfox", "impala", "buffalo", "bushbuck", "giraffe", "caracal", "cheetah",
    "civet", "eland", "elephant", "gazellethomsons", "guineafowl", "hare", "hartebeest",
    "hippopotamus", "honeybadger", "hyenaspotted", "hyenastriped", "jackal", "koribustard",
    "leopard", "lionfemale", "lionmale", "mongoose", "monkeyvervet", "ostrich", "otherbird",
    "porcupine", "rhinoceros", "secretarybird", "serval", "topi", "rodents", "wildcat",
    "warthog", "genet", "zorilla", "waterbuck", "wildebeest", "reptiles", "insectspider",
    "duiker", "cattle", "vulture", "steenbok", "bat", "fire", "hyenabrown", "wilddog", "kudu",
    "pangolin", "lioncub",
]
HIERARCHY = ("phylum", "class", "order", "family", "genus", "species")


@pytest.fixture(scope="module")
def tax() -> Taxonomy:
    return load_taxonomy()


def _raw_rows() -> list[dict[str, str]]:
    with open(TABLE_PATH, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_every_published_category_has_exactly_one_row():
    cats = [r["category"] for r in _raw_rows()]
    assert len(PUBLISHED) == 61
    assert sorted(cats) == sorted(PUBLISHED)
    assert len(set(cats)) == len(cats)


def test_published_list_matches_the_real_slice(serengeti_slice):
    names = [c["name"] for c in json.loads(serengeti_slice.read_text())["categories"]]
    assert sorted(names) == sorted(PUBLISHED)


@pytest.mark.parametrize("row", _raw_rows(), ids=lambda r: r["category"])
def test_ranks_are_consistent(row):
    kind, rank = row["kind"], row["taxon_rank"]
    if kind == "non_taxon":
        assert not row["scientific_name"] and not rank
        assert not any(row[c] for c in HIERARCHY)
        return
    depth = HIERARCHY.index(rank)
    lower = HIERARCHY[depth + 1:]
    upper = [c for c in HIERARCHY[1:depth + 1]]          # phylum optional above class
    assert all(row[c] for c in upper), f"{rank} row needs {upper}"
    assert not any(row[c] for c in lower), f"{rank} row must leave {lower} empty"
    if rank == "species":
        assert kind == "taxon"
        assert row["scientific_name"] == f"{row['genus']} {row['species']}"
        assert row["species"].islower() and row["genus"][0].isupper()
    else:
        assert kind == "group"
        assert row["scientific_name"] == row[rank]
    assert row["phylum"] in ("Chordata", "Arthropoda")


def test_taxon_and_group_kinds(tax):
    assert tax.row("human").kind == "taxon"
    assert tax.scientific_name("human") == "Homo sapiens"
    for cat in ("empty", "fire"):
        assert tax.row(cat).kind == "non_taxon" and tax.rank(cat) == ""
    expected = {"otherbird": ("Aves", "class"), "reptiles": ("Reptilia", "class"),
                "rodents": ("Rodentia", "order"), "insectspider": ("Arthropoda", "phylum"),
                "mongoose": ("Herpestidae", "family"), "bat": ("Chiroptera", "order"),
                "hare": ("Lepus", "genus"), "guineafowl": ("Numididae", "family"),
                "genet": ("Genetta", "genus")}
    for cat, (name, rank) in expected.items():
        assert tax.row(cat).kind == "group"
        assert (tax.scientific_name(cat), tax.rank(cat)) == (name, rank)


@pytest.mark.parametrize("category,name", [
    ("cattle", "Bos taurus"), ("hyenabrown", "Parahyaena brunnea"),
    ("gazellegrants", "Nanger granti"), ("gazellethomsons", "Eudorcas thomsonii"),
    ("wildebeest", "Connochaetes taurinus"), ("zorilla", "Ictonyx striatus"),
    ("dikdik", "Madoqua kirkii"), ("koribustard", "Ardeotis kori"),
    ("secretarybird", "Sagittarius serpentarius"), ("ostrich", "Struthio camelus"),
    ("rhinoceros", "Diceros bicornis"), ("wilddog", "Lycaon pictus"),
    ("elephant", "Loxodonta africana"), ("zebra", "Equus quagga"),
])
def test_scientific_names(tax, category, name):
    assert tax.scientific_name(category) == name


def test_lion_qualifiers(tax):
    rows = {c: tax.row(c) for c in ("lionfemale", "lionmale", "lioncub")}
    assert {r.scientific_name for r in rows.values()} == {"Panthera leo"}
    assert (rows["lionfemale"].sex, rows["lionmale"].sex) == ("female", "male")
    assert rows["lioncub"].life_stage == "juvenile"
    assert rows["lioncub"].sex == ""
    others = [tax.row(c) for c in PUBLISHED if not c.startswith("lion")]
    assert all(r.sex == "" and r.life_stage == "" for r in others)


def test_group_of_levels(tax):
    cats = ["lionfemale", "lionmale", "lioncub", "gazellegrants", "gazellethomsons",
            "otherbird", "empty", "fire", "hare", "vulture", "made-up"]
    assert tax.group_of(cats, "label") == cats
    assert tax.group_of(cats, "species") == [
        "Panthera leo", "Panthera leo", "Panthera leo", "Nanger granti", "Eudorcas thomsonii",
        "otherbird", "empty", "fire", "hare", "vulture", "made-up"]
    assert tax.group_of(cats, "genus")[3:5] == ["Nanger", "Eudorcas"]
    assert tax.group_of(cats, "genus")[8] == "Lepus"
    fam = tax.group_of(cats, "family")
    assert fam[3] == fam[4] == "Bovidae"
    assert fam[5:] == ["otherbird", "empty", "fire", "Leporidae", "Accipitridae", "made-up"]
    cls = tax.group_of(cats, "class")
    assert cls[0] == cls[3] == "Mammalia" and cls[5] == cls[9] == "Aves"
    with pytest.raises(ValueError, match="level 'tribe'"):
        tax.group_of(cats, "tribe")


SN = "00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize("path,classes,exact", [
    (f"{SN};aves;galliformes;numididae;numida;meleagris;helmeted guineafowl",
     ("guineafowl",), False),
    (f"{SN};aves;galliformes;numididae;;;guineafowl family", ("guineafowl",), True),
    (f"{SN};aves;coraciiformes;bucerotidae;bucorvus;leadbeateri;southern ground hornbill",
     ("otherbird",), False),
    (f"{SN};aves;;;;;bird", ("otherbird",), True),
    (f"{SN};aves;accipitriformes;accipitridae;gyps;africanus;white-backed vulture",
     ("vulture",), False),
    (f"{SN};aves;accipitriformes;accipitridae;;;", ("otherbird",), False),
    (f"{SN};mammalia;rodentia;muridae;mastomys;natalensis;multimammate mouse",
     ("rodents",), False),
    (f"{SN};mammalia;rodentia;hystricidae;hystrix;cristata;crested porcupine",
     ("porcupine",), False),
    (f"{SN};mammalia;carnivora;felidae;panthera;leo;lion",
     ("lionfemale", "lionmale", "lioncub"), True),
    (f"{SN};mammalia;primates;hominidae;homo;sapiens;human", ("human",), True),
    (f"{SN};MAMMALIA;Artiodactyla;BOVIDAE;Eudorcas;THOMSONII;Thomson's gazelle",
     ("gazellethomsons",), True),
    (f"{SN};mammalia;artiodactyla;bovidae;gazella;thomsonii;thomson's gazelle",
     ("gazellethomsons",), True),
    (f"{SN};mammalia;carnivora;canidae;lupulella;mesomelas;black-backed jackal",
     ("jackal",), False),
    (f"{SN};insecta;;;;;insect", ("insectspider",), True),
    (["mammalia", "lagomorpha", "leporidae", "lepus", "capensis"], ("hare",), False),
    ({"class": "Reptilia", "order": "Squamata"}, ("reptiles",), False),
    ("Panthera leo", ("lionfemale", "lionmale", "lioncub"), True),
])
def test_match_finds_the_containing_class(tax, path, classes, exact):
    m = tax.match(path)
    assert m is not None and m.classes == classes and m.exact is exact


@pytest.mark.parametrize("path", [
    f"{SN};;;;;;blank", f"{SN};;;;;;animal", f"{SN};;;;;;vehicle",
    f"{SN};mammalia;;;;;mammal", f"{SN};mammalia;artiodactyla;bovidae;;;bovid",
    f"{SN};mammalia;carnivora;felidae;panthera;;panthera species",
    f"{SN};mammalia;carnivora;canidae;canis;familiaris;domestic dog",
    f"{SN};aves;accipitriformes;accipitridae;;;accipitrid",
])
def test_match_none_when_no_class_contains_it(tax, path):
    classes = [c for c in PUBLISHED if c not in ("otherbird",)]
    assert tax.match(path, classes=classes) is None


def test_match_restricted_to_given_classes(tax):
    lion = f"{SN};mammalia;carnivora;felidae;panthera;leo;lion"
    assert tax.match(lion, classes=["zebra", "lionmale"]).classes == ("lionmale",)
    assert tax.match(lion, classes=["zebra"]) is None
    bovid = f"{SN};mammalia;artiodactyla;bovidae;;;bovid"
    assert tax.match(bovid, classes=["impala", "gazellegrants", "buffalo"]) is None
    hornbill = f"{SN};aves;bucerotiformes;bucerotidae;bucorvus;leadbeateri;ground hornbill"
    assert tax.match(hornbill, classes=["guineafowl", "vulture"]) is None
    vulture = f"{SN};aves;accipitriformes;accipitridae;gyps;rueppelli;rueppell's vulture"
    assert tax.match(vulture, classes=["otherbird", "zebra"]).classes == ("otherbird",)


def test_match_bad_path(tax):
    with pytest.raises(ValueError, match="expected 5 fields"):
        tax.match("a;b;c")
    with pytest.raises(ValueError, match="expected 5 names"):
        tax.match(["aves", "galliformes"])


def test_unknown_categories_are_their_own_taxon(tax):
    row = tax.row("Vulpes vulpes")
    assert not row.known and row.kind == "taxon" and row.taxon_rank == ""
    assert tax.scientific_name("red_fox") == "red_fox" and tax.vernacular("red_fox") == "red_fox"
    assert tax.group_of(["red_fox"], "family") == ["red_fox"]
    fox = f"{SN};mammalia;carnivora;canidae;vulpes;vulpes;red fox"
    assert tax.match(fox, classes=["Vulpes vulpes", "zebra"]).classes == ("Vulpes vulpes",)
    assert tax.match(fox, classes=["red_fox"]) is None
    assert tax.species_facts("red_fox") is None


def test_every_published_category_has_facts():
    with open(taxonomy_module.FACTS_PATH, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["category"] for r in rows) == sorted(PUBLISHED)
    tax = load_taxonomy()
    for cat in PUBLISHED:
        f = species_facts(cat)
        assert f is not None and f.text.count(".") >= 1 and len(f.text) > 60, cat
        assert set(f.lookalikes) <= set(PUBLISHED), cat
        kind = tax.row(cat).kind
        if kind == "non_taxon":
            assert f.iucn_category == "" and f.iucn_year is None
        elif kind == "group" or cat in ("cattle", "human"):
            assert f.iucn_category in ("", "NE")
        else:
            assert f.iucn_category in ("LC", "NT", "VU", "EN", "CR", "DD") and f.iucn_year, cat


@pytest.mark.parametrize("category,status", [
    ("lionfemale", "VU"), ("lionmale", "VU"), ("lioncub", "VU"), ("elephant", "EN"),
    ("rhinoceros", "CR"), ("wilddog", "EN"), ("cheetah", "VU"), ("giraffe", "VU"),
    ("leopard", "VU"), ("hippopotamus", "VU"), ("secretarybird", "EN"), ("zebra", "NT"),
])
def test_red_list_categories(category, status):
    assert species_facts(category).iucn_category == status
    assert species_facts("elephant").iucn_year == 2021


def _write_table(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in COLUMNS})
    return path


ZEBRA = dict(category="zebra", vernacular_name="Plains zebra", scientific_name="Equus quagga",
             taxon_rank="species", kind="taxon", phylum="Chordata", **{"class": "Mammalia"},
             order="Perissodactyla", family="Equidae", genus="Equus", species="quagga")


@pytest.mark.parametrize("change,match", [
    ({"category": "zebra"}, r"t\.csv, line 3: duplicate category 'zebra' \(first on line 2\)"),
    ({"category": "z2", "family": ""}, r"line 3 \(category 'z2'\): a species row needs family"),
    ({"category": "z2", "taxon_rank": "genus", "kind": "group", "scientific_name": "Equus"},
     r"line 3 \(category 'z2'\): a genus row must leave species empty"),
    ({"category": "z2", "scientific_name": "Equus zebra"},
     r"line 3 \(category 'z2'\): scientific_name 'Equus zebra' is not its species"),
    ({"category": "z2", "taxon_rank": "tribe"}, r"line 3 \(category 'z2'\): taxon_rank 'tribe'"),
    ({"category": "z2", "kind": "animal"}, r"line 3 \(category 'z2'\): kind 'animal'"),
    ({"category": "z2", "sex": "f"}, r"line 3 \(category 'z2'\): sex 'f'"),
    ({"category": "z2", "life_stage": "cub"}, r"line 3 \(category 'z2'\): life_stage 'cub'"),
    ({"category": "z2", "kind": "non_taxon"}, r"line 3 \(category 'z2'\): a non_taxon row"),
])
def test_bad_table_is_refused_naming_the_row(tmp_path, change, match):
    path = _write_table(tmp_path / "t.csv", [ZEBRA, {**ZEBRA, **change}])
    with pytest.raises(TaxonomyError, match=match):
        Taxonomy.from_csv(path)


def test_bad_table_missing_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("category,vernacular_name\nzebra,Zebra\n")
    with pytest.raises(TaxonomyError, match=r"t\.csv, line 1: missing column\(s\) "
                                            r"scientific_name"):
        Taxonomy.from_csv(path)


def test_bad_facts_refused(tmp_path):
    table = _write_table(tmp_path / "t.csv", [ZEBRA])
    facts = tmp_path / "f.csv"
    facts.write_text(",".join(FACT_COLUMNS) + "\nzebra,XX,2016,,A zebra.\n")
    with pytest.raises(TaxonomyError, match=r"f\.csv, line 2 \(category 'zebra'\): "
                                            "iucn_category 'XX'"):
        Taxonomy.from_csv(table, facts)
    facts.write_text(",".join(FACT_COLUMNS) + "\nquagga,NT,2016,,A zebra.\n")
    with pytest.raises(TaxonomyError, match="not a category of the taxonomy table"):
        Taxonomy.from_csv(table, facts)


def test_load_taxonomy_is_cached():
    assert load_taxonomy() is load_taxonomy()


def test_doctests():
    result = doctest.testmod(taxonomy_module)
    assert result.attempted > 0 and result.failed == 0
