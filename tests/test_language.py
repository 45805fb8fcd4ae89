import json

import pytest

from qa.language import UNKNOWN, detect_language

from .conftest import DEV_SET


def test_dev_set_languages_at_least_95_percent():
    rows = [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    right = sum(detect_language(r["q"]) == r["lang"] for r in rows)
    assert right / len(rows) >= 0.95, right / len(rows)


@pytest.mark.parametrize(
    "text, lang",
    [
        ("Passwort vergessen", "de"),
        ("Konto gesperrt", "de"),
        ("где посылка", "ru"),
        ("пароль", "ru"),
        ("как сменить центр", "ru"),  # unrestricted detectors call this mk/sr/uk
        ("where is my parcel", "en"),
        ("bank details", "en"),
        ("Kaspi Gold где", "ru"),
    ],
)
def test_short_queries(text, lang):
    assert detect_language(text) == lang


@pytest.mark.parametrize("text", ["123", "!!!", "PV", "IBAN", "🙂"])
def test_unknown_rather_than_a_wild_guess(text):
    assert detect_language(text) == UNKNOWN


def test_deterministic():
    assert len({detect_language("Lieferung Schweiz Zoll") for _ in range(20)}) == 1
