"""Typo tolerance (qa/typos.py) on the sample corpus: what is corrected, what is left as
typed, and that a misspelt question finds what the spelt one finds."""

from __future__ import annotations

import random

import pytest

from qa.quality.typos import add_typos, misspell
from qa.typos import Speller, distance

CORRECTED = [
    # (as typed, its language, as searched)
    ("Bestelung stornieren", "de", "bestellung stornieren"),
    ("Passwort vergesen", "de", "Passwort vergessen"),
    ("psswort zurücksetzen", "de", "passwort zurücksetzen"),
    ("neuer Reisepass, Daten im Konto akutalisieren", "de", "neuer Reisepass, Daten im Konto aktualisieren"),
    ("Ich kommme nicht mehr in mein Konto", "de", "Ich komme nicht mehr in mein Konto"),
    ("wie ändere ich meine Lieferadrese", "de", "wie ändere ich meine lieferadresse"),
    ("Lieferaddressse ändern", "de", "lieferadresse ändern"),  # two typos in a long word
    ("sponser wechseln", "de", "sponsor wechseln"),
    ("wo ist mein parcle", "en", "wo ist mein parcel"),  # the last word: no corpus word starts with it
    ("I forgot my pasword", "en", "I forgot my password"),
    ("Не помню пароль от каббинета", "ru", "Не помню пароль от кабинета"),
    ("смена спосора", "ru", "смена спонсора"),
    ("как восстоновить пароль", "ru", "как восстановить пароль"),
]

AS_TYPED = [
    # real words the corpus does not use: a general dictionary knows them
    ("Wie wird das Wetter morgen in Wien?", "de"),
    ("Newsletter abbestellen, ich will keine Werbemails mehr", "de"),
    ("Atomy stock price today", "en"),
    ("give me a good recipe for banana bread", "en"),
    ("какая погода завтра в Москве", "ru"),
    ("мы с мужем можем на одном номере сидеть", "ru"),
    ("и накопленное не пропадёт?", "ru"),  # an inflection the Russian list lacks: by its stem's neighbours
    ("Amazon eBay verkaufen", "de"),
    ("Ölproduktion in Kasachstan", "de"),  # a compound of two real words
    ("wie storniere ich meine Bestel", "de"),  # still being typed: "bestellung" starts so
    ("Passw", "de"),
    # the corpus's own words, short words, numbers and codes
    ("Kaspi Gold Auszahlung", "de"),
    ("lgin not working", "en"),
    ("Mitgliedsnummer 12345678", "de"),
    ("Fehler ID-4815 beim Bezahlen", "de"),
    ("каббинетта", "ru"),  # two typos in a Russian word: one only (the Russian list is small)
    ("Passwortt" + "x" * 5000, "de"),  # no word at all: its deletions would cost O(n^2)
]


@pytest.fixture(scope="module")
def speller(searcher) -> Speller:
    assert searcher.vocabulary.speller is not None
    return searcher.vocabulary.speller


@pytest.mark.parametrize("typed,lang,searched", CORRECTED)
def test_a_misspelt_word_is_searched_as_the_corpus_spells_it(speller, typed, lang, searched):
    assert speller.correct(typed, lang) == searched


@pytest.mark.parametrize("typed,lang", AS_TYPED)
def test_words_that_are_real_or_too_short_stay_as_typed(speller, typed, lang):
    assert speller.correct(typed, lang) == typed


def test_among_equally_close_words_the_questions_language_wins_then_use():
    speller = Speller.from_texts([("Konto Konto", "de"), ("konte konte konte", "en")])
    assert speller.closest("kontq", "de") == "konto"  # the German texts use it, though less
    assert speller.closest("kontq", "en") == "konte"
    assert speller.closest("kontq") == "konte"  # no language: the most used


@pytest.mark.parametrize("a,b,expected", [
    ("kitten", "sitting", 3), ("passwort", "passwort", 0), ("akutalisieren", "aktualisieren", 1),
    ("", "abc", 3), ("ca", "abc", 3), ("спосора", "спонсора", 1),
])
def test_distance_counts_a_swap_of_neighbours_as_one_typo(a, b, expected):
    assert distance(a, b) == expected


@pytest.mark.parametrize("typed,spelt", [
    ("Pasword vergesen", "Passwort vergessen"),
    ("Bestelung stornieren", "Bestellung stornieren"),
    ("каббинет заблокирован", "кабинет заблокирован"),
    ("where is my parcle", "where is my parcel"),
])
def test_a_misspelt_question_finds_what_the_spelt_one_finds(searcher, typed, spelt):
    prepared = searcher.prepare(typed)
    assert prepared.text == typed and prepared.search_text != typed  # corrected, and only for searching
    found = [h.article.id for h in searcher.search(typed, limit=3).hits]
    assert found == [h.article.id for h in searcher.search(spelt, limit=3).hits]


def test_the_evaluation_misspells_long_words_the_same_way_every_time():
    text = "Wie kann ich meine Bestellung stornieren und das Geld zurückbekommen?"
    once, again = add_typos(text, 2, random.Random(0)), add_typos(text, 2, random.Random(0))
    assert once == again and once != text
    changed = [(a, b) for a, b in zip(text.split(), once.split()) if a != b]
    assert len(changed) == 2 and all(len(a) >= 5 and distance(a, b) == 1 for a, b in changed)
    assert all(distance(w, misspell(w, random.Random(n))) == 1 for n, w in enumerate(["Passwort", "кабинет"] * 20))


def test_typo_tolerance_can_be_turned_off(sample_index_dir, encoder):
    """HELPDESK_QA_TYPO_TOLERANCE=false: a misspelt word is searched as typed."""
    from qa.artifact import load_index
    from qa.search import Searcher

    off = Searcher(load_index(sample_index_dir, model=encoder.identity), encoder, typo_tolerance=False)
    assert off.vocabulary.speller is None
    assert off.prepare("Bestelung stornieren").search_text == "Bestelung stornieren"
