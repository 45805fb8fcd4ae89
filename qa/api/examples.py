"""Valid examples of the API's models, for /docs: "Try it out" sends them as they are."""

QUERY_ID = "0123456789abcdef0123456789abcdef"
URL = "https://helpdesk.atomydoc.ru/de/account/acc-password-reset"
ANCHOR = "passwort-zurücksetzen-schritt-für-schritt"
STEPS = ["Öffnen Sie die Anmeldeseite.", "Klicken Sie auf „Passwort vergessen“."]

RESULT = {
    "article_id": "acc-password-reset",
    "article_title": "Passwort vergessen",
    "section_title": "Passwort zurücksetzen: Schritt für Schritt",
    "position": 1,
    "anchor": ANCHOR,
    "url": f"{URL}#{ANCHOR}",
    "lang": "de",
    "countries": ["ALL"],
    "category": "account",
    "text": "1. Öffnen Sie die Anmeldeseite.\n2. Klicken Sie auf „Passwort vergessen“.",
    "steps": STEPS,
    "score": 0.81,
    "available_languages": ["ru", "de", "en"],
    "snippet": " ".join(STEPS),
    "highlights": {"article_title": [[0, 8]], "section_title": [[0, 8]], "snippet": [[46, 54]], "best_step": 1,
                   "best_text": STEPS[1]},
    "rule": None,
    "explain": None,
}

SECTION = {
    "position": 1,
    "title": "Passwort zurücksetzen: Schritt für Schritt",
    "anchor": ANCHOR,
    "url": f"{URL}#{ANCHOR}",
    "countries": ["ALL"],
    "text": RESULT["text"],
    "steps": STEPS,
}

ARTICLE = {
    "id": "acc-password-reset",
    "lang": "de",
    "title": "Passwort vergessen",
    "category": "account",
    "countries": ["ALL"],
    "url": URL,
    "updated": "2026-08-19",
    "tags": ["Passwort"],
    "languages": ["ru", "de", "en"],
    "sections": [SECTION],
}

ANSWER = {
    "query_id": QUERY_ID,
    "query": "Passwort vergessen",
    "query_lang": "de",
    "answered": True,
    "results": [RESULT],
    "support": None,
    "rules": [],
    "reranked": False,
    "stage": "first",
    "took_ms": 3.2,
}

PHRASING = {
    "question": "Ich komme nicht mehr in mein Konto",
    "usable": True,
    "article_id": "acc-password-reset",
    "lang": "de",
    "title": "Passwort vergessen",
    "file": "corpus/de/account/acc-password-reset.md",
    "added": ["Ich komme nicht mehr in mein Konto"],
    "over_limit": [],
    "yaml": 'questions:\n  - "Ich komme nicht mehr in mein Konto"\n',
}
