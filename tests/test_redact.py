"""Redaction of personal data: a table of realistic questions in ru/de/en that must lose
their personal data (with the right placeholder), and questions that must stay as they are."""

from __future__ import annotations

import pytest

from qa.events.redact import classify_number, iban_ok, iin_ok, inn_ok, luhn_ok, redact, steuer_id_ok
from qa.ops.accesslog import scrub_path

# (question, expected after redaction)
POSITIVES = [
    # member IDs (8 digits)
    (
        "Meine Mitgliedsnummer ist 12345678, ich komme nicht ins Konto",
        "Meine Mitgliedsnummer ist [member-id], ich komme nicht ins Konto",
    ),
    ("мой ID 87654321 не могу войти", "мой ID [member-id] не могу войти"),
    ("member id 40961234 forgot password", "member id [member-id] forgot password"),
    ("ID:30561287 Bestellung fehlt", "ID:[member-id] Bestellung fehlt"),
    ("номер участника 10020030, где мой заказ?", "номер участника [member-id], где мой заказ?"),
    ("Sponsor 55512345 wechseln", "Sponsor [member-id] wechseln"),
    # e-mail
    ("Passwort-Mail kommt nicht an max.mustermann@gmail.com", "Passwort-Mail kommt nicht an [email]"),
    ("не приходит письмо на ivanova-1985@mail.ru", "не приходит письмо на [email]"),
    ("change my email from john_doe+atomy@example.co.uk", "change my email from [email]"),
    ("E-Mail: anna.schmidt@web.de – Konto gesperrt", "E-Mail: [email] – Konto gesperrt"),
    # phones: RU/KZ
    ("позвоните мне +7 916 123-45-67", "позвоните мне [phone]"),
    ("мой телефон 8 (916) 123-45-67", "мой телефон [phone]"),
    ("телефон 89161234567 не приходит смс", "телефон [phone] не приходит смс"),
    ("Казахстан +7 701 234 56 78 смена номера", "Казахстан [phone] смена номера"),
    ("номер 8-777-123-45-67 заблокирован", "номер [phone] заблокирован"),
    ("смс на 916 123 45 67 не приходит", "смс на [phone] не приходит"),
    # phones: DE/AT/CH and international
    ("Rückruf bitte unter 030 12345678", "Rückruf bitte unter [phone]"),
    ("Handy 0171 1234567 neue Nummer eintragen", "Handy [phone] neue Nummer eintragen"),
    ("Meine Nummer ist 0171/1234567", "Meine Nummer ist [phone]"),
    ("Tel. (030) 1234567", "Tel. [phone]"),
    ("+49 (0)30 1234567 erreichbar", "[phone] erreichbar"),
    ("Österreich: 0664 1234567", "Österreich: [phone]"),
    ("+43 1 234567890 ist meine Nummer", "[phone] ist meine Nummer"),
    ("Schweiz 079 123 45 67, SMS kommt nicht", "Schweiz [phone], SMS kommt nicht"),
    ("call me at +41 44 668 18 00", "call me at [phone]"),
    ("my phone is 0049 171 1234567", "my phone is [phone]"),
    ("phone +1 (415) 555-2671 please", "phone [phone] please"),
    # IBAN
    ("Rückerstattung auf IBAN DE89 3704 0044 0532 0130 00", "Rückerstattung auf IBAN [iban]"),
    ("IBAN AT611904300234573201 hinterlegen", "IBAN [iban] hinterlegen"),
    ("Konto CH93 0076 2011 6238 5295 7 ändern", "Konto [iban] ändern"),
    ("вернуть деньги на счёт KZ86125KZT5004100100", "вернуть деньги на счёт [iban]"),
    ("refund to GB29 NWBK 6016 1331 9268 19", "refund to [iban]"),
    # cards (Luhn)
    ("карта 4111 1111 1111 1111 не проходит", "карта [card] не проходит"),
    ("payment with 5500-0000-0000-0004 declined", "payment with [card] declined"),
    ("Karte 4673259483003489 abgelehnt", "Karte [card] abgelehnt"),
    ("оплатил картой МИР 2200 4543 5383 4149", "оплатил картой МИР [card]"),
    ("Amex 3704 675634 86755 was charged twice", "Amex [card] was charged twice"),
    # Russian passport
    ("паспорт 45 07 123456 для верификации", "паспорт [passport] для верификации"),
    ("серия и номер паспорта 4507 123456", "серия и номер паспорта [passport]"),
    ("паспорт 4510987654 не принимают", "паспорт [passport] не принимают"),
    # INN / IIN
    ("мой ИНН 779883181808 для самозанятого", "мой ИНН [inn] для самозанятого"),
    ("ИНН ИП 504056435237", "ИНН ИП [inn]"),
    ("ИНН организации 7743268890", "ИНН организации [inn]"),
    ("ИИН 850312876232 верификация", "ИИН [inn] верификация"),
    ("мой ИИН: 920704198463", "мой ИИН: [inn]"),
    # German Steuer-ID
    ("Steuer-ID 50832161205 eintragen", "Steuer-ID [steuer-id] eintragen"),
    ("Meine Steuer-Identifikationsnummer ist 34399351700", "Meine Steuer-Identifikationsnummer ist [steuer-id]"),
    ("IdNr 57017638956 für die Abrechnung", "IdNr [steuer-id] für die Abrechnung"),
    # several in one question
    ("ID 12345678, Tel. +7 701 234 56 78, mail a.b@c.kz", "ID [member-id], Tel. [phone], mail [email]"),
    ("Mitglied 23456789 IBAN DE89370400440532013000 Rückzahlung", "Mitglied [member-id] IBAN [iban] Rückzahlung"),
    # issue 20, finding 5: the misses of the review, verbatim
    ("ID48151624 Passwort vergessen", "ID[member-id] Passwort vergessen"),
    ("Nr.48151625 Bestellung fehlt", "Nr.[member-id] Bestellung fehlt"),
    ("ID_48151633 gesperrt", "ID_[member-id] gesperrt"),
    ("meine Nummer 4815 1626", "meine Nummer [member-id]"),
    ("meine Nummer 4815-1626", "meine Nummer [member-id]"),
    ("Rückruf tel.+4930123456", "Rückruf tel.[phone]"),
    ("IBAN DE89-3704-0044-0532-0130-00 ändern", "IBAN [iban] ändern"),
    ("Karte 4111.1111.1111.1111 abgelehnt", "Karte [card] abgelehnt"),
    # glued to letters, underscores, dots, colons
    ("Mitgliedsnr.48151699 Login", "Mitgliedsnr.[member-id] Login"),
    ("member#48151699 blocked", "member#[member-id] blocked"),
    ("ID-Nr:48151699", "ID-Nr:[member-id]"),
    ("ID№48151699 не входит", "IDNo[member-id] не входит"),  # NFKC: № is "No"
    ("user_48151699_de", "user_[member-id]_de"),
    ("Tel:+49 171 1234567", "Tel:[phone]"),
    ("Tel.:030 12345678 bitte", "Tel.:[phone] bitte"),
    ("тел.+79161234567", "тел.[phone]"),
    ("phone:+41446681800", "phone:[phone]"),
    # grouped member IDs and IBANs/cards with any separator
    ("ID 4815 1699 und Passwort", "ID [member-id] und Passwort"),
    ("номер 4815-1699 не работает", "номер [member-id] не работает"),
    ("IBAN AT61.1904.3002.3457.3201", "IBAN [iban]"),
    ("IBAN:DE89370400440532013000", "IBAN:[iban]"),
    ("iban de89 3704 0044 0532 0130 00", "iban [iban]"),
    ("card 4111-1111-1111-1111", "card [card]"),
    ("Karte 5500.0000.0000.0004", "Karte [card]"),
    # hidden by Unicode: zero-width characters, full-width digits, NBSP
    ("Mitgliedsnummer 4815\u200b1699", "Mitgliedsnummer [member-id]"),
    ("ID 4\u200c8\u200d1\u20605\ufeff1699", "ID [member-id]"),
    ("ID \uff14\uff18\uff11\uff15\uff11\uff16\uff19\uff19", "ID [member-id]"),
    ("mail anna.petrova\u200b@example.com", "mail [email]"),
    ("Tel.\u00a0+49\u00a0171\u00a01234567", "Tel. [phone]"),
]

NEGATIVES = [
    "Bestellung vom 12.03.2024 ist nicht angekommen",
    "заказ от 01.02.2025 не пришёл",
    "order placed on 2024-03-12 still pending",
    "Lieferung am 2026-11-20?",
    "стоимость 1 000 руб за доставку",
    "доставка стоит 350 руб",
    "Versand kostet 10 EUR",
    "Mindestbestellwert 1.299,00 €",
    "why is shipping 4.99 EUR",
    "сумма заказа 12 500 тенге",
    "PV 300 für den Status",
    "сколько нужно PV 300 для бонуса",
    "how many PV do I need for 100 000 points",
    "Status: versandt",
    "статус заказа: отправлен",
    "order status shipped but no tracking",
    "Passwort vergessen",
    "как сменить центр",
    "where is my parcel",
    "PLZ 10115 Berlin Lieferung",
    "Postleitzahl 1010 Wien",
    "индекс 050000 Алматы",
    "Lieferzeit 3-5 Werktage",
    "доставка 7-10 дней",
    "Rückgabe innerhalb von 14 Tagen",
    "um 10:30 Uhr angerufen",
    "в 18:45 пришло смс",
    "Version 2.3.1 der App",
    "20% Rabatt im Dezember",
    "скидка 15% на первый заказ",
    "2 Stück HemoHIM bestellt",
    "заказал 3 шт",
    "Bonus 150.000 Punkte",
    "Jahr 2025 Umsatz",
    "в 2024 году",
    "Sendungsnummer fehlt",
    "IBAN ändern",
    "номер карты изменить",
    "Telefonnummer ändern",
    "card number change",
    "Artikel 12345 nicht lieferbar",
    "order 1234567 missing",
    "Kalenderwoche 47/2026",
    "с 1 по 15 декабря",
    "EUR 49,90 und 5,90 Versand",
    # order numbers as members type them (6-7 digits, with a prefix or a sign)
    "Bestellung 1234567 storniert",
    "заказ №123456 не пришёл",
    "order #7654321 where is it",
    "Auftrag A-123456 Rechnung",
    "Bestellnr. 2611045 Rückgabe",
    # dates, times, prices, postcodes, versions in more forms
    "Lieferung bis 03.12.2026",
    "заказ от 3.12.26",
    "delivered 12/03/2024?",
    "Preis 1.299,00 € statt 1.499,00 €",
    "цена 12 990 ₽",
    "total 1,299.00 USD",
    "PLZ 8001 Zürich",
    "Postleitzahl 80331 München",
    "индекс 101000 Москва",
    "App 3.12.1 stürzt ab",
    "Rabatt 15 % bis 31.12.",
    "PV 1500 und BV 300",
]


def test_tables_are_big_enough():
    assert len(POSITIVES) >= 75 and len(NEGATIVES) >= 60
    assert len(POSITIVES) + len(NEGATIVES) >= 120


@pytest.mark.parametrize("text,expected", POSITIVES)
def test_personal_data_is_replaced_by_its_placeholder(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", NEGATIVES)
def test_ordinary_questions_stay(text):
    from qa.text import normalize

    assert redact(text) == normalize(text)  # normalised (№ -> No), nothing taken out


def test_check_digits():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("DE89 3704 0044 0532 0130 00") and not iban_ok("DE89 3704 0044 0532 0130 01")
    assert steuer_id_ok("50832161205") and not steuer_id_ok("50832161206")
    assert inn_ok("779883181808") and not inn_ok("779883181809")
    assert inn_ok("7743268890") and not inn_ok("7743268891")
    assert iin_ok("850312876232") and not iin_ok("850312876233")


def test_a_wrong_check_digit_is_not_a_card_or_iban():
    # 16 digits that fail Luhn, an IBAN with a wrong checksum: not redacted as such
    assert "[card]" not in redact("Gutschein 4111 1111 1111 1112")
    assert "[iban]" not in redact("DE00 3704 0044 0532 0130 00")
    assert classify_number("4111 1111 1111 1112") is None


def test_access_log_path_loses_the_question_but_keeps_the_rest():
    assert (
        scrub_path("/v1/ask?q=Passwort%20vergessen%2012345678&lang=de&limit=5") == "/v1/ask?q=[removed]&lang=de&limit=5"
    )
    assert scrub_path("/v1/ask?lang=de&q=x") == "/v1/ask?lang=de&q=[removed]"
    assert scrub_path("/healthz") == "/healthz"


@pytest.mark.parametrize("path", [
    "/v1/ask?%71=Mitgliedsnummer%2048151699",  # finding 12: an encoded key
    "/v1/ask?Q=48151699",
    "/v1/ask?q=a&q=48151699",
    "/v1/ask?x=48151699&lang=de",
    "/v1/ask?lang=48151699",  # a known key with a value that is not one of its values
    "/v1/ask?q%00=48151699",
    "/v1/ask?;q=48151699",
    "/v1/ask?q=48151699#frag",
    "/v1/ask?%2571=48151699",
])
def test_access_log_filter_works_on_the_parsed_query(path):
    scrubbed = scrub_path(path)
    assert "48151699" not in scrubbed and "4815" not in scrubbed, scrubbed
    assert scrubbed.startswith("/v1/ask")


def test_phrasing_is_never_usable_with_a_redacted_or_suspicious_number():
    from qa.events.gaps import usable

    assert usable("Passwort vergessen") == "Passwort vergessen"
    assert usable(redact("ID48151624 Passwort vergessen")) is None
    assert usable("Kundennummer 123456 Passwort") is None  # a long number redaction does not know
    assert usable("PV 300 für den Status") is not None
