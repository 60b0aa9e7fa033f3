"""Species cards: every published category has one, names and Red List category as in the
shipped tables (read here with the csv module, not through data.taxonomy), and the run's
confusions phrased from a small confusion matrix with known answers."""
from __future__ import annotations

import csv
import doctest
import json

import numpy as np
import pytest

import analysis.cards
from analysis.cards import (IUCN_NAMES, NOT_EVALUATED_NOTE, CardError, card_text, red_list_line,
                            species_card, top_confusions)
from data.taxonomy import FACTS_PATH, TABLE_PATH, load_taxonomy
from tests.conftest import SERENGETI


def _csv_rows(path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["category"]: r for r in csv.DictReader(fh)}


TABLE = _csv_rows(TABLE_PATH)
FACTS = _csv_rows(FACTS_PATH)


def _published_categories() -> list[str]:
    """The 61 category names of the published files (the real slice when present)."""
    slice_json = SERENGETI / "SnapshotSerengetiS01-slice.json"
    if slice_json.exists():
        return [c["name"] for c in json.loads(slice_json.read_text())["categories"]]
    return list(TABLE)


def test_every_published_category_has_a_card_matching_the_tables():
    tax = load_taxonomy()
    cats = _published_categories()
    assert len(cats) == 61 and len(set(cats)) == 61
    for cat in cats:
        card = species_card(cat, taxonomy=tax)
        row, facts = TABLE[cat], FACTS[cat]
        assert card.known, cat
        assert card.scientific_name == row["scientific_name"], cat
        assert card.vernacular_name == row["vernacular_name"], cat
        assert (card.family, card.order) == (row["family"], row["order"]), cat
        assert card.iucn_category == facts["iucn_category"], cat
        assert card.iucn_year == (int(facts["iucn_year"]) if facts["iucn_year"] else None), cat
        assert card.text == facts["text"] and card.text, cat
        text = card_text(card, taxonomy=tax)
        assert text.splitlines()[0].startswith(row["vernacular_name"])
        if row["scientific_name"]:
            assert f"({row['scientific_name']})" in text.splitlines()[0]
        if facts["iucn_category"]:
            assert f"{IUCN_NAMES[facts['iucn_category']]} ({facts['iucn_category']})" in text
            assert "iucnredlist.org" in text                   # the source line
        assert card.confusions == () and card.confusion_note == "" and card.n_images is None
        # Plain text, never markup.
        assert "<" not in text and "**" not in text and not text.startswith("#")


@pytest.mark.parametrize("cat, line", [
    ("rhinoceros", "Critically Endangered (CR), assessed 2020"),
    ("lionmale", "Vulnerable (VU), assessed 2016"),
    ("empty", "not applicable (not a taxon)"),
    ("vulture", "Not Evaluated (NE): a group or domestic animal carries no category of its own"),
])
def test_red_list_line_in_words(cat, line):
    assert red_list_line(species_card(cat, taxonomy=load_taxonomy())) == line


CLASSES = ["gazellegrants", "gazellethomsons", "impala", "zebra", "hyenastriped"]
CM = np.array([[40, 6, 2, 2, 0],     # 50 Grant's: 6 Thomson's, 2 impala, 2 zebra (tie, order)
               [5, 95, 0, 0, 0],     # 100 Thomson's: 5 Grant's
               [0, 0, 12, 0, 0],     # impala: no confusion
               [1, 1, 1, 1, 6],      # 10 zebra: four confusions, three kept
               [0, 0, 0, 0, 0]])     # striped hyena: not evaluated


def test_top_confusions_known_answers():
    assert top_confusions(CM, CLASSES, "gazellegrants") == (
        [("gazellethomsons", 6, 0.12), ("impala", 2, 0.04), ("zebra", 2, 0.04)], 50)
    # Ties in count go in class order; at most three.
    assert top_confusions(CM, CLASSES, "zebra") == (
        [("hyenastriped", 6, 0.6), ("gazellegrants", 1, 0.1), ("gazellethomsons", 1, 0.1)], 10)
    assert top_confusions(CM, CLASSES, "impala") == ([], 12)
    assert top_confusions(CM, CLASSES, "lionmale") == ([], None)
    assert top_confusions(CM, CLASSES, "zebra", k=1)[0] == [("hyenastriped", 6, 0.6)]


def test_card_confusion_phrasing_from_the_numbers():
    tax = load_taxonomy()
    card = species_card("gazellegrants", taxonomy=tax, confusion=CM, classes=CLASSES)
    assert card.n_images == 50
    assert [(c.predicted, c.count, c.share) for c in card.confusions] == [
        ("gazellethomsons", 6, 0.12), ("impala", 2, 0.04), ("zebra", 2, 0.04)]
    assert card.confusion_note == (
        "On this run the model takes Grant's gazelle for Thomson's gazelle on 6 (12.0 %), "
        "Impala on 2 (4.0 %), Plains zebra on 2 (4.0 %) of its 50 images (10 in all).")
    assert card.confusion_note in card_text(card)
    one = species_card("gazellethomsons", taxonomy=tax, confusion=CM, classes=CLASSES)
    assert one.confusion_note == ("On this run the model takes Thomson's gazelle for "
                                  "Grant's gazelle on 5 (5.0 %) of its 100 images.")
    none = species_card("impala", taxonomy=tax, confusion=CM, classes=CLASSES)
    assert none.confusion_note.startswith("No confusions on this run")
    assert "12 images" in none.confusion_note
    for absent in ("hyenastriped", "lionmale"):     # zero row / not a class of the run
        card = species_card(absent, taxonomy=tax, confusion=CM, classes=CLASSES)
        assert card.confusion_note == NOT_EVALUATED_NOTE and card.confusions == ()


def test_unknown_category_gets_a_minimal_card():
    card = species_card("unicorn", taxonomy=load_taxonomy(), confusion=CM[:1, :1],
                        classes=["unicorn"])
    assert not card.known
    assert card.vernacular_name == "unicorn" and card.scientific_name == ""
    assert card.iucn_category == "" and card.red_list_source == "" and card.text == ""
    text = card_text(card)
    assert text.splitlines()[0] == "unicorn"
    assert "Not in the Snapshot Serengeti taxonomy table" in text
    assert "No confusions on this run" in text


@pytest.mark.parametrize("kwargs, match", [
    ({"confusion": CM}, "needs its class list"),
    ({"confusion": CM[:, :4], "classes": CLASSES}, r"square .* shape \(5, 4\)"),
    ({"confusion": CM, "classes": CLASSES[:4]}, "does not match the 4 classes"),
    ({"confusion": -CM, "classes": CLASSES}, ">= 0"),
])
def test_bad_confusion_inputs_are_refused(kwargs, match):
    with pytest.raises(CardError, match=match):
        species_card("zebra", taxonomy=load_taxonomy(), **kwargs)


def test_doctests():
    result = doctest.testmod(analysis.cards)
    assert result.attempted > 0 and result.failed == 0
