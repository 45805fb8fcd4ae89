"""Redaction of personal data in members' questions, before anything is stored or logged.

`redact(text)` first normalises the text (`qa.text.normalize`: NFKC, no zero-width or
control characters, look-alike letters folded), so a zero-width space or a full-width
digit cannot hide a number, then replaces each piece of personal data with a typed placeholder:
`[email]`, `[iban]`, `[card]`, `[phone]`, `[passport]`, `[inn]` (Russian INN,
Kazakh IIN), `[steuer-id]` and `[member-id]` (8 digits). Pure functions, no state.

Numbers are found as runs of digits with the separators people type (spaces,
dashes, slashes, brackets, a leading +), also when glued to a word ("ID48151624",
"Nr.48151625", "ID_48151633", "tel.+4930123456"), and then classified by length,
prefix, grouping (4+4 digits is a member ID: "4815 1626", "4815-1626") and check
digits (Luhn for cards, mod 97 for IBANs, the official check digits of INN, IIN
and Steuer-ID). A run that is none of these is split at spaces and each part is
tried alone, so "ID 12345678 2 Stück" still loses the ID. IBANs and cards may be
grouped with spaces, dashes or dots ("DE89-3704-…", "4111.1111.…").
Dates (12.03.2024, 2024-03-12), amounts (1 000 руб, 10 EUR, 1.299,00 €),
postcodes and "PV 300" have too few digits or the wrong separators and stay.
"""

from __future__ import annotations

import re

from ..text import normalize

PLACEHOLDERS = ("[email]", "[iban]", "[card]", "[phone]", "[passport]", "[inn]", "[steuer-id]", "[member-id]")

EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+", re.UNICODE)
# Country code, check digits, then groups of 4 separated by nothing, spaces, dashes or dots;
# may be glued to the word before it ("IBAN:DE89…", "iban_DE89…").
IBAN = re.compile(r"(?<![A-Z0-9])[A-Z]{2}\d{2}(?:[ .\-]?[A-Z0-9]{4}){2,7}(?:[ .\-]?[A-Z0-9]{1,3})?(?![A-Z0-9])",
                  re.IGNORECASE)
# 16-19 digit cards grouped by dots (a dot elsewhere is a date, a price or a version).
DOTTED_CARD = re.compile(r"(?<![\d.])\d{4}(?:\.\d{4}){3}(?:\.\d{1,3})?(?![\d]|\.\d)")
# A digit run: optional + or (, digits, and between digits the separators people type.
# It may follow a letter, "_" or "." ("ID48151624", "Nr.48151625"), but not a digit and
# separator (the "299" of "1.299,00") and must not run into more digits.
NUMBER = re.compile(
    r"(?<!\d)(?<!\d[.,])(?:\+|\(\+?)?\d(?:[\d]|[ \-/()](?=[\d(\s])|\s(?=\d))*\d\)?(?![\d]|[.,]\d)"
)
GROUPED_ID = re.compile(r"\d{4}[ \-]\d{4}")  # a member ID written in two halves
PASSPORT_WORDS = re.compile(r"паспорт|passport|reisepass|серия|serie", re.IGNORECASE)
INN_WORDS = re.compile(r"инн|иин|inn|iin|бин", re.IGNORECASE)
STEUER_WORDS = re.compile(r"steuer|idnr|tax\s*id|identifikationsnummer", re.IGNORECASE)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    s = re.sub(r"[ .\-]", "", candidate).upper()
    if not 15 <= len(s) <= 34:
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def steuer_id_ok(digits: str) -> bool:
    """German tax id: 11 digits, no leading 0, ISO 7064 MOD 11,10 check digit."""
    if len(digits) != 11 or digits[0] == "0":
        return False
    product = 10
    for ch in digits[:10]:
        s = (int(ch) + product) % 10 or 10
        product = (s * 2) % 11
    return (11 - product) % 10 == int(digits[10])


def _weighted(digits: str, weights: list[int]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights))


def inn_ok(digits: str) -> bool:
    """Russian INN: 10 digits (organisations) or 12 (people), with check digits."""
    if len(digits) == 10:
        return _weighted(digits, [2, 4, 10, 3, 5, 9, 4, 6, 8]) % 11 % 10 == int(digits[9])
    if len(digits) == 12:
        c11 = _weighted(digits, [7, 2, 4, 10, 3, 5, 9, 4, 6, 8]) % 11 % 10
        c12 = _weighted(digits, [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]) % 11 % 10
        return c11 == int(digits[10]) and c12 == int(digits[11])
    return False


def iin_ok(digits: str) -> bool:
    """Kazakh IIN/BIN: 12 digits, check digit with a second weight set when the first gives 10."""
    if len(digits) != 12:
        return False
    c = _weighted(digits, list(range(1, 12))) % 11
    if c == 10:
        c = _weighted(digits, [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2]) % 11
    return c != 10 and c == int(digits[11])


def classify_number(run: str, before: str = "") -> str | None:
    """The placeholder for one digit run, or None when it is not personal data.
    `before` is the text just in front of it (for words like "паспорт", "Steuer-ID")."""
    digits = re.sub(r"\D", "", run)
    n = len(digits)
    grouped = digits != run.strip()
    international = run.lstrip("(").startswith("+") or (digits.startswith("00") and n >= 10)
    if 13 <= n <= 19 and not international and luhn_ok(digits):
        return "[card]"
    if international:
        return "[phone]" if 8 <= n <= 15 else None
    if n == 11 and STEUER_WORDS.search(before) and steuer_id_ok(digits):
        return "[steuer-id]"
    if n == 11 and digits[0] in "78":
        return "[phone]"  # RU/KZ: 8 916 123-45-67, 7 701 …
    if digits[0] == "0" and 9 <= n <= 13:
        return "[phone]"  # DE/AT/CH national: 030 12345678, 0664 1234567, 079 123 45 67
    if n == 10 and (PASSPORT_WORDS.search(before) or re.fullmatch(r"\d{2} ?\d{2} \d{6}", run.strip())):
        return "[passport]"  # series and number: 45 07 123456, 4507 123456
    if n == 11 and steuer_id_ok(digits):
        return "[steuer-id]"
    if n == 10 and digits[0] == "9" and (grouped or not (INN_WORDS.search(before) or inn_ok(digits))):
        return "[phone]"  # RU mobile without the country prefix: 916 123 45 67
    if n in (10, 12) and (inn_ok(digits) or iin_ok(digits)):
        return "[inn]"
    if n == 8 and (not grouped or GROUPED_ID.fullmatch(run.strip())):
        return "[member-id]"
    return None


def _redact_numbers(text: str) -> str:
    out, last = [], 0
    for m in NUMBER.finditer(text):
        run = m.group(0)
        before = text[max(0, m.start() - 30):m.start()]
        label = classify_number(run, before)
        if label is None and " " in run.strip():
            # Several numbers written next to each other: judge each alone.
            parts = re.split(r"(\s+)", run)
            pieces = []
            for p in parts:
                lab = classify_number(p, before) if p.strip() and len(re.sub(r"\D", "", p)) >= 8 else None
                pieces.append(lab or p)
            replacement = "".join(pieces)
        else:
            replacement = label or run
        out.append(text[last:m.start()])
        out.append(replacement)
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def _iban(m: re.Match) -> str:
    """The match may run into the next word ("…3201 hinterlegen"): drop trailing
    groups until the checksum holds."""
    candidate = m.group(0)
    while candidate:
        if iban_ok(candidate):
            return "[iban]" + m.group(0)[len(candidate):]
        candidate = re.sub(r"[ .\-]?[A-Z0-9]{1,4}$", "", candidate, flags=re.IGNORECASE)
        if len(re.sub(r"[ .\-]", "", candidate)) < 15:
            break
    return m.group(0)


def _redact_ibans(text: str) -> str:
    return IBAN.sub(_iban, text)


def _dotted_card(m: re.Match) -> str:
    return "[card]" if luhn_ok(m.group(0).replace(".", "")) else m.group(0)


def redact(text: str) -> str:
    """`text`, normalised, with every e-mail, IBAN, card, phone, passport, INN/IIN,
    Steuer-ID and member ID replaced by its typed placeholder."""
    if not text:
        return text
    text = normalize(text)
    text = EMAIL.sub("[email]", text)
    text = _redact_ibans(text)
    text = DOTTED_CARD.sub(_dotted_card, text)
    return _redact_numbers(text)


# Six or more digits in a row, with at most single separators between them: not
# personal data by any rule above, but nothing a public phrasing should carry either.
SUSPICIOUS_NUMBER = re.compile(r"\d(?:[\s\-./]?\d){5,}")


def has_personal_data(text: str) -> bool:
    return redact(text) != normalize(text)


def suspicious(text: str) -> bool:
    """A redaction placeholder or a long number in it: never a usable phrasing."""
    return any(p in text for p in PLACEHOLDERS) or bool(SUSPICIOUS_NUMBER.search(text))
