"""Issue 20's findings through a real server: feedback bound to what was shown (7),
source tags (8), input that gave 5xx or slow answers (9), an unreadable CURRENT and
pruning by build time (10), the SQLite file deleted while serving (4)."""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from pathlib import Path

import httpx
import pytest

from qa.artifact import CURRENT, load_newest_intact, save_index
from qa.corpus import load_corpus
from qa.events.recorder import VERIFY_GRACE
from qa.index import build_index

from .conftest import Server
from .test_deploy import get_json, ingest_into, write_corpus
from .test_events_api import TOKEN, _metric, admin, ask, insights, wait_for


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shared-data")


@pytest.fixture(scope="module")
def hard_server(sample_index_dir, data_dir):
    s = Server(sample_index_dir, {"HELPDESK_QA_ADMIN_TOKEN": TOKEN, "HELPDESK_QA_DATA_DIR": str(data_dir)})
    yield s
    s.stop()


def post(url: str, path: str, body: dict) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=30)


def _stored_feedback(data_dir: Path, query_id: str) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(data_dir / "events.sqlite3") as conn:
        return conn.execute("SELECT kind, article_id, anchor, position, helpful FROM feedback WHERE query_id = ?"
                            " ORDER BY kind, article_id", (query_id,)).fetchall()


def _stored_ids(data_dir: Path) -> set[str]:
    import sqlite3

    with sqlite3.connect(data_dir / "events.sqlite3") as conn:
        return {i for (i,) in conn.execute("SELECT id FROM queries")}


# -- finding 7 ------------------------------------------------------------------------------

def test_feedback_only_for_shown_sections_at_their_real_position(hard_server, data_dir, searcher):
    url = hard_server.url
    body = ask(url, "wo ist mein Paket", limit=5)
    shown = [(r["article_id"], r["anchor"]) for r in body["results"]]
    qid = body["query_id"]
    others = [(s.article_id, s.anchor) for s in searcher.index.sections if (s.article_id, s.anchor) not in shown]
    # the review's attack: "not helpful" on 38 sections the query never showed
    refused = [post(url, "/v1/feedback", {"query_id": qid, "article_id": a, "anchor": n, "helpful": False})
               for a, n in others[:38]]
    assert {r.status_code for r in refused} == {422}
    assert "did not show" in refused[0].json()["detail"]
    # opened at position 20 of a 5-result answer, and a shown section at the wrong position
    article, anchor = shown[1]
    far = post(url, "/v1/feedback/opened", {"query_id": qid, "article_id": article, "anchor": anchor, "position": 20})
    wrong = post(url, "/v1/feedback/opened", {"query_id": qid, "article_id": article, "anchor": anchor, "position": 1})
    assert far.status_code == 422 and wrong.status_code == 422 and "position" in wrong.json()["detail"]
    right = post(url, "/v1/feedback/opened", {"query_id": qid, "article_id": article, "anchor": anchor, "position": 2})
    vote = post(url, "/v1/feedback", {"query_id": qid, "article_id": article, "anchor": anchor, "helpful": False})
    assert right.json()["status"] == "recorded" and vote.json()["status"] == "recorded"
    assert wait_for(lambda: len(_stored_feedback(data_dir, qid)) == 2)
    assert _stored_feedback(data_dir, qid) == [("helpful", article, anchor, None, 0),
                                               ("opened", article, anchor, 2, None)]


def test_a_vote_flipped_ten_times_counts_once(hard_server, data_dir):
    url = hard_server.url
    body = ask(url, "Passwort vergessen")
    hit = body["results"][0]
    target = {"query_id": body["query_id"], "article_id": hit["article_id"], "anchor": hit["anchor"]}
    before = httpx.get(url + "/metrics").text
    for i in range(10):
        assert post(url, "/v1/feedback", {**target, "helpful": i % 2 == 0}).status_code == 202
        time.sleep(0.15)  # each flip reaches the writer on its own
    assert wait_for(lambda: _stored_feedback(data_dir, body["query_id"]) == [
        ("helpful", hit["article_id"], hit["anchor"], None, 0)])
    after = httpx.get(url + "/metrics").text
    assert _metric(after, "qa_feedback_total", kind="helpful") - _metric(before, "qa_feedback_total",
                                                                         kind="helpful") == 1
    assert _metric(after, "qa_feedback_changed_total") - _metric(before, "qa_feedback_changed_total") == 9


def test_forged_ids_are_answered_at_once_and_never_stored(hard_server, data_dir):
    """20 fresh ids voting one article "not helpful": each answered "pending" at once,
    none stored, each counted as rejected."""
    url = hard_server.url
    before = _metric(httpx.get(url + "/metrics").text, "qa_feedback_rejected_total", reason="unknown_query")
    forged = [uuid.uuid4().hex for _ in range(20)]
    for qid in forged:
        started = time.perf_counter()
        r = post(url, "/v1/feedback", {"query_id": qid, "article_id": "ord-tracking", "anchor": "", "helpful": False})
        assert r.status_code == 202 and r.json()["status"] == "pending"
        assert time.perf_counter() - started < 0.5
    assert wait_for(lambda: _metric(httpx.get(url + "/metrics").text, "qa_feedback_rejected_total",
                                    reason="unknown_query") - before >= 20, VERIFY_GRACE + 5)
    assert all(not _stored_feedback(data_dir, qid) for qid in forged)


def test_feedback_through_another_worker_is_checked_by_its_writer(hard_server, sample_index_dir, data_dir, searcher):
    """A second server on the same store (another replica): it did not issue the id, so it
    answers "pending"; its writer stores a shown section and rejects one that was not shown."""
    other = Server(sample_index_dir, {"HELPDESK_QA_DATA_DIR": str(data_dir)})
    try:
        body = ask(hard_server.url, "Lieferadresse ändern", limit=3)
        qid, (article, anchor) = body["query_id"], (body["results"][0]["article_id"], body["results"][0]["anchor"])
        shown = {(r["article_id"], r["anchor"]) for r in body["results"]}
        stranger = next((s.article_id, s.anchor) for s in searcher.index.sections
                        if (s.article_id, s.anchor) not in shown)
        good = post(other.url, "/v1/feedback", {"query_id": qid, "article_id": article, "anchor": anchor,
                                                "helpful": True})
        bad = post(other.url, "/v1/feedback", {"query_id": qid, "article_id": stranger[0], "anchor": stranger[1],
                                               "helpful": False})
        assert good.json()["status"] == "pending" and bad.json()["status"] == "pending"
        assert wait_for(lambda: _stored_feedback(data_dir, qid), VERIFY_GRACE + 5)
        time.sleep(1)
        assert _stored_feedback(data_dir, qid) == [("helpful", article, anchor, None, 1)]
        assert _metric(httpx.get(other.url + "/metrics").text, "qa_feedback_rejected_total", reason="not_shown") >= 1
    finally:
        other.stop()



def test_a_result_opened_before_the_final_answer_counts_through_another_replica(hard_server, sample_index_dir,
                                                                                data_dir):
    """The widget's as-you-type answer, a result of it opened, then the final question with
    the same words, from one search box: the feedback reaches another replica, whose
    writer finds the first answer in the store. Insights still count one question."""
    other = Server(sample_index_dir, {"HELPDESK_QA_DATA_DIR": str(data_dir)})
    try:
        session, text = uuid.uuid4().hex[:16], "Rücksendung Versandkosten erstattet"
        asked = [post(hard_server.url, "/v1/ask", {"question": text, "session": session, "source": "widget",
                                                   "rerank": final}).json() for final in (False, True)]
        first = asked[0]
        top = first["results"][0]
        click = post(other.url, "/v1/feedback/opened", {"query_id": first["query_id"], "article_id": top["article_id"],
                                                        "anchor": top["anchor"], "position": 1})
        assert click.json()["status"] == "pending"
        assert wait_for(lambda: _stored_feedback(data_dir, first["query_id"]), VERIFY_GRACE + 5)
        assert _stored_feedback(data_dir, first["query_id"]) == [("opened", top["article_id"], top["anchor"], 1, None)]
        ids = {a["query_id"] for a in asked}
        assert wait_for(lambda: ids <= _stored_ids(data_dir), 10)  # the final one is written once it settles
        o = insights(hard_server.url, since="1d")
        assert [q["count"] for q in o["top_questions"] if q["question"] == text] == [1], o["top_questions"]
    finally:
        other.stop()

# -- finding 8 ------------------------------------------------------------------------------

def test_agent_console_and_docs_questions_are_left_out_of_insights_and_gaps(hard_server):
    url = hard_server.url
    agent_q, docs_q, member_q = ("Kunde fragt wo sein Paket bleibt", "Zebrafutter Lieferung Antarktis probe",
                                 "Pinguinfutter Lieferung Antarktis bitte")
    assert post(url, "/v1/ask", {"question": agent_q, "source": "agent"}).status_code == 200
    httpx.get(url + "/v1/ask", params={"q": docs_q}, headers={"Referer": url + "/docs"})
    httpx.get(url + "/v1/ask", params={"q": "Kunde fragt nach Rechnung"}, headers={"Referer": url + "/agent"})
    assert post(url, "/v1/ask", {"question": member_q, "source": "widget"}).status_code == 200

    def texts(**params):
        o = insights(url, since="1d", **params)
        return {q["question"] for q in o["top_questions"]} | {
            q["text"] for g in o["unanswered_groups"] for q in g["questions"]}

    assert wait_for(lambda: member_q in texts())
    members = texts()
    assert agent_q not in members and docs_q not in members and "Kunde fragt nach Rechnung" not in members
    everything = texts(source="all")
    assert {agent_q, docs_q, member_q, "Kunde fragt nach Rechnung"} <= everything
    assert agent_q in texts(source="agent") and member_q not in texts(source="agent")
    gaps = httpx.get(url + "/v1/insights/gaps", params={"since": "1d"}, headers=admin(), timeout=60).json()
    gap_texts = {q["text"] for g in gaps for q in g["questions"]}
    assert docs_q not in gap_texts and agent_q not in gap_texts
    bad = httpx.get(url + "/v1/insights", params={"source": "robots"}, headers=admin())
    assert bad.status_code == 422 and bad.json()["detail"].startswith("source")


# -- finding 9 ------------------------------------------------------------------------------

RAW_SURROGATE = b'{"question": "\\ud800 hi"}'


@pytest.mark.parametrize("path,body", [
    ("/v1/ask", RAW_SURROGATE),
    ("/v1/phrasing", b'{"question": "\\ud800 hi", "article_id": "ord-tracking"}'),
    ("/v1/ask", b'{"question": "hi", "category": "\\udfff"}'),
    ("/v1/feedback", b'{"query_id": "' + b"a" * 31 + b'\\ud800", "article_id": "x", "helpful": true}'),
    ("/v1/feedback/opened", b'{"query_id": "' + b"a" * 32 + b'", "article_id": "\\ud800", "position": 1}'),
])
def test_lone_surrogates_get_422(hard_server, path, body):
    r = httpx.post(hard_server.url + path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


@pytest.mark.parametrize("since", ["9" * 400, "1000000000000d", "99999999999999999999d", "700000d", "3654d",
                                   "nan", "1e400d", "-1d"])
def test_since_is_bounded_at_ten_years(hard_server, since):
    started = time.perf_counter()
    r = httpx.get(hard_server.url + "/v1/insights", params={"since": since}, headers=admin(), timeout=30)
    assert r.status_code == 422 and r.json()["detail"].startswith("since"), r.text
    assert time.perf_counter() - started < 1.0
    assert httpx.get(hard_server.url + "/v1/insights", params={"since": "3650d"}, headers=admin(),
                     timeout=30).status_code == 200


# -- finding 4, through the server --------------------------------------------------------------

def test_deleting_the_store_while_serving_is_reported_and_repaired(sample_index_dir, tmp_path):
    data = tmp_path / "data"
    server = Server(sample_index_dir, {"HELPDESK_QA_ADMIN_TOKEN": TOKEN, "HELPDESK_QA_DATA_DIR": str(data)})
    try:
        first = ask(server.url, "Passwort vergessen")
        assert wait_for(lambda: (data / "events.sqlite3").exists() and insights(server.url)["questions"] == 1)
        assert get_json(server.url + "/readyz")[1]["store"] == {"status": "ok"}
        (data / "events.sqlite3").unlink()
        later = ask(server.url, "где мой заказ")
        assert later["query_id"] != first["query_id"]
        ready = wait_for(lambda: (lambda r: r if r["store"]["status"] == "degraded" else None)(
            get_json(server.url + "/readyz")[1]))
        assert ready["status"] == "ready" and "deleted" in ready["store"]["reason"]
        o = wait_for(lambda: (lambda x: x if x["questions"] == 1 else None)(insights(server.url)))
        assert o["top_questions"][0]["question"] == "где мой заказ"  # in the new file, not the deleted one
        text = httpx.get(server.url + "/metrics").text
        assert _metric(text, "qa_event_store_incidents_total", kind="deleted") == 1
        assert _metric(text, "qa_event_store_degraded") == 1
    finally:
        server.stop()


# -- finding 10 -------------------------------------------------------------------------------

@pytest.mark.parametrize("pointer", [b"\xff\xfe", b"../../etc/passwd", b"build-19990101T000000-gone00", b""])
def test_an_unreadable_current_falls_back_while_running_and_on_restart(tmp_path, encoder, pointer):
    root = tmp_path / "index"
    old = ingest_into(root, write_corpus(tmp_path / "a"), encoder)
    new = ingest_into(root, write_corpus(tmp_path / "b", extra="zebra"), encoder)
    server = Server(root)
    try:
        assert get_json(server.url + "/readyz")[1]["build"] == new.name
        (root / CURRENT).write_bytes(pointer)
        ready = wait_for(lambda: (lambda r: r if r[1]["status"] == "degraded" else None)(
            get_json(server.url + "/readyz")))
        assert ready[0] == 200 and ready[1]["build"] == new.name  # the newest intact build, still served
        time.sleep(2.5)  # a few reload checks: one error logged, no traceback per check
        log = Path(server.log.name).read_text()
        assert "Traceback" not in log and log.count("still serving") == 1, log[-2000:]
    finally:
        server.stop()
    restarted = Server(root)  # a replica restarted on the same CURRENT: falls back, does not exit 3
    try:
        status, ready = get_json(restarted.url + "/readyz")
        assert status == 200 and ready["status"] == "degraded" and ready["build"] == new.name, ready
        assert httpx.get(restarted.url + "/v1/ask", params={"q": "how to feed a zebra"}).json()["results"][0][
            "article_id"] == "zebra"
    finally:
        restarted.stop()
    assert old.exists()


def test_a_build_refused_at_start_up_is_served_once_it_is_whole(tmp_path, encoder):
    """A replica that starts while its build is still being copied in (a Kubernetes init
    container, a slow volume) refuses it, and serves it once it is whole: same CURRENT,
    no restart."""
    root = tmp_path / "index"
    build = ingest_into(root, write_corpus(tmp_path / "a", extra="zebra"), encoder)
    whole = (build / "vectors.faiss").read_bytes()
    (build / "vectors.faiss").write_bytes(whole[: len(whole) // 2])
    server = Server(root)
    try:
        status, body = get_json(server.url + "/readyz")
        assert status == 503 and "hash mismatch" in body["detail"], body
        (build / "vectors.faiss").write_bytes(whole)
        ready = wait_for(lambda: (lambda r: r if r and r[0] == 200 else None)(get_json(server.url + "/readyz")))
        assert ready and ready[1]["status"] == "ready" and ready[1]["build"] == build.name, ready
        assert httpx.get(server.url + "/v1/ask", params={"q": "how to feed a zebra"}).json()["results"][0][
            "article_id"] == "zebra"
    finally:
        server.stop()


def test_prune_and_fallback_go_by_build_time_not_by_name(small_corpus, tmp_path, encoder):
    """A corrupt build whose name sorts last is neither kept by pruning nor chosen as the
    fallback; the newest intact build by its manifest's build time is."""
    root = tmp_path / "idx"
    built = build_index(load_corpus(small_corpus), encoder)
    good = save_index(built, root, keep=3)
    time.sleep(1.1)
    newer = save_index(build_index(load_corpus(small_corpus), encoder), root, keep=3)
    late_name = root / "build-99991231T235959-zzzzzz"
    shutil.copytree(newer, late_name)
    manifest = json.loads((late_name / "manifest.json").read_text())
    manifest["build_time"] = "2000-01-01T00:00:00+00:00"  # old by its manifest
    (late_name / "manifest.json").write_text(json.dumps(manifest))
    with open(late_name / "vectors.faiss", "r+b") as f:
        f.seek(64)
        f.write(b"corrupt!")
    (root / CURRENT).write_bytes(b"\xff\xfe")
    index, folder, refused = load_newest_intact(root, model=encoder.identity)
    assert folder == newer and refused and "UTF-8" in refused[0]
    (root / CURRENT).write_text(newer.name)
    time.sleep(1.1)
    third = save_index(build_index(load_corpus(small_corpus), encoder), root, keep=2)
    kept = sorted(p.name for p in root.glob("build-*"))
    assert kept == sorted([third.name, newer.name]), kept  # the corrupt late name is gone
    assert not good.exists() and re.fullmatch(r"build-\d{8}T\d{6}-[0-9a-f]{6}", third.name)


# -- finding 5 through the API, finding 6 at the replica, finding 12 in a real log ------------

def test_phrasing_with_a_glued_id_is_redacted_and_not_usable(hard_server, searcher):
    article = searcher.index.articles[0].id
    r = post(hard_server.url, "/v1/phrasing", {"question": "ID48151624 Passwort vergessen", "article_id": article})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["question"] == "ID[member-id] Passwort vergessen" and body["usable"] is False
    assert "48151624" not in r.text


def test_encoded_question_key_is_not_in_the_access_log(hard_server):
    httpx.get(hard_server.url + "/v1/ask?%71=Mitgliedsnummer%2048151698&lang=de")
    httpx.get(hard_server.url + "/v1/ask?Q=Mitgliedsnummer%2048151697")
    log = wait_for(lambda: (lambda t: t if "lang=de" in t else None)(Path(hard_server.log.name).read_text()))
    assert "48151698" not in log and "48151697" not in log
    assert "/v1/ask?q=[removed]&lang=de" in log


def test_a_replica_answers_429_after_ten_wrong_tokens(sample_index_dir, tmp_path):
    server = Server(sample_index_dir, {"HELPDESK_QA_ADMIN_TOKEN": TOKEN, "HELPDESK_QA_DATA_DIR": str(tmp_path)})
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            statuses = [c.get("/v1/insights", headers=admin(f"guess-{i}")).status_code for i in range(15)]
            assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}, statuses
            blocked = c.get("/v1/insights", headers=admin())  # even the right token, while blocked
            assert blocked.status_code == 429 and blocked.headers["retry-after"] == "60"
            assert c.get("/insights", headers=admin("guess")).status_code == 429
            assert c.get("/v1/ask", params={"q": "Passwort"}).status_code == 200
    finally:
        server.stop()
