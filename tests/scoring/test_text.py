"""Tests for assay.scoring.text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.scoring.entities import entity_counts, parse_entities, prf
from assay.scoring.labels import map_label
from assay.scoring.text import (
    best_span_scores,
    exact_match,
    extract_span_answer,
    normalize_answer,
    token_f1,
)

# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("the Eiffel Tower.", "eiffel tower"),
        ("  A   cat, an Owl and THE dog!  ", "cat owl and dog"),
        ("Theatre", "theatre"),  # articles only as whole words
        ("an apple-a-day", "appleaday"),  # punctuation is deleted, not spaced
        ("«Paris»", "paris"),
        ("“Paris”。", "paris"),
        ("¿Qué?", "qué"),
        ("São Paulo", "são paulo"),
        ("1,889", "1889"),
        ("$100", "100"),
        ("", ""),
    ],
)
def test_normalize_answer(raw, expected):
    assert normalize_answer(raw) == expected


def test_exact_match_squad_cases():
    assert exact_match("the Eiffel Tower.", ["Eiffel Tower"]) == 1.0
    assert exact_match("Eiffel Tower", ["The Eiffel Tower", "Tour Eiffel"]) == 1.0
    assert exact_match("Eiffel", ["Eiffel Tower"]) == 0.0
    assert exact_match("«Denver Broncos»", ["Denver Broncos"]) == 1.0
    assert exact_match("anything", []) == 0.0
    assert isinstance(exact_match("a", ["a"]), float)


def test_token_f1_by_hand():
    # pred tokens: eiffel tower in paris (4); gold: eiffel tower (2); overlap 2
    # precision 2/4, recall 2/2 -> F1 = 2 * 0.5 * 1 / 1.5 = 2/3
    assert token_f1("Eiffel Tower in Paris", ["the Eiffel Tower"]) == pytest.approx(2 / 3)
    # repeated tokens are counted as a bag: pred "paris paris" vs gold "paris"
    # overlap 1, precision 1/2, recall 1 -> 2/3
    assert token_f1("Paris Paris", ["Paris"]) == pytest.approx(2 / 3)
    # max over golds
    assert token_f1("Denver Broncos", ["Broncos", "Denver Broncos"]) == 1.0
    assert token_f1("Denver", ["Denver Broncos", "Carolina Panthers"]) == pytest.approx(2 / 3)
    assert token_f1("blue", ["red"]) == 0.0


def test_token_f1_empty_cases():
    assert token_f1("", [""]) == 1.0
    assert token_f1("the", ["a"]) == 1.0  # both empty after normalisation
    assert token_f1("", ["Paris"]) == 0.0
    assert token_f1("Paris", ["!!"]) == 0.0
    assert token_f1("Paris", []) == 0.0


# --------------------------------------------------------------------------- span extraction


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is 1889, when it was built.", "1889"),
        ("Answer: Paris", "Paris"),
        ('The answer is "Paris".', "Paris"),
        ("The correct answer is: George Washington.", "George Washington"),
        ("Sure! The answer is:\n\nParis\n\nExplanation: it is the capital.", "Paris"),
        ("I think the answer is Mount Everest.", "Mount Everest"),
        ("Paris. It is the capital of France and its largest city.", "Paris"),
        ("J. K. Rowling. She wrote the books in Edinburgh.", "J. K. Rowling"),
        ("Let me think step by step. 2 + 2 is 4.\nFinal answer: 4", "4"),
        ("**Paris** (the capital of France)", "Paris"),
        ("Denver Broncos, because they won 24-10.", "Denver Broncos"),
        ("1914 - 1918", "1914 - 1918"),
        ("Paris", "Paris"),
        ("  ", ""),
    ],
)
def test_extract_span_answer(text, expected):
    assert extract_span_answer(text) == expected


def test_extract_span_answer_long_first_sentence_is_kept():
    text = (
        "The tower was completed in 1889 for the Exposition Universelle that was held in "
        "Paris that year. It was designed by Eiffel's company."
    )
    assert extract_span_answer(text) == text.rstrip(".")


def test_extract_span_answer_drops_echoed_question():
    q = "When was the Eiffel Tower built?"
    assert extract_span_answer("When was the Eiffel Tower built?\n1889", question=q) == "1889"
    assert extract_span_answer("Q: who?\nA: Alice") == "Alice"


def test_extract_span_answer_deterministic():
    text = "The answer is 1889, when it was built."
    assert {extract_span_answer(text) for _ in range(5)} == {"1889"}


def test_best_span_scores_uses_cleaned_answer():
    text = "The answer is 1889, when it was built."
    assert best_span_scores(text, ["1889"]) == (1.0, 1.0)
    # the raw text would not match
    assert exact_match(text, ["1889"]) == 0.0
    em, f1 = best_span_scores("The answer is the Eiffel Tower in Paris.", ["Eiffel Tower"])
    assert em == 0.0
    assert f1 == pytest.approx(2 / 3)


# --------------------------------------------------------------------------- labels

LABELS = {
    "positive": ["positive", "positif", "positiv", "positivo", "good"],
    "negative": ["negative", "négatif", "negativ", "negativo", "bad"],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The text seems to be a positive review…", "positive"),
        ("Sentiment: Negative.", "negative"),
        ("NEGATIVE", "negative"),
        ("This is not positive, it is negative", "negative"),
        ("Negative, not positive.", "negative"),
        ("The review isn't good at all. Negative.", "negative"),
        ("This is not a positive review.", None),  # negated, nothing else
        ("No, it is positive.", "positive"),  # punctuation breaks the negation
        ("Le texte est positif.", "positive"),
        ("Ce n'est pas positif, c'est négatif.", "negative"),
        ("Der Text ist nicht positiv, sondern negativ.", "negative"),
        ("Die Bewertung ist positiv.", "positive"),
        ("No es positivo, es negativo.", "negative"),
        ("La reseña es negativo.", "negative"),
        ("Positive overall, although some parts are bad.", "positive"),
        ("It has mixed feelings.", None),
        ("It is both positive and negative.", None),
        ("The review is mixed: partly good, partly bad.", None),
        ("It could be either positive or negative.", None),
        ("Neither positive nor negative.", None),
        ("The sentiment is negatif", None),  # accents matter
        ("Positively surprising!", None),  # whole words only
        ("", None),
    ],
)
def test_map_label(text, expected):
    assert map_label(text, LABELS) == expected


def test_map_label_label_is_its_own_synonym_and_neutral_label():
    labels = {"pos": ["good"], "neg": ["bad"], "neutral": []}
    assert map_label("pos", labels) == "pos"
    assert map_label("It is good.", labels) == "pos"
    # "neutral" is a label here, so it is a vote, not a hedge
    assert map_label("The sentiment is neutral.", labels) == "neutral"
    assert map_label("Neutral, not good and not bad.", labels) == "neutral"


def test_map_label_multiword_synonym_longest_match():
    labels = {"positive": ["not bad", "good"], "negative": ["bad"]}
    assert map_label("Honestly, not bad.", labels) == "positive"
    assert map_label("Bad.", labels) == "negative"


def test_map_label_tie_at_first_position():
    labels = {"a": ["shared"], "b": ["shared"]}
    assert map_label("shared", labels) is None


# --------------------------------------------------------------------------- entities


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- Barack Obama (PER)\n- Paris (LOC)", [("Barack Obama", "PER"), ("Paris", "LOC")]),
        ("1. Paris - LOC\n2. Google - ORG", [("Paris", "LOC"), ("Google", "ORG")]),
        ("* Google: organization\n* Angela Merkel: person", [("Google", "ORG"), ("Angela Merkel", "PER")]),
        ("People: Alice, Bob\nPlaces: Paris", [("Alice", "PER"), ("Bob", "PER"), ("Paris", "LOC")]),
        (
            '[{"text": "Paris", "type": "LOC"}, {"text": "Alice", "type": "person"}]',
            [("Paris", "LOC"), ("Alice", "PER")],
        ),
        ('[["Paris", "LOC"], ["IBM", "ORG"]]', [("Paris", "LOC"), ("IBM", "ORG")]),
        ("[('Paris', 'LOC'), ('Tim Cook', 'PER')]", [("Paris", "LOC"), ("Tim Cook", "PER")]),
        (
            "The entities are Alice (person) and Paris (location).",
            [("Alice", "PER"), ("Paris", "LOC")],
        ),
        (
            'Here are the entities:\n```json\n{"entities": [{"entity": "Berlin", "label": "B-LOC"}]}\n```',
            [("Berlin", "LOC")],
        ),
        ('{"PER": ["Alice", "Bob"], "LOC": ["Paris"]}', [("Alice", "PER"), ("Bob", "PER"), ("Paris", "LOC")]),
        ("| Entity | Type |\n|---|---|\n| Alice | PER |\n| Paris | LOC |", [("Alice", "PER"), ("Paris", "LOC")]),
        (
            "Persons:\n- Alice\n- Bob\nLocations:\n- Paris",
            [("Alice", "PER"), ("Bob", "PER"), ("Paris", "LOC")],
        ),
        ("Name: Alice, Type: PER", [("Alice", "PER")]),
        ("PER: Alice; LOC: Paris", [("Alice", "PER"), ("Paris", "LOC")]),
        ("Alice (PER), Paris (LOC), Google (ORG)", [("Alice", "PER"), ("Paris", "LOC"), ("Google", "ORG")]),
        ("Locations: New York City", [("New York City", "LOC")]),
        ("- Acme: organization name", [("Acme", "ORG")]),
        ("Cities: Paris, Berlin and Rome", [("Paris", "LOC"), ("Berlin", "LOC"), ("Rome", "LOC")]),
        (
            "Here are the named entities I found:\n1. **Barack Obama** - Person\n2. **United Nations** - Organization",
            [("Barack Obama", "PER"), ("United Nations", "ORG")],
        ),
        (
            "The text mentions the Bank of America (ORG), Jean-Luc Picard (PER) and New York City (LOC).",
            [("Bank of America", "ORG"), ("Jean-Luc Picard", "PER"), ("New York City", "LOC")],
        ),
        # untyped items, quotes and duplicates
        ('- "Alice" (PER).\n- Alice (PER)\n- Paris', [("Alice", "PER"), ("Paris", "")]),
        ("- Barack Obama (44th president)", [("Barack Obama", "")]),
        ("- Zorg: spaceship", [("Zorg", "")]),
        ("Entities: Alice, Bob", [("Alice", ""), ("Bob", "")]),
        ("No entities found.", []),
        ("None", []),
        ("", []),
    ],
)
def test_parse_entities(text, expected):
    assert parse_entities(text) == expected


def test_parse_entities_custom_types():
    types = {"DRUG": ["drug", "medication", "medicine"], "DISEASE": ["disease", "condition"]}
    text = "- Aspirin (medication)\n- Influenza: disease\n- Paris (LOC)"
    assert parse_entities(text, types=types) == [("Aspirin", "DRUG"), ("Influenza", "DISEASE"), ("Paris", "")]


def test_entity_counts_typed_and_untyped():
    gold = [("Barack Obama", "PER"), ("Paris", "LOC"), ("the United Nations", "ORG")]
    pred = [("barack  obama", "PER"), ("Paris", "ORG"), ("United Nations.", "ORG"), ("Kenya", "LOC")]
    assert entity_counts(pred, gold) == (2, 2, 1)
    assert entity_counts(pred, gold, typed=False) == (3, 1, 0)


def test_entity_counts_duplicates():
    gold = [("Paris", "LOC"), ("Paris", "LOC"), ("Alice", "PER")]
    # each gold is matched at most once: the third Paris is a false positive
    pred = [("Paris", "LOC"), ("paris", "LOC"), ("Paris", "LOC")]
    assert entity_counts(pred, gold) == (2, 1, 1)
    assert entity_counts([], gold) == (0, 0, 3)
    assert entity_counts(pred, []) == (0, 3, 0)
    assert entity_counts([("Alice", "per")], [("Alice", "PER")]) == (1, 0, 0)


def test_entity_counts_end_to_end():
    gold = [("Alice", "PER"), ("Paris", "LOC")]
    pred = parse_entities("The entities are Alice (person) and Paris (location).")
    assert prf(*entity_counts(pred, gold)) == (1.0, 1.0, 1.0)


def test_prf():
    assert prf(0, 0, 0) == (0.0, 0.0, 0.0)
    assert prf(0, 3, 0) == (0.0, 0.0, 0.0)
    assert prf(0, 0, 3) == (0.0, 0.0, 0.0)
    p, r, f = prf(2, 2, 1)
    assert (p, r) == (0.5, pytest.approx(2 / 3))
    assert f == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert prf(5, 0, 0) == (1.0, 1.0, 1.0)


# --------------------------------------------------------------------------- properties

_answers = st.text(max_size=40)
_wordy = st.lists(
    st.sampled_from(["the", "a", "an", "Paris", "paris,", "Eiffel", "tower.", "1889", "«x»", "é", "--"]),
    max_size=8,
).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_answers, _wordy))
def test_normalize_answer_idempotent(s):
    once = normalize_answer(s)
    assert normalize_answer(once) == once


@settings(max_examples=300, deadline=None)
@given(st.one_of(_answers, _wordy), st.one_of(_answers, _wordy))
def test_em_le_f1_single_gold(pred, gold):
    em = exact_match(pred, [gold])
    f1 = token_f1(pred, [gold])
    assert em <= f1
    assert 0.0 <= f1 <= 1.0
    assert em in (0.0, 1.0)


@settings(max_examples=200, deadline=None)
@given(st.one_of(_answers, _wordy), st.lists(st.one_of(_answers, _wordy), max_size=4))
def test_f1_in_unit_interval_many_golds(pred, golds):
    assert 0.0 <= token_f1(pred, golds) <= 1.0
    assert 0.0 <= best_span_scores(pred, golds)[1] <= 1.0


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_label_and_entity_parsers_never_crash(text):
    assert map_label(text, LABELS) in (None, "positive", "negative")
    for surface, typ in parse_entities(text):
        assert isinstance(surface, str) and surface
        assert typ in ("", "PER", "LOC", "ORG", "MISC")
    assert isinstance(extract_span_answer(text), str)
