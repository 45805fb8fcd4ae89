"""The event store on SQLite and on a real PostgreSQL server, and the recorder in front
of it: migrations, idempotent feedback, retention, merging of typed prefixes, and a
slow or failing store that never blocks the caller."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid

import pytest

from qa.events.connect import open_store
from qa.events.recorder import Recorder
from qa.events.sessions import session_key
from qa.events.sqlite import SQLiteStore
from qa.events.store import (
    SCHEMA_VERSION,
    FeedbackEvent,
    PostgresStore,
    QueryEvent,
    StoreError,
)

from .conftest import free_port
from .pg import postgres_server


@pytest.fixture(scope="module")
def postgres_url():
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = SQLiteStore(tmp_path / "events.sqlite3")
    else:
        import psycopg

        base = request.getfixturevalue("postgres_url")
        name = "t" + uuid.uuid4().hex[:12]
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        s = PostgresStore(base.replace("/postgres?", f"/{name}?"))
    yield s
    s.close()


def query(text="wo ist mein Paket", ts=None, answered=True, lang="de", country="DE", qid=None) -> QueryEvent:
    return QueryEvent(
        qid or uuid.uuid4().hex,
        ts or time.time(),
        text,
        lang,
        country,
        "",
        answered,
        "ord-tracking" if answered else None,
        "anchor" if answered else None,
        0.61,
        4.2,
        "2026-11-27T10:00:00+00:00",
    )


def vote(qid, helpful, article="ord-tracking", anchor="anchor", ts=None) -> FeedbackEvent:
    return FeedbackEvent(qid, "helpful", article, anchor, None, helpful, ts or time.time())


def opened(qid, position=1, article="ord-tracking", anchor="anchor") -> FeedbackEvent:
    return FeedbackEvent(qid, "opened", article, anchor, position, None, time.time())


def wait_for(condition, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_schema_is_created_on_first_use_and_migrated_once(store):
    q = query()
    store.write([q], [])
    assert store.schema_version() == SCHEMA_VERSION
    assert store.has_query(q.id) and not store.has_query(uuid.uuid4().hex)
    # a second store object on the same database (another worker or replica) finds it migrated
    other = SQLiteStore(store.path) if isinstance(store, SQLiteStore) else PostgresStore(store.url)
    assert other.has_query(q.id) and other.schema_version() == SCHEMA_VERSION
    other.close()


def test_a_question_is_stored_with_its_fields(store):
    q = query("где мой заказ", lang="ru", country="KZ", answered=False)
    store.write([q], [])
    row = store.query(
        "SELECT text, norm, lang, country, answered, top_article, latency_ms, day FROM queries WHERE id = ?", (q.id,)
    )
    assert row == [("где мой заказ", "где мой заказ", "ru", "KZ", 0, None, 4.2, int(q.ts // 86400))]


def test_feedback_retries_are_stored_once_and_a_changed_vote_replaces_the_old(store):
    q = query()
    store.write([q], [opened(q.id, 2), vote(q.id, True)])
    store.write([q], [opened(q.id, 2), vote(q.id, True)])  # the widget retried everything
    store.write([], [vote(q.id, False)])  # the member changed their mind
    rows = store.query("SELECT kind, position, helpful FROM feedback WHERE query_id = ? ORDER BY kind", (q.id,))
    assert rows == [("helpful", None, 0), ("opened", 2, None)]
    assert store.query("SELECT COUNT(*) FROM queries WHERE id = ?", (q.id,)) == [(1,)]


def test_retention_deletes_old_questions_and_their_feedback(store):
    old, new = query(ts=time.time() - 91 * 86400), query()
    store.write([old, new], [vote(old.id, False, ts=time.time() - 1), vote(new.id, True)])
    store.delete_before(time.time() - 90 * 86400)
    assert not store.has_query(old.id) and store.has_query(new.id)
    assert store.query("SELECT query_id FROM feedback") == [(new.id,)]


def test_the_recorder_applies_retention_by_itself(store):
    old, new = query(ts=time.time() - 10 * 86400), query(ts=time.time() - 2 * 86400)
    store.write([old, new], [])
    recorder = Recorder(store, retention_days=7)
    recorder.start()
    try:
        assert wait_for(lambda: not store.has_query(old.id))
        assert store.has_query(new.id)
    finally:
        recorder.stop()


def test_the_recorder_redacts_before_storing_and_merges_typed_prefixes(store, monkeypatch):
    monkeypatch.setattr("qa.events.recorder.SETTLE", 0.3)
    recorder = Recorder(store)
    recorder.start()
    try:
        session = uuid.uuid4().hex[:16]
        typed = ["wo", "wo ist", "wo ist mein Pak", "wo ist mein Paket 12345678"]
        events = [query(t) for t in typed]
        for e in events:
            recorder.record_query(e, session=session)
        other = query("Passwort vergessen, Tel. 0171 1234567")
        recorder.record_query(other)  # no session: stored as it comes
        assert recorder.issued(events[0].id)  # issued here: known before it is written
        assert wait_for(lambda: store.has_query(events[-1].id))
        texts = sorted(t for (t,) in store.query("SELECT text FROM queries"))
        assert texts == ["Passwort vergessen, Tel. [phone]", "wo ist mein Paket [member-id]"]
        # a new question in the same session is a new question; feedback pins the one it is about
        first, second = query("Versandkosten"), query("Passwort ändern")
        recorder.record_query(first, session=session)
        recorder.record_feedback(opened(first.id))
        recorder.record_query(second, session=session)
        assert wait_for(lambda: store.has_query(first.id) and store.has_query(second.id))
    finally:
        recorder.stop()



def _shown(e: QueryEvent) -> QueryEvent:
    e.shown = (("ord-tracking", "anchor"),)
    return e


def test_a_result_opened_before_the_final_question_counts_through_another_process(store, monkeypatch):
    """The widget asks as the member types, and once more with the same words when typing
    stops. A member who opens a result of the first answer before the second arrives sends
    feedback on the first, and behind nginx it may reach another process. That process
    checks it against the store. So the first answer is stored as well, superseded by its
    repeat; before, its process dropped it and the feedback was rejected as unknown."""
    monkeypatch.setattr("qa.events.recorder.SETTLE", 0.3)
    monkeypatch.setattr("qa.events.recorder.VERIFY_GRACE", 1.5)
    other_store = SQLiteStore(store.path) if isinstance(store, SQLiteStore) else PostgresStore(store.url)
    here, elsewhere = Recorder(store), Recorder(other_store)
    here.start()
    elsewhere.start()
    try:
        session = uuid.uuid4().hex[:16]
        typed, final = _shown(query("wo ist mein Paket")), _shown(query("wo ist  mein paket", ts=time.time() + 0.4))
        here.record_query(typed, session=session)
        here.record_query(final, session=session)
        late_click = opened(typed.id)
        late_click.verify = True  # not issued by `elsewhere`: its writer checks the store
        elsewhere.record_feedback(late_click)
        assert wait_for(lambda: store.query("SELECT COUNT(*) FROM feedback WHERE query_id = ?", (typed.id,))
                        == [(1,)], 5)
        assert wait_for(lambda: dict(store.query("SELECT id, superseded FROM queries"))
                        == {typed.id: 1, final.id: 0})
        assert elsewhere.rejected == 0
    finally:
        here.stop()
        elsewhere.stop()


def test_feedback_on_a_prefix_typing_went_on_from_stores_that_prefix(store, monkeypatch):
    """A prefix is dropped when typing goes on from it, but a result of it opened a moment
    later stores it after all (superseded), so its feedback belongs to a stored question."""
    monkeypatch.setattr("qa.events.recorder.SETTLE", 0.3)
    recorder = Recorder(store)
    recorder.start()
    try:
        session = uuid.uuid4().hex[:16]
        prefix, longer = _shown(query("wo ist")), _shown(query("wo ist mein Paket", ts=time.time() + 1))
        recorder.record_query(prefix, session=session)
        recorder.record_query(longer, session=session)
        assert wait_for(lambda: store.has_query(longer.id))
        assert not store.has_query(prefix.id)  # dropped: typing went on
        recorder.record_feedback(opened(prefix.id))
        assert wait_for(lambda: store.has_query(prefix.id))
        assert dict(store.query("SELECT id, superseded FROM queries")) == {prefix.id: 1, longer.id: 0}
        assert wait_for(lambda: store.query("SELECT kind FROM feedback WHERE query_id = ?", (prefix.id,))
                        == [("opened",)])
    finally:
        recorder.stop()

def test_a_slow_store_never_blocks_recording_and_drops_are_counted(tmp_path):
    store = SQLiteStore(tmp_path / "events.sqlite3")
    store.write([query()], [])
    blocker = sqlite3.connect(tmp_path / "events.sqlite3", timeout=1)
    blocker.execute("BEGIN EXCLUSIVE")  # every write waits for busy_timeout: a slow store
    recorder = Recorder(store, queue_size=20)
    recorder.start()
    try:
        started = time.perf_counter()
        events = [query(f"Frage {i}") for i in range(300)]
        for e in events:
            recorder.record_query(e)
        assert time.perf_counter() - started < 0.5  # 300 events, never waiting for the store
        assert recorder.dropped >= 250
        blocker.rollback()
        blocker.close()
        later = query("nach dem Stau")
        assert wait_for(lambda: recorder.queue.empty(), 30)
        recorder.record_query(later)
        assert wait_for(lambda: store.has_query(later.id), 30)
    finally:
        recorder.stop()


def test_a_store_that_is_down_is_counted_and_comes_back(tmp_path):
    port = free_port()  # nothing listens here
    store = open_store(f"postgresql://postgres@127.0.0.1:{port}/none", tmp_path)
    assert isinstance(store, PostgresStore)
    recorder = Recorder(store, queue_size=100)
    recorder.start()
    try:
        for i in range(5):
            recorder.record_query(query(f"q{i}"))
        assert wait_for(lambda: recorder.dropped >= 5, 10)
        assert recorder.last_error and "connect" in recorder.last_error.lower()
        with pytest.raises(StoreError):
            store.has_query(uuid.uuid4().hex)
    finally:
        stopper = threading.Thread(target=recorder.stop)
        stopper.start()
        stopper.join(10)
        assert not stopper.is_alive()


def test_unsupported_database_url_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="unsupported URL"):
        open_store("mysql://x", tmp_path)
    assert isinstance(open_store(None, tmp_path), SQLiteStore)


def in_session(text: str, session: str, ts: float) -> QueryEvent:
    e = query(text, ts=ts)
    e.session = session
    return e


def test_a_question_typed_through_several_processes_is_counted_once(store):
    """Behind nginx the requests of one search box reach different processes, and each
    stores its part of what was typed, in any order. The store marks each question the
    session's next one extends, shortens or repeats, so insights count it once; the
    superseded ones stay, so feedback on them still counts."""
    from qa.events.insights import overview

    other_process = SQLiteStore(store.path) if isinstance(store, SQLiteStore) else PostgresStore(store.url)
    session, t = uuid.uuid4().hex[:16], time.time() - 60
    wo, paket = in_session("wo", session, t), in_session("wo ist mein Paket", session, t + 3)
    late = in_session("wo ist", session, t + 1)  # held longer by its process: written last
    backspaced = in_session("wo ist mein Paket ", session, t + 4)  # typed again after the final answer
    new_question = in_session("Passwort ändern", session, t + 9)
    stranger = in_session("wo", uuid.uuid4().hex[:16], t + 2)  # another member's search box
    store.write([wo], [])
    other_process.write([paket, stranger], [])
    other_process.write([backspaced, new_question], [])
    store.write([late], [opened(late.id)])
    store.write([late], [])  # a retried batch: not its own successor
    flags = dict(store.query("SELECT id, superseded FROM queries"))
    assert flags == {wo.id: 1, late.id: 1, paket.id: 1, backspaced.id: 0, new_question.id: 0, stranger.id: 0}
    o = overview(store, 3600)
    assert o["questions"] == 3, o
    assert sorted(q["question"].strip() for q in o["top_questions"]) == ["Passwort ändern", "wo", "wo ist mein Paket"]
    assert o["opened_positions"] == [{"position": 1, "count": 1}]  # feedback on "wo ist" counts
    # what is kept of the session: a hash, never the id the widget sent
    stored = {s for (s,) in store.query("SELECT session FROM queries")}
    assert session not in stored and len(stored) == 2 and all(len(s) == 16 for s in stored)
    other_process.close()


def test_a_session_of_digits_is_not_kept():
    """A session that could be a phone, member or card number is not kept, not even
    hashed: its questions are stored, each on its own."""
    assert session_key("4930123456") is None and session_key("1234567812345678") is None
    assert session_key(None) is None
    assert session_key("5e55104aa2b3c4d5") == session_key("5e55104aa2b3c4d5") != session_key("5e55104aa2b3c4d6")


def test_sessions_are_forgotten_after_an_hour(store):
    """The hash links the questions of one search box for an hour, then never again;
    the recorder does it even when questions are kept for ever (retention off)."""
    old, new = in_session("Lieferung", "aa" * 8, time.time() - 2 * 3600), in_session("Paket", "bb" * 8, time.time())
    store.write([old, new], [])
    recorder = Recorder(store, retention_days=0)
    recorder.start()
    try:
        assert wait_for(lambda: store.query("SELECT session FROM queries WHERE id = ?", (old.id,)) == [(None,)])
        assert store.query("SELECT session FROM queries WHERE id = ?", (new.id,)) != [(None,)]
        assert store.has_query(old.id)
    finally:
        recorder.stop()
