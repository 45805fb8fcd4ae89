"""Generated event-store data for tests and screenshots: a few days of questions in
ru/de/en from several countries, answered ones from the dev set's phrasing style,
unanswered ones that are the same few content gaps asked in different languages,
and feedback on some answers."""

from __future__ import annotations

import random
import time
import uuid

from qa.events.store import EventStore, FeedbackEvent, QueryEvent

ANSWERED = [
    ("Passwort vergessen", "de", "acc-password-reset"),
    ("Wie ändere ich meine Lieferadresse?", "de", "acc-delivery-addresses"),
    ("wo ist mein Paket", "de", "ord-tracking"),
    ("как сменить центр", "ru", "str-change-center"),
    ("не помню пароль от кабинета", "ru", "acc-password-reset"),
    ("где моя посылка", "ru", "ord-tracking"),
    ("where is my parcel", "en", "ord-tracking"),
    ("how do I reset my password", "en", "acc-password-reset"),
    ("Versandkosten nach Österreich", "de", "ord-delivery"),
    ("способы оплаты заказа", "ru", "ord-payment"),
]
# Content gaps: the same question in three languages (grouped by meaning), with variants.
GAPS = [
    [
        ("Gibt es einen Geburtstagsrabatt?", "de"),
        ("есть ли скидка на день рождения", "ru"),
        ("is there a birthday discount", "en"),
        ("Rabatt zum Geburtstag", "de"),
    ],
    [("Kann ich mit Bitcoin bezahlen?", "de"), ("можно ли оплатить биткоином", "ru"), ("can I pay with bitcoin", "en")],
    [
        ("Wo finde ich den Katalog als PDF?", "de"),
        ("где скачать каталог в pdf", "ru"),
        ("catalog as pdf download", "en"),
    ],
]
COUNTRIES = {"de": ["DE", "AT", "CH"], "ru": ["RU", "KZ"], "en": ["", "DE", "KZ"]}


def generate(store: EventStore, days: int = 6, per_day: int = 40, seed: int = 1, now: float | None = None) -> dict:
    """Writes the events; returns counts of what was written."""
    rng = random.Random(seed)
    now = time.time() if now is None else now
    queries, feedback = [], []
    for d in range(days):
        n = per_day + rng.randint(-per_day // 3, per_day // 3) + d * 3
        for _ in range(n):
            ts = now - d * 86400 - rng.uniform(60, 80000)
            qid = uuid.uuid4().hex
            if rng.random() < 0.25:
                text, lang = rng.choice(rng.choice(GAPS))
                queries.append(QueryEvent(qid, ts, text, lang, rng.choice(COUNTRIES[lang]), "", False, None, None,
                                          round(rng.uniform(0.2, 0.4), 3), round(rng.uniform(3, 9), 2), "build-1"))
                continue
            text, lang, article = rng.choice(ANSWERED)
            queries.append(QueryEvent(qid, ts, text, lang, rng.choice(COUNTRIES[lang]), "", True, article, "steps",
                                      round(rng.uniform(0.5, 0.8), 3), round(rng.uniform(3, 9), 2), "build-1"))
            if rng.random() < 0.5:
                feedback.append(
                    FeedbackEvent(qid, "opened", article, "steps", rng.choice([1, 1, 1, 2, 3]), None, ts + 5)
                )
                if rng.random() < 0.6:
                    helpful = rng.random() < (0.35 if article == "ord-tracking" else 0.8)
                    feedback.append(FeedbackEvent(qid, "helpful", article, "steps", None, helpful, ts + 20))
    store.write(queries, feedback)
    return {"questions": len(queries), "feedback": len(feedback)}
