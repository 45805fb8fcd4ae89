"""Every endpoint under generated input (issue 20, deliverable 6): hypothesis builds
requests (texts with NUL, lone surrogates, zero-width and control characters, huge and
negative numbers, wrong JSON types, odd query keys, random paths and methods) and
sends them to a real server with a second stage (a tiny real cross-encoder, so
`rerank=true` rereads through it). Any 5xx fails, and so does any request slower
than 1 s when sent again (once: the machine is shared, see `check`).

About 4,000 requests; ~3-4 minutes on the 2-core machine (with the index and the
cross-encoder built)."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Server
from .test_events_api import TOKEN

SLOW = 1.0
EXAMPLES = 500
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

NASTY = st.sampled_from(["\x00", "\ud800", "\udfff", "\u200b", "\ufeff", "\u202e", "%00", "%", "\\", "\"", "'",
                         "<script>", "../", "\n", "\r\n", "\t", "😀", "ё", "ß", "ID48151699", "\u0000\u0000"])
TEXT = st.lists(st.one_of(st.text(max_size=40), NASTY), max_size=12).map("".join)


def url_safe(text: str) -> str:
    """A URL carries bytes: a lone surrogate cannot be sent in one (it arrives as U+FFFD)."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


URL_TEXT = TEXT.map(url_safe)
JSON_ANY = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6,
)
HEX32 = st.text("0123456789abcdef", min_size=32, max_size=32)


@pytest.fixture(scope="module")
def prop_server(sample_index_dir, tmp_path_factory, tiny_model):
    data = tmp_path_factory.mktemp("prop-data")
    s = Server(sample_index_dir, {"HELPDESK_QA_ADMIN_TOKEN": TOKEN, "HELPDESK_QA_DATA_DIR": str(data),
                                  "HELPDESK_QA_RERANKER": str(tiny_model[0])})
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(prop_server):
    with httpx.Client(base_url=prop_server.url, timeout=10) as c:
        # The generated rerank=true requests go through the second stage, not around it.
        assert c.get("/v1/ask", params={"q": "Passwort vergessen", "rerank": "true"}).json()["reranked"] is True
        yield c


@pytest.fixture(scope="module")
def issued(client) -> dict:
    """A real answer, so feedback can also name a query that exists."""
    return client.get("/v1/ask", params={"q": "Passwort vergessen"}).json()


def timed(client: httpx.Client, method: str, url: str, **kwargs) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    r = client.request(method, url, **kwargs)
    took = time.perf_counter() - started
    assert r.status_code < 500, f"{method} {url} {kwargs}: {r.status_code} {r.text[:300]}"
    return r, took


def check(client: httpx.Client, method: str, url: str, **kwargs) -> httpx.Response:
    r, took = timed(client, method, url, **kwargs)
    if took >= SLOW:
        # An input that is slow to answer is slow every time; a pause of a machine shared
        # with training jobs is not (a 404 once took 1.7 s at load 20 on 2 cores): the same
        # request once more, and a second slow answer fails.
        r, again = timed(client, method, url, **kwargs)
        assert again < SLOW, f"{method} {url} {kwargs}: {took:.2f} s, then {again:.2f} s"
    if method != "HEAD" and r.status_code >= 400 and r.headers.get("content-type", "").startswith("application/json"):
        assert "detail" in r.json()
    return r


def raw_json(obj) -> bytes:
    """JSON as a client may send it: lone surrogates become \\ud800 escapes."""
    return json.dumps(obj, ensure_ascii=True).encode()


def field(values, *other) -> st.SearchStrategy:
    return st.one_of(st.sampled_from(values), JSON_ANY, *other)


@PROPERTY
@given(since=st.one_of(st.sampled_from(["7d", "1d", "3650d", "3654d", "99999999999999999999d", "9" * 400, "1e400d"]),
                       URL_TEXT),
       source=st.one_of(st.none(), st.sampled_from(["member", "all", "agent,widget", "x"]), URL_TEXT),
       token=st.sampled_from([TOKEN, "wrong", ""]), gaps=st.booleans())
def test_insights(client, since, source, token, gaps):
    params = {"since": since} if source is None else {"since": since, "source": source}
    check(client, "GET", "/v1/insights/gaps" if gaps else "/v1/insights", params=params,
          headers={"Authorization": f"Bearer {token}".strip()})


FLAG = ["true", "false", "1", "0", "yes", "", "maybe"]


@PROPERTY
@given(q=URL_TEXT, lang=field(["de", "ru", "en", ""]), country=field(["DE", "kz", "XX", ""]),
       category=field(["account", "orders", "nope"]), limit=field([1, 5, 20, 0, 21, -1, "5"]),
       rerank=field(FLAG), explain=field(FLAG), session=field(["abcdef0123456789", "xyz"]),
       source=field(["widget", "agent", "api", "docs", "robot"]),
       extra=st.dictionaries(URL_TEXT, URL_TEXT, max_size=2))
def test_ask_get(client, q, lang, country, category, limit, rerank, explain, session, source, extra):
    params = {"q": q, "lang": lang, "country": country, "category": category, "limit": limit, "rerank": rerank,
              "explain": explain, "session": session, "source": source, **extra}
    check(client, "GET", "/v1/ask", params={k: url_safe(str(v)) for k, v in params.items() if k})


LONG = ["Passwort vergessen " * 26, "😀" * 500, "ID48151699 " * 45, "где мой заказ, " * 33, "a" * 500]


@PROPERTY
@given(q=st.one_of(URL_TEXT, st.sampled_from(LONG)), limit=field([1, 5, 10, 11, "5"]))
def test_ask_final_question_through_the_second_stage(client, q, limit):
    """What the widget sends on Enter: rerank=true, by POST and by GET."""
    check(client, "POST", "/v1/ask", content=raw_json({"question": q, "rerank": True, "limit": limit}),
          headers={"Content-Type": "application/json"})
    check(client, "GET", "/v1/ask", params={"q": q, "rerank": "true", "explain": "true"})


@PROPERTY
@given(body=st.one_of(
    st.fixed_dictionaries({"question": TEXT}, optional={
        "lang": field(["de", "ru", "en"]), "country": field(["DE", "KZ", "xx"]), "category": field(["account"]),
        "limit": field([1, 5, 20, 0, 21]), "fallback_lang": field(["de"]), "session": field(["abcdef0123456789"]),
        "source": field(["widget", "agent", "api", "docs", "robot"]), "rerank": field([True, False]),
        "explain": field([True, False])}),
    JSON_ANY))
def test_ask_post(client, body):
    check(client, "POST", "/v1/ask", content=raw_json(body), headers={"Content-Type": "application/json"})


@PROPERTY
@given(question=TEXT, article=field(["pw", "acc-password-reset", "ord-tracking", "nope"], TEXT),
       lang=field(["de", "ru", "en", None]))
def test_phrasing(client, question, article, lang):
    check(client, "POST", "/v1/phrasing", content=raw_json({"question": question, "article_id": article, "lang": lang}),
          headers={"Content-Type": "application/json"})


@PROPERTY
@given(use_real=st.booleans(), qid=st.one_of(HEX32, TEXT), article=st.one_of(TEXT, st.just("ord-tracking")),
       anchor=st.one_of(TEXT, st.just("")), position=st.one_of(st.integers(-5, 30), JSON_ANY),
       helpful=st.one_of(st.booleans(), JSON_ANY), opened=st.booleans())
def test_feedback(client, issued, use_real, qid, article, anchor, position, helpful, opened):
    if use_real and issued["results"]:
        hit = issued["results"][0]
        qid, article, anchor = issued["query_id"], hit["article_id"], hit["anchor"]
    body = {"query_id": qid, "article_id": article, "anchor": anchor}
    body.update({"position": position} if opened else {"helpful": helpful})
    check(client, "POST", "/v1/feedback/opened" if opened else "/v1/feedback", content=raw_json(body),
          headers={"Content-Type": "application/json"})


@PROPERTY
@given(q=st.one_of(URL_TEXT, st.sampled_from(["", "pass", "Passwort verg", "где мо", "x" * 201])),
       lang=field(["de", "ru", "en", ""]), country=field(["DE", "kz", "XX", ""]),
       category=field(["account", "orders", "nope"]), limit=field([1, 6, 10, 0, 11, -1]),
       extra=st.dictionaries(URL_TEXT, URL_TEXT, max_size=2))
def test_suggest(client, q, lang, country, category, limit, extra):
    params = {"q": q, "lang": lang, "country": country, "category": category, "limit": limit, **extra}
    check(client, "GET", "/v1/suggest", params={k: url_safe(str(v)) for k, v in params.items() if k})


@PROPERTY
@given(body=st.one_of(
    st.fixed_dictionaries({"q": st.one_of(TEXT, st.just("x" * 201))}, optional={
        "lang": field(["de", "ru", "en"]), "country": field(["DE", "kz", "XX"]),
        "category": field(["account", "orders", "nope"]), "limit": field([1, 6, 10, 0, 11])}),
    JSON_ANY))
def test_suggest_post(client, body):
    """As the widget asks while a member types."""
    check(client, "POST", "/v1/suggest", content=raw_json(body), headers={"Content-Type": "application/json"})


@PROPERTY
@given(article=URL_TEXT, lang=st.one_of(st.none(), URL_TEXT))
def test_articles(client, article, lang):
    params = {} if lang is None else {"lang": lang}
    check(client, "GET", "/v1/articles/" + quote(article, safe=""), params=params)


PATHS = ["/", "/agent", "/insights", "/widget.js", "/favicon.svg", "/favicon.ico", "/healthz", "/readyz",
         "/metrics", "/docs", "/openapi.json", "/v1/meta", "/v1/ask", "/v1/feedback", "/v1/feedback/opened",
         "/v1/phrasing", "/v1/insights", "/v1/insights/gaps", "/v1/articles/pw", "/v1/suggest"]


@PROPERTY
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
       path=st.one_of(st.sampled_from(PATHS), URL_TEXT.map(lambda t: "/" + quote(t))),
       query=st.dictionaries(URL_TEXT, URL_TEXT, max_size=3), body=st.one_of(st.binary(max_size=200),
                                                                             JSON_ANY.map(raw_json)),
       content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]),
       authorization=st.sampled_from(["", f"Bearer {TOKEN}", "Bearer x", "Basic Zm9vOmJhcg=="]))
def test_any_method_path_and_body(client, method, path, query, body, content_type, authorization):
    headers = {k: v for k, v in {"Content-Type": content_type, "Authorization": authorization}.items() if v}
    check(client, method, path, params=query, content=body if method not in ("GET", "HEAD") else None,
          headers=headers)
