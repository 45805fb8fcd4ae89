"""Issue 20, findings 1, 6, 11 and 12 through `qa deploy` (Debian's nginx in front of
real replicas with a second stage): questions full of personal data sent every way a
client can (GET ?q=, an encoded key, POST as the widget does, final questions with
rerank=true, /v1/suggest as the widget types, in the path, in the Referer, fast enough
to hit limit_req, and while a replica is dead so nginx logs upstream errors), then
every file under the run folder (nginx's access and error logs, the replicas' logs),
the data folder (the event store) and the index folder is searched for each raw
value. Also: who can reach /metrics, /docs and /openapi.json, and token guessing
against /insights."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from urllib.parse import quote

import httpx
import pytest

from qa.errors import StartupError
from qa.ops.deploy import find_nginx, ops_allow_rules, render_nginx

from .test_deploy import Deployment, ingest_into, write_corpus
from .test_events_api import TOKEN

pytestmark = pytest.mark.skipif(find_nginx() is None, reason="nginx is not installed (.ci/run installs it)")

# Each raw value must appear nowhere on disk; the questions carry them.
SECRETS = ["48151699", "anna.petrova", "1712345678", "171 2345678", "DE89370400440532013000", "3704 0044 0532",
           "48151700", "4815\u200b1700", "48151701", "41111111", "4111 1111 1111", "ivan.sidorov", "9161234567"]
QUESTIONS = [
    "Mitgliedsnummer 48151699 anna.petrova@example.com Passwort vergessen",
    "Rückruf bitte unter +49 171 2345678, IBAN DE89 3704 0044 0532 0130 00",
    "мой ID 4815\u200b1700 не могу войти, почта ivan.sidorov@mail.ru",
    "ID48151701 Karte 4111 1111 1111 1111 abgelehnt",
    "позвоните 8 916 123-45-67 где мой заказ",
]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, encoder, tiny_model):
    root = tmp_path_factory.mktemp("pii")
    index_dir, data_dir, run_dir = root / "index", root / "data", root / "run"
    ingest_into(index_dir, write_corpus(root / "corpus"), encoder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HELPDESK_QA_RERANKER", str(tiny_model[0]))
        mp.setenv("HELPDESK_QA_DATA_DIR", str(data_dir))
        mp.setenv("HELPDESK_QA_ADMIN_TOKEN", TOKEN)
        mp.setenv("HELPDESK_QA_OPS_NETWORKS", "10.9.8.0/24")  # not loopback: the tests' requests are outsiders
        d = Deployment(run_dir, index_dir, replicas=2, rate=4, burst=4)
    yield d, index_dir, data_dir, run_dir
    if d.proc.poll() is None:
        d.stop()


def _send_everything(url: str) -> None:
    with httpx.Client(base_url=url, timeout=15) as c:
        for q in QUESTIONS:  # at the allowed pace: these reach the replicas
            assert c.get("/v1/ask", params={"q": q}).status_code == 200
            time.sleep(0.3)
            assert c.post("/v1/ask", json={"question": q, "source": "widget", "session": "ab" * 8}).status_code == 200
            time.sleep(0.3)
            final = c.post("/v1/ask", json={"question": q, "source": "widget", "session": "ab" * 8, "rerank": True})
            assert final.status_code == 200 and final.json()["reranked"] is True  # through the second stage
            time.sleep(0.3)
            typing = c.post("/v1/suggest", json={"q": q, "lang": "de", "limit": 3})  # as the widget asks
            assert typing.status_code == 200
            time.sleep(0.3)
            c.get("/v1/ask?%71=" + quote(q))  # finding 12: an encoded key
            time.sleep(0.3)
            c.post("/v1/phrasing", json={"question": q, "article_id": "pw"})
            time.sleep(0.3)
            c.get("/v1/articles/" + quote(q))
            c.get("/" + quote(q), headers={"Referer": "https://portal.example/?q=" + quote(q)})
            time.sleep(0.3)
        for _ in range(3):  # too fast: limit_req answers 429 and writes error lines
            for q in QUESTIONS:
                c.get("/v1/ask", params={"q": q})
                c.get("/v1/" + quote(q))  # the question in a path under /v1/
                c.get("/v1/suggest", params={"q": q})  # as an API user may


def _send_while_a_replica_is_dead(d) -> None:
    """SIGKILL one replica: nginx's first try on it fails, and its error line quotes
    the request, the upstream URL and the referrer (the supervisor restarts it)."""
    os.kill(d.replica_pid(d.ports[1]), signal.SIGKILL)
    with httpx.Client(base_url=d.url, timeout=15) as c:
        for q in QUESTIONS * 2:
            c.get("/" + quote(q), headers={"Referer": "https://portal.example/konto/" + quote(q)})
            time.sleep(0.1)


def test_no_raw_question_anywhere_on_disk(deployed):
    d, index_dir, data_dir, run_dir = deployed
    _send_everything(d.url)
    time.sleep(3)  # the writers flush (typing sessions settle after 2 s)
    _send_while_a_replica_is_dead(d)
    d.stop()  # every log closed, every queue flushed
    error_log = (run_dir / "logs" / "error.log").read_text()
    access_log = (run_dir / "logs" / "access.log").read_text()
    assert "limiting requests" in error_log  # the limit_req lines that used to carry the question
    # the dead replica's lines ("connect() failed", or "recv() failed" on a kept-alive connection)
    assert 'upstream: "http://' in error_log and "referrer: " in error_log
    assert '"GET /v1/ask"' in access_log and '"POST /v1/ask"' in access_log and "[other]" in access_log
    assert '"POST /v1/suggest"' in access_log and '"GET /v1/suggest"' in access_log
    with sqlite3.connect(data_dir / "events.sqlite3") as conn:
        texts = [t for (t,) in conn.execute("SELECT text FROM queries")]
    assert len(texts) >= len(QUESTIONS) and any("[member-id]" in t for t in texts), texts
    files = [p for folder in (run_dir, data_dir, index_dir) for p in folder.rglob("*") if p.is_file()]
    assert len(files) > 10
    found = []
    for path in files:
        data = path.read_bytes()
        for secret in SECRETS:
            for form in {secret, quote(secret), secret.replace(" ", "+"), secret.replace(" ", "%20")}:
                if form.encode() in data:
                    found.append(f"{path}: {form}")
    assert not found, found


# -- findings 6 and 11: who can reach what ----------------------------------------------------

def test_ops_endpoints_only_from_the_operators_networks_and_insights_limited(tmp_path, encoder):
    root = tmp_path
    ingest_into(root / "index", write_corpus(root / "corpus"), encoder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HELPDESK_QA_ADMIN_TOKEN", TOKEN)
        mp.setenv("HELPDESK_QA_DATA_DIR", str(root / "data"))
        mp.setenv("HELPDESK_QA_OPS_NETWORKS", "10.9.8.0/24")
        d = Deployment(root / "run", root / "index", replicas=1)
    try:
        with httpx.Client(base_url=d.url, timeout=15) as c:
            for path in ("/metrics", "/docs", "/openapi.json", "/docs/oauth2-redirect"):
                assert c.get(path).status_code == 403, path
            assert c.get("/readyz").status_code == 200 and c.get("/healthz").status_code == 200
            page = c.get("/insights")
            assert page.status_code == 401
            assert "default-src 'self'" in page.headers["content-security-policy"]
            assert page.headers["x-frame-options"] == "DENY"
            # finding 6: 135 wrong tokens in a few seconds against the page, as the review sent them
            started = time.time()
            answers = [c.get("/insights", headers={"Authorization": f"Bearer guess-{i}"}) for i in range(135)]
            assert time.time() - started < 30
            statuses = [r.status_code for r in answers]
            assert 200 not in statuses and statuses.count(429) >= 110, statuses
            # most of them refused by nginx's limit_req (its JSON), not only by the replica's count
            by_nginx = [r for r in answers if r.status_code == 429 and "retry after 1 second" in r.text]
            assert len(by_nginx) >= 100 and by_nginx[0].headers["retry-after"] == "1", statuses
            api = c.get("/v1/insights", headers={"Authorization": "Bearer guess"})
            assert api.status_code == 429, api.text  # the same address, the API path: refused too
            assert c.get("/v1/ask", params={"q": "Passwort"}).status_code == 200  # members are not affected
    finally:
        d.stop()


def test_ops_networks_default_to_loopback(monkeypatch):
    monkeypatch.delenv("HELPDESK_QA_OPS_NETWORKS", raising=False)
    assert ops_allow_rules().split() == ["allow", "127.0.0.1;", "allow", "::1;", "deny", "all;"]
    assert "allow 192.168.0.0/16;" in ops_allow_rules("192.168.0.0/16, 10.0.0.1")
    with pytest.raises(StartupError, match="not an address"):
        ops_allow_rules("127.0.0.1; include /etc/passwd")
    text = render_nginx(8080, [8101])
    assert "$request " not in text and '"$request"' not in text  # no raw request line in any log format
    assert "error_log stderr" in text and "allow 127.0.0.1;" in text


# -- nginx's error lines: what a member typed can be in the path, the upstream URL, the referrer --

ERROR_LINES = [
    # a limit_req line for a path under /v1/ that carries the question
    ('2026/12/03 07:00:00 [error] 7#7: *1 limiting requests, excess: 4.5 by zone "qa_api", client: 10.0.0.2, '
     'server: _, request: "GET /v1/Mitgliedsnummer%2048151699 HTTP/1.1", host: "x"', 'request: "GET [other]"'),
    # a replica that died: the upstream URL repeats the path, the referrer is a portal page's address
    ('2026/12/03 07:00:00 [error] 7#7: *9 connect() failed (111: Connection refused) while connecting to upstream, '
     'client: 10.0.0.2, server: _, request: "GET /anna.petrova@example.com HTTP/1.1", '
     'upstream: "http://127.0.0.1:8101/anna.petrova@example.com", host: "x", '
     'referrer: "https://portal.example/konto/48151699/?q=x"', 'upstream: "http://127.0.0.1:8101 [other]"'),
    ('2026/12/03 07:00:00 [warn] 7#7: *3 an upstream response is buffered to a temporary file, client: 10.0.0.2, '
     'server: _, request: "POST /v1//%61sk?q=48151699 HTTP/1.1", upstream: "http://qa-replica:8000/v1//%61sk?q=48151699"',
     'upstream: "http://qa-replica:8000/v1/ask"'),
    ('2026/12/03 07:00:00 [error] 7#7: *4 upstream timed out, client: 10.0.0.2, server: _, '
     'request: "GET /v1/articles/48151699 HTTP/1.1", upstream: "http://127.0.0.1:8102/v1/articles/48151699"',
     'request: "GET /v1/articles/{id}"'),
]


@pytest.mark.parametrize("line,kept", ERROR_LINES)
def test_error_lines_keep_method_and_route_only(line, kept):
    from qa.ops.deploy import scrub_error_line

    out = scrub_error_line(line)
    assert kept in out, out
    assert not any(raw in out for raw in ("48151699", "anna.petrova", "Mitgliedsnummer", "konto")), out


def test_the_error_log_and_the_access_log_name_the_same_routes_and_every_route_of_the_app():
    """The scrubber's list of routes (qa/ops/deploy.py) is the access log's map in the
    template, and every path the app serves is in it: a new endpoint is logged by name,
    not as [other], and nothing else is logged by name."""
    import re

    from starlette.routing import Mount

    from qa.api import create_app
    from qa.config import Settings
    from qa.ops.deploy import ROUTE_PREFIXES, ROUTES, TEMPLATE, route

    block = TEMPLATE.read_text().split("map $uri $qa_route {", 1)[1].split("\n    }", 1)[0]
    mapped = {k: v.strip('"') for k, v in re.findall(r"^\s+(\S+)\s+(\S+);", block, re.M)}
    assert mapped.pop("default") == "[other]"
    assert {k: v for k, v in mapped.items() if not k.startswith("~")} == {r: r for r in ROUTES}
    assert {k.removeprefix("~^"): v for k, v in mapped.items() if k.startswith("~")} == ROUTE_PREFIXES
    def paths(routes):  # included routers (FastAPI 0.165) hold their own routes
        for r in routes:
            if hasattr(r, "original_router"):
                yield from paths(r.original_router.routes)
            else:
                yield r.path + "/swagger-ui.css" if isinstance(r, Mount) else r.path.replace("{article_id}", "x")

    served = list(paths(create_app(Settings()).routes))
    assert "/v1/suggest" in served and len(served) >= 20
    assert [p for p in served if route(p) == "[other]"] == []
