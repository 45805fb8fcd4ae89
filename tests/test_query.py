"""`qa.query.prepare`: Russian typed in Latin letters is read as Russian, by the real
corpus's own vocabulary; German, English, brand and product names stay as they are; odd
Unicode is normalised before detection and search."""

from __future__ import annotations

import sqlite3
import time

import httpx
import pytest

from qa.corpus.loader import load_corpus
from qa.query import MAX_WORDS, Vocabulary, prepare
from qa.translit import MAX_CANDIDATES, MAX_LETTERS, candidates, skeleton

from .conftest import CORPUS, Server


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    articles = load_corpus(CORPUS).articles
    return Vocabulary.from_articles(articles, [s for a in articles for s in a.sections])


# Latin-script Russian -> words its Cyrillic search text must contain.
RUSSIAN = [
    ("kak smenit sponsora", "как сменить спонсора"),
    ("gde moya posylka", "где моя посылка"),
    ("parol zabyl ne mogu voiti", "пароль забыл не могу войти"),
    ("kak vosstanovit parol", "восстановить пароль"),
    ("parol'", "пароль"),  # soft sign as an apostrophe
    ("parol’", "пароль"),  # ... as a typographic one
    ("kak smenit' centr", "сменить центр"),  # c for ц
    ("kak smenit tsentr", "сменить центр"),  # ts for ц
    ("ne prishla posylka", "не пришла посылка"),
    ("kogda pridet zakaz", "когда придет заказ"),
    ("status zakaza", "статус заказа"),  # a word both scripts know, in a Russian question
    ("kak oplatit zakaz cherez Kaspi", "оплатить заказ через"),
    ("vozvrat deneg", "возврат денег"),
    ("kak vernut' tovar", "вернуть товар"),
    ("khochu otmenit zakaz", "хочу отменить заказ"),  # kh for х
    ("hochu otmenit zakaz", "хочу отменить заказ"),  # h for х
    ("kak popolnit schet", "счет"),  # sch for сч, not щ
    ("svyazatsya s podderjkoy", "связаться с поддержкой"),  # j for ж, y for й
    ("svjazatsja s podderzhkoj", "связаться с поддержкой"),  # ja for я, zh for ж, j for й
    ("ya zabyl parol", "я забыл пароль"),  # ya for я, y for ы
    ("ja zabyl parol", "я забыл пароль"),  # ja for я
    ("moy kabinet zablokirovan", "мой кабинет заблокирован"),
    ("moj kabinet zablokirovan", "мой кабинет заблокирован"),
    ("lichnyy kabinet", "личный кабинет"),  # yy for ый
    ("lichniy kabinet", "личный кабинет"),  # iy for ый
    ("registratsiya", "регистрация"),
    ("registraciya", "регистрация"),
    ("dostavka v Kazakhstan", "доставка в казахстан"),
    ("dostavka v Kazahstan", "доставка в казахстан"),
    ("kak poluchit' vyplatu", "получить выплату"),  # the soft sign as typed, y for ы
    ("ne rabotaet oplata kartoy", "не работает оплата картой"),
    ("nomer uchastnika", "номер участника"),
    ("KAK SMENIT SPONSORA", "как сменить спонсора"),
    ("kak izmenit adres dostavki", "изменить адрес доставки"),
    ("smena sponsora", "спонсора"),
    ("ｋａｋ ｓｍｅｎｉｔ ｓｐｏｎｓｏｒａ", "как сменить спонсора"),  # full-width letters
    ("\u202ekak smenit\u200b sponsora", "как сменить спонсора"),  # bidi and zero-width marks
]


@pytest.mark.parametrize("latin, cyrillic", RUSSIAN)
def test_latin_script_russian_is_searched_as_russian(vocabulary, latin, cyrillic):
    p = prepare(latin, vocabulary)
    assert p.lang == "ru" and p.transliterated
    assert cyrillic in p.search_text


def test_names_the_corpus_writes_in_latin_letters_stay_latin(vocabulary):
    assert "kaspi" in prepare("kak oplatit zakaz cherez Kaspi", vocabulary).search_text
    assert "pv" in prepare("chto takoe PV", vocabulary).search_text.split()


# German, English, names and product words: never taken for Russian.
NOT_RUSSIAN = [
    "Bestellung", "parcel", "IBAN", "Kaspi", "Kaspi Gold", "Atomy", "Hemohim", "PV", "ELSTER",
    "Passwort vergessen", "where is my parcel", "Wo ist mein Paket", "I forgot my password",
    "Rückerstattung beantragen", "how do I change my sponsor", "Sponsor wechseln",
    "Lieferung nach Kasachstan", "what is the weather today", "write me a python script",
    "Atomy share price", "Konto gesperrt", "Bitcoin", "Status meiner Bestellung", "tracking number",
    "Karte", "bank transfer", "login", "email", "Paket", "problem with my order", "Gewerbe anmelden",
    "Steuernummer", "Mitgliedsnummer vergessen", "reset password", "order status",
]


@pytest.mark.parametrize("text", NOT_RUSSIAN)
def test_german_english_and_names_are_not_converted(vocabulary, text):
    p = prepare(text, vocabulary)
    assert not p.transliterated and p.lang != "ru"
    assert p.search_text == text


@pytest.mark.parametrize("raw, normal, lang", [
    ("Pass\u200bwort ver\u200dgessen", "Passwort vergessen", "de"),
    ("\u200fwhere is my\u200e parcel", "where is my parcel", "en"),
    ("пaроль забыл", "пароль забыл", "ru"),  # a Latin look-alike inside a Cyrillic word
    ("ｐａｓｓｗｏｒｔ ｖｅｒｇｅｓｓｅｎ", "passwort vergessen", "de"),
])
def test_odd_unicode_is_normalised_before_detection(vocabulary, raw, normal, lang):
    p = prepare(raw, vocabulary)
    assert (p.text, p.search_text, p.lang, p.transliterated) == (normal, normal, lang, False)


def test_a_given_language_decides(vocabulary):
    as_german = prepare("kak smenit sponsora", vocabulary, lang="de")  # never converted to Cyrillic
    assert not as_german.transliterated and as_german.search_text.startswith("kak smenit sponsor")
    assert prepare("kak smenit sponsora", vocabulary, lang="en").lang == "en"
    forced = prepare("sponsor", vocabulary, lang="ru")  # an agent says it is Russian
    assert forced.lang == "ru" and forced.search_text == "спонсор"
    assert prepare("как сменить спонсора", vocabulary, lang="ru").transliterated is False


def test_a_pasted_latin_script_phrasing_does_not_make_its_words_latin(vocabulary):
    article = next(a for a in load_corpus(CORPUS).articles if a.lang == "ru")
    article.questions = [*article.questions, "parol zabyl ne mogu voiti"]
    v = Vocabulary.from_articles([article], article.sections)
    assert not v.is_latin("parol") and "parol" not in v.latin_in_russian


def test_without_a_vocabulary_only_normalisation_and_detection_happen():
    p = prepare("Pass\u200bwort vergessen")
    assert (p.search_text, p.lang, p.transliterated) == ("Passwort vergessen", "de", False)
    assert not prepare("gde moya posylka").transliterated


@pytest.mark.parametrize("latin, reading", [
    ("shchet", "щет"), ("schet", "счет"), ("zhena", "жена"), ("jena", "жена"), ("khorosho", "хорошо"),
    ("yula", "юла"), ("juzhnyj", "южный"), ("tsentr", "центр"), ("centr", "центр"), ("obyavlenie", "объявление"),
    ("ob'yavlenie", "объявление"), ("novye", "новые"),
])
def test_candidate_readings_cover_the_romanisation_variants(latin, reading):
    # Up to signs, й and ё, which the corpus's own spelling restores (`skeleton`).
    assert skeleton(reading) in {skeleton(c) for c in candidates(latin)}


def test_a_word_with_letters_no_romanisation_uses_has_no_reading():
    assert candidates("grüße") == () and candidates("") == ()


def test_preparation_is_bounded_on_long_input(vocabulary):
    assert candidates("a" * (MAX_LETTERS + 1)) == ()
    assert all(len(candidates(w)) <= MAX_CANDIDATES for w in ("shchyjyjyjeieiaiaiutsts", "yyyyyyyyyyyyyy"))
    long = " ".join(["kak smenit sponsora"] * (MAX_WORDS // 3 + 1))  # searched as typed
    assert not prepare(long, vocabulary).transliterated
    assert prepare(" ".join(["kak smenit sponsora"] * (MAX_WORDS // 3)), vocabulary).transliterated


# -- through search and the API --------------------------------------------------------
def test_search_answers_latin_script_russian_in_russian(searcher):
    result = searcher.search("kak smenit sponsora", fallback_lang="de")
    assert result.query_lang == "ru" and result.query == "kak smenit sponsora"
    assert result.hits[0].article.id == "str-change-sponsor"
    assert all(h.section.lang == "ru" for h in result.hits)
    parcel = searcher.search("gde moya posylka")
    assert parcel.query_lang == "ru" and parcel.answered
    assert parcel.hits[0].article.id in ("ord-tracking", "ord-delivery")


def test_zero_width_characters_do_not_stop_an_answer(searcher):
    result = searcher.search("Pass\u200bwort ver\u200dgessen")
    assert result.query_lang == "de" and result.answered
    assert result.hits[0].article.id == "acc-password-reset" and result.hits[0].section.lang == "de"


def test_german_and_english_questions_are_searched_as_before(searcher):
    assert searcher.search("where is my parcel").query_lang == "en"
    assert searcher.search("Sponsor wechseln").query_lang == "de"


def test_the_question_is_recorded_as_russian(sample_index_dir, tmp_path):
    server = Server(sample_index_dir, {"HELPDESK_QA_DATA_DIR": str(tmp_path)})
    try:
        body = httpx.get(server.url + "/v1/ask", params={"q": "parol zabyl ne mogu voiti", "fallback_lang": "de"},
                         timeout=30).json()
        assert body["query_lang"] == "ru" and body["results"][0]["lang"] == "ru"
        assert body["results"][0]["article_id"] == "acc-password-reset"
        deadline, row = time.time() + 10, None
        while row is None and time.time() < deadline:  # the recorder writes from its own thread
            time.sleep(0.2)
            with sqlite3.connect(tmp_path / "events.sqlite3") as db:
                row = db.execute("SELECT lang FROM queries WHERE id = ?", (body["query_id"],)).fetchone()
        assert row == ("ru",)
    finally:
        server.stop()
