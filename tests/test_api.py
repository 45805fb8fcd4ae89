"""End to end: a real uvicorn server on a free port, on the real sample index."""

import shutil
import time

import httpx
import pytest

from qa.artifact import CURRENT

from .conftest import SAMPLE_ARTICLES, Server


@pytest.mark.parametrize(
    "question, article",
    [
        ("как сменить центр", "str-change-center"),
        ("Не помню пароль от кабинета, как восстановить?", "acc-password-reset"),
        ("Passwort vergessen", "acc-password-reset"),
        ("Wie storniere ich meine Bestellung?", "ord-cancel"),
        ("where is my parcel", "ord-tracking"),
        ("when is the master bonus paid", "pay-schedule"),
    ],
)
def test_questions_reach_the_right_article(api, question, article):
    body = api.get("/v1/ask", params={"q": question}).json()
    assert body["answered"] is True
    assert body["results"][0]["article_id"] == article


def test_passwort_vergessen_gets_the_german_section_with_its_deep_link(api):
    body = api.get("/v1/ask?q=Passwort%20vergessen").json()
    assert body["query_lang"] == "de"
    top = body["results"][0]
    assert top["lang"] == "de" and top["article_id"] == "acc-password-reset"
    assert top["url"] == f"https://helpdesk.atomydoc.ru/de/account/acc-password-reset#{top['anchor']}"
    assert top["anchor"] and top["steps"] and top["text"].startswith("1. ")
    assert top["available_languages"] == ["ru", "de", "en"]
    assert set(top) >= {"article_title", "section_title", "countries", "category", "score"}


def test_german_question_on_russian_only_article_gets_russian_section_flagged(api):
    body = api.post("/v1/ask", json={"question": "Auszahlung auf Kaspi Gold einrichten", "country": "KZ"}).json()
    kaspi = [r for r in body["results"] if r["article_id"] == "pay-kz-kaspi"]
    assert kaspi, body
    assert kaspi[0]["lang"] == "ru" and kaspi[0]["available_languages"] == ["ru"]
    assert body["query_lang"] == "de"


def test_same_section_never_listed_twice_in_different_languages(api):
    body = api.post("/v1/ask", json={"question": "bank details", "limit": 20}).json()
    keys = [(r["article_id"], r["anchor"] or r["section_title"]) for r in body["results"]]
    seen = {}
    for r in body["results"]:
        seen.setdefault(r["article_id"], set()).add(r["lang"])
    assert all(len(langs) == 1 for langs in seen.values())
    assert len(keys) == len(set(keys))


def test_country_scope(api):
    general = api.post("/v1/ask", json={"question": "Способы оплаты заказа в России", "limit": 20}).json()
    assert any(r["countries"] == ["RU"] for r in general["results"])  # without a country: everything

    kz = api.post(
        "/v1/ask", json={"question": "Способы оплаты заказа в России", "country": "KZ", "limit": 20}
    ).json()
    assert kz["results"]
    assert all("ALL" in r["countries"] or "KZ" in r["countries"] for r in kz["results"])


def test_country_section_ranks_above_the_general_one_of_its_article(api):
    body = api.post("/v1/ask", json={"question": "bank details", "country": "KZ", "limit": 10}).json()
    bank = [r for r in body["results"] if r["article_id"] == "acc-bank-details"]
    assert bank[0]["countries"] == ["KZ", "KG"]
    de = api.post("/v1/ask", json={"question": "Lieferzeit", "country": "AT", "limit": 10}).json()
    delivery = [r for r in de["results"] if r["article_id"] == "ord-delivery"]
    assert "AT" in delivery[0]["countries"]


def test_country_lift_never_buries_an_on_point_general_section(api):
    body = api.post("/v1/ask", json={"question": "my parcel never arrived", "country": "DE", "limit": 5}).json()
    top = body["results"][0]
    assert (top["article_id"], top["countries"]) == ("ord-tracking", ["ALL"])
    assert "not arrived" in top["section_title"]
    dhl = [r for r in body["results"] if "DHL" in r["section_title"]]
    assert not dhl or body["results"].index(dhl[0]) > 0


def test_nonsense_gets_no_answer_and_the_support_pointer(api):
    for question, lang in [("who won the football world cup", "en"), ("посоветуй хороший сериал", "ru")]:
        body = api.post("/v1/ask", json={"question": question}).json()
        assert body["answered"] is False
        support = body["support"]
        assert support["article_id"] == "faq-contact-support"
        assert f"/{lang}/" in support["url"]
        assert ("member ID" in support["message"]) or ("номер участника" in support["message"])


def test_explicit_lang_wins(api):
    body = api.get("/v1/ask", params={"q": "PayPal", "lang": "de"}).json()
    assert body["query_lang"] == "de"
    assert body["results"][0]["lang"] == "de"


def test_fallback_lang_only_applies_when_detection_fails(api):
    unknown = api.get("/v1/ask", params={"q": "IBAN", "fallback_lang": "de"}).json()
    assert unknown["query_lang"] == "unknown"
    assert unknown["results"]
    # Shown in the fallback language wherever the article exists in it.
    assert all(r["lang"] == "de" for r in unknown["results"] if "de" in r["available_languages"])
    assert any(r["lang"] == "de" for r in unknown["results"])
    russian = api.get("/v1/ask", params={"q": "как сменить центр", "fallback_lang": "de"}).json()
    assert russian["query_lang"] == "ru" and russian["results"][0]["lang"] == "ru"


def test_category_filter(api):
    body = api.get("/v1/ask", params={"q": "Passwort", "category": "orders"}).json()
    assert body["results"] and all(r["category"] == "orders" for r in body["results"])


@pytest.mark.parametrize(
    "params, field, words",
    [
        ({"q": "   "}, "q", "must not be empty"),
        ({"q": ""}, "q", "must not be empty"),
        ({"q": "x" * 501}, "q", "at most 500"),
        ({"q": "hallo", "lang": "fr"}, "lang", "'ru', 'de' or 'en'"),
        ({"q": "hallo", "country": "XX"}, "country", "unknown country code"),
        ({"q": "hallo", "limit": 0}, "limit", "greater than or equal to 1"),
        ({"q": "hallo", "limit": 21}, "limit", "less than or equal to 20"),
        ({"q": "hallo", "limit": "many"}, "limit", "valid integer"),
        ({"q": "hallo", "category": "cooking"}, "category", "unknown category"),
        ({}, "q", "Field required"),
    ],
)
def test_get_errors(api, params, field, words):
    r = api.get("/v1/ask", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"{field}: ") and words in r.json()["detail"]


@pytest.mark.parametrize(
    "body, field, words",
    [
        ({"question": " \n "}, "question", "must not be empty"),
        ({"question": "ä" * 501}, "question", "at most 500"),
        ({"question": "hallo", "lang": "es"}, "lang", "'ru', 'de' or 'en'"),
        ({"question": "hallo", "country": "US"}, "country", "unknown country code"),
        ({"question": "hallo", "limit": 50}, "limit", "less than or equal to 20"),
        ({"question": 42}, "question", "valid string"),
        ({}, "question", "Field required"),
        ([1, 2], "body", "JSON object"),
    ],
)
def test_post_errors(api, body, field, words):
    r = api.post("/v1/ask", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"{field}: ") and words in r.json()["detail"]


def test_malformed_json_is_a_422(api):
    r = api.post("/v1/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "detail" in r.json()
    r = api.post("/v1/ask", content="garbage")
    assert r.status_code == 422 and "JSON object" in r.json()["detail"]


def test_hostile_input_never_500s(api):
    for q in ["\x00\x01", "🙂" * 100, "<script>alert(1)</script>", "' OR 1=1 --", "a" * 500, "%%%", "\u202e"]:
        assert api.get("/v1/ask", params={"q": q}).status_code in (200, 422)
        assert api.post("/v1/ask", json={"question": q}).status_code in (200, 422)


def test_article_endpoint(api):
    body = api.get("/v1/articles/acc-password-reset", params={"lang": "de"}).json()
    assert body["lang"] == "de" and body["languages"] == ["ru", "de", "en"]
    assert body["sections"][0]["anchor"] == "" and body["sections"][0]["url"] == body["url"]
    assert all(s["url"] == f"{body['url']}#{s['anchor']}" for s in body["sections"][1:])
    only_ru = api.get("/v1/articles/pay-kz-kaspi", params={"lang": "de"}).json()
    assert only_ru["lang"] == "ru" and only_ru["languages"] == ["ru"]
    missing = api.get("/v1/articles/no-such-article")
    assert missing.status_code == 404 and "no-such-article" in missing.json()["detail"]
    assert api.get("/v1/articles/acc-password-reset", params={"lang": "xx"}).status_code == 422


def test_health_ready_and_docs(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz").json()
    assert ready["status"] == "ready" and ready["index"]["articles"] == SAMPLE_ARTICLES
    assert api.get("/docs").status_code == 200
    assert "/v1/ask" in api.get("/openapi.json").json()["paths"]


def test_cors_allows_configured_origins_only(api):
    ok = api.options(
        "/v1/ask", headers={"Origin": "http://localhost:8000", "Access-Control-Request-Method": "POST"}
    )
    assert ok.headers.get("access-control-allow-origin") == "http://localhost:8000"
    evil = api.get("/v1/ask", params={"q": "hallo"}, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in evil.headers


def test_no_index_gives_503_saying_to_run_ingest(tmp_path):
    server = Server(tmp_path / "empty")
    try:
        r = httpx.get(server.url + "/v1/ask", params={"q": "Passwort"})
        assert r.status_code == 503 and "qa ingest" in r.json()["detail"]
        assert httpx.get(server.url + "/readyz").status_code == 503
        assert httpx.get(server.url + "/healthz").status_code == 200
    finally:
        server.stop()


def test_an_unready_service_retries_an_unchanged_folder_rarely_and_a_changed_one_at_once(
        tmp_path, sample_index_dir, monkeypatch):
    import qa.api.service as service_module
    from qa.artifact import read_pointer
    from qa.config import Settings

    root = tmp_path / "idx"
    broken = root / "build-99990101T000000-broken"
    broken.mkdir(parents=True)
    (broken / "manifest.json").write_text("{}")
    (root / CURRENT).write_text(broken.name)
    tries = []
    load = service_module.load_newest_intact  # the real one, counted
    monkeypatch.setattr(service_module, "load_newest_intact", lambda *a, **k: tries.append(1) or load(*a, **k))
    service = service_module.Service(Settings(index_dir=root))
    service.load()
    assert service.searcher is None and service.error
    for _ in range(3):
        service.reload_if_changed()
    assert len(tries) == 2  # at start-up, then once more; the unchanged folder is not hashed again
    monkeypatch.setattr(service_module, "RETRY_UNCHANGED", 0.0)
    service.reload_if_changed()
    assert len(tries) == 3 and service.searcher is None  # ... until RETRY_UNCHANGED has passed
    monkeypatch.setattr(service_module, "RETRY_UNCHANGED", 300.0)
    good = read_pointer(sample_index_dir)
    shutil.copytree(sample_index_dir / good, root / good)  # a whole build arrives beside the broken one
    service.reload_if_changed()
    assert len(tries) == 4 and service.searcher is not None and service.build == good


def test_service_keeps_last_good_index_and_picks_up_new_builds(tmp_path, sample_index_dir, encoder):
    from qa.artifact import save_index
    from qa.corpus import load_corpus
    from qa.index import build_index

    from .conftest import write_article

    root = tmp_path / "idx"
    shutil.copytree(sample_index_dir, root)
    server = Server(root)
    try:
        ask = lambda q: httpx.get(server.url + "/v1/ask", params={"q": q}, timeout=30)  # noqa: E731
        assert ask("Passwort vergessen").json()["results"][0]["article_id"] == "acc-password-reset"

        # A broken build made current: the service keeps answering from the old one.
        broken = root / "build-99990101T000000-broken"
        broken.mkdir()
        (broken / "manifest.json").write_text("{}")
        (root / CURRENT).write_text(broken.name)
        time.sleep(2)
        assert ask("Passwort vergessen").json()["results"][0]["article_id"] == "acc-password-reset"
        ready = httpx.get(server.url + "/readyz")
        assert ready.json()["index"]["articles"] == SAMPLE_ARTICLES
        # ... and says so (issue 20, deliverable 7): 200, degraded, naming the refused build
        assert ready.status_code == 200 and ready.json()["status"] == "degraded", ready.json()
        assert broken.name in ready.json()["reason"]

        # A good new build is picked up without a restart.
        corpus = tmp_path / "corpus"
        write_article(corpus, "en", "zebra", "## Feeding zebras\n\n1. Bring hay.\n", title="Zebra care")
        save_index(build_index(load_corpus(corpus), encoder), root)
        deadline = time.time() + 20
        while time.time() < deadline:
            if httpx.get(server.url + "/readyz").json()["index"]["articles"] == 1:
                break
            time.sleep(0.3)
        assert ask("how to feed a zebra").json()["results"][0]["article_id"] == "zebra"
    finally:
        server.stop()
