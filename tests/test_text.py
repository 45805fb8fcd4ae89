"""`qa.text.normalize`: the one form of a question that detection, search and
redaction see."""

import pytest

from qa.text import normalize

CASES = [
    # zero-width characters inside words
    ("Pass\u200bwort ver\u200dgessen", "Passwort vergessen"),
    ("Mitglieds\u200cnummer\u2060 vergessen", "Mitgliedsnummer vergessen"),
    ("\ufeffгде моя посылка", "где моя посылка"),
    # bidi controls around and inside text
    ("\u202eпароль\u202c забыл", "пароль забыл"),
    ("\u200fwhere is my\u200e parcel\u2066?\u2069", "where is my parcel?"),
    # full-width letters, digits and punctuation
    ("ｐａｓｓｗｏｒｔ　ｖｅｒｇｅｓｓｅｎ", "passwort vergessen"),
    ("Ｎｒ．４８１５１６９９", "Nr.48151699"),
    # Latin look-alikes inside Cyrillic words, and Cyrillic ones inside Latin words
    ("пaроль", "пароль"),
    ("кaк смeнить цeнтр", "как сменить центр"),
    ("ПАРОЛb", "ПАРОЛь"),  # a Latin b typed for the soft sign
    ("Kаspi Gold где", "Kaspi Gold где"),
    ("Pаsswоrt", "Passwort"),
    # mixed scripts across words stay as they are
    ("Kaspi Gold где", "Kaspi Gold где"),
    ("СМС-код для iPhone", "СМС-код для iPhone"),
    # control characters, line breaks and runs of spaces
    ("a\x00b", "ab"),
    ("line\nbreak\ttab  and   spaces ", "line break tab and spaces"),
    ("\ud800 hi", "hi"),  # a lone surrogate
    # what must not change
    ("Mitgliedsnummer 48151699", "Mitgliedsnummer 48151699"),
    ("Straße", "Straße"),
    ("ёлка", "ёлка"),
]


@pytest.mark.parametrize("raw, expected", CASES)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_normalize_is_idempotent():
    for raw, _ in CASES:
        assert normalize(normalize(raw)) == normalize(raw)
