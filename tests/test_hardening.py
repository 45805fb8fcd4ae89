"""Issue 20's findings on the event store, reproduced with the original input or fault:
a NUL byte on PostgreSQL (2), an I/O fault in SQLite's files (3), the SQLite file
deleted, replaced, emptied or overwritten while serving (4). Real SQLite files, a
real PostgreSQL 15, real processes."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from qa.events.recorder import Recorder
from qa.events.sqlite import SQLiteStore
from qa.events.store import FeedbackEvent, PostgresStore, safe_text

from .conftest import ROOT
from .pg import postgres_server
from .test_store import query, wait_for


@pytest.fixture(scope="module")
def postgres_url():
    with postgres_server() as url:
        yield url


def _pg_store(base: str) -> PostgresStore:
    import psycopg

    name = "t" + uuid.uuid4().hex[:12]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return PostgresStore(base.replace("/postgres?", f"/{name}?"))


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    s = SQLiteStore(tmp_path / "events.sqlite3") if request.param == "sqlite" else _pg_store(
        request.getfixturevalue("postgres_url"))
    yield s
    s.close()


def _count(store) -> int:
    return store.query("SELECT COUNT(*) FROM queries")[0][0]


# -- finding 2: one NUL question threw away its whole batch on PostgreSQL ---------------------

def test_safe_text_removes_nul_and_lone_surrogates():
    assert safe_text("a\x00b\ud800c\udfffd") == "abcd"
    assert safe_text("Grüße, привет") == "Grüße, привет" and safe_text(3) == 3


def test_ten_questions_and_one_with_nul_are_all_stored(store):
    """The review's input: 10 members' questions plus one with %00 (decoded: NUL) in one batch."""
    batch = [query(f"Frage {i}") for i in range(10)] + [query("Passwort\x00 vergessen \ud800")]
    batch[3].top_anchor = "anchor\x00"
    assert store.write(batch, []) == 0
    assert _count(store) == 11
    texts = {t for (t,) in store.query("SELECT text FROM queries")}
    assert "Passwort vergessen " in texts


def test_a_row_that_really_fails_is_counted_and_its_batch_is_kept(store):
    """A row the database refuses (an INTEGER out of range): its 10 neighbours are stored."""
    batch = [query(f"Frage {i}") for i in range(10)]
    bad = FeedbackEvent(batch[0].id, "opened", "ord-tracking", "anchor", 2**70, None, time.time())
    assert store.write(batch, [bad]) == 1
    assert _count(store) == 10


def test_nul_questions_mixed_into_traffic_never_stop_storing(postgres_url):
    """5 NUL questions per second among members' questions, for 2 s through the recorder:
    everything is stored, nothing dropped."""
    store = _pg_store(postgres_url)
    recorder = Recorder(store)
    recorder.start()
    try:
        events = []
        for second in range(2):
            for i in range(20):
                e = query(f"Frage {second}-{i}" + ("\x00%00" if i % 4 == 0 else ""))
                events.append(e)
                recorder.record_query(e)
            time.sleep(1)
        assert wait_for(lambda: _count(store) == len(events), 10), _count(store)
        assert recorder.dropped == 0
    finally:
        recorder.stop()
        store.close()


# -- finding 3: an I/O fault in SQLite's -shm file killed the answering process ----------------

BUS_OLD = """
import os, sqlite3, sys
path = sys.argv[1]
c = sqlite3.connect(path)
c.execute("PRAGMA journal_mode=WAL")
c.execute("CREATE TABLE t (x TEXT)")
c.execute("INSERT INTO t VALUES ('a')"); c.commit()
os.truncate(path + "-shm", 0)  # the fault: the memory-mapped -shm loses its pages
for i in range(100):
    c.execute("INSERT INTO t VALUES ('b')"); c.commit()
print("survived")
"""

BUS_NEW = """
import os, sys, time
from qa.events.sqlite import SQLiteStore
from qa.events.store import QueryEvent, StoreError
path = sys.argv[1]
store = SQLiteStore(path)
def q(i):
    return QueryEvent(f"{i:032x}", time.time(), "Frage", "de", "", "", True, None, None, None, 1.0, None)
store.write([q(0)], [])
assert not os.path.exists(path + "-shm") and not os.path.exists(path + "-wal")
conn = store._conn()
assert conn.execute("PRAGMA mmap_size").fetchone()[0] == 0
assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
failures = 0
for i, fault in enumerate(["truncate", "garbage", "partial", "delete"], 1):
    if fault == "truncate":
        os.truncate(path, 0)
    elif fault == "garbage":
        with open(path, "r+b") as f:
            f.write(os.urandom(8192))
    elif fault == "partial":
        with open(path, "r+b") as f:
            f.seek(4096); f.write(b"\\xff" * 4096)
    else:
        os.unlink(path)
    for attempt in range(3):  # the first write after a fault may fail; the next ones work
        try:
            store.write([q(i * 10 + attempt)], [])
        except StoreError:
            failures += 1
print("survived", failures, store.query("SELECT COUNT(*) FROM queries")[0][0])
"""


def _run(script: str, path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_wal_shm_fault_is_a_bus_error_and_the_store_has_no_mapped_file_to_fault(tmp_path):
    """The old setting (WAL) dies of SIGBUS on a truncated -shm; the store as it is now has
    no -shm or -wal, maps nothing, and survives faults on its one file."""
    old = _run(BUS_OLD, tmp_path / "old.sqlite3")
    assert old.returncode == -signal.SIGBUS, (old.returncode, old.stderr[-500:])
    new = _run(BUS_NEW, tmp_path / "new.sqlite3")
    assert new.returncode == 0, new.stderr[-2000:]
    survived, failures, rows = new.stdout.split()
    assert survived == "survived" and int(rows) >= 1 and int(failures) <= 4


# -- finding 4: the SQLite file deleted, replaced, emptied or overwritten while serving ---------

@pytest.fixture
def sqlite_recorder(tmp_path):
    store = SQLiteStore(tmp_path / "data" / "events.sqlite3")
    recorder = Recorder(store)
    recorder.start()
    yield store, recorder
    recorder.stop()


def _stored(path, qid: str) -> bool:
    if not path.exists():
        return False
    with sqlite3.connect(path) as conn:
        try:
            return bool(conn.execute("SELECT 1 FROM queries WHERE id = ?", (qid,)).fetchall())
        except sqlite3.DatabaseError:
            return False


@pytest.mark.parametrize("fault", ["deleted", "replaced", "emptied", "corrupt"])
def test_a_file_fault_while_serving_is_noticed_reported_and_survived(sqlite_recorder, tmp_path, fault):
    store, recorder = sqlite_recorder
    first = query("vorher")
    recorder.record_query(first)
    assert wait_for(lambda: _stored(store.path, first.id))
    assert store.health() == {"status": "ok"}
    if fault == "deleted":
        store.path.unlink()
    elif fault == "replaced":
        other = tmp_path / "other.sqlite3"
        sqlite3.connect(other).close()
        os.replace(other, store.path)
    elif fault == "emptied":
        os.truncate(store.path, 0)
    else:
        with open(store.path, "r+b") as f:
            f.write(b"this is not a database" * 400)
    after = [query(f"nachher {i}") for i in range(3)]
    for e in after:
        recorder.record_query(e)
        time.sleep(0.2)
    assert wait_for(lambda: all(_stored(store.path, e.id) for e in after), 10), recorder.last_error
    health = store.health()
    assert health["status"] == "degraded" and fault in health["reason"], health
    # the readers' side works too: the insights' queries find their tables
    assert store.query("SELECT COUNT(*) FROM queries")[0][0] >= 2
    if fault == "corrupt":
        assert list(store.path.parent.glob("events.sqlite3.corrupt-*"))


def test_incidents_are_counted_in_metrics(sqlite_recorder):
    from qa.ops import metrics

    store, recorder = sqlite_recorder
    before = metrics.STORE_INCIDENTS.labels("deleted")._value.get()
    e = query("eins")
    recorder.record_query(e)
    assert wait_for(lambda: _stored(store.path, e.id))
    store.path.unlink()
    e2 = query("zwei")
    recorder.record_query(e2)
    assert wait_for(lambda: _stored(store.path, e2.id))
    assert metrics.STORE_INCIDENTS.labels("deleted")._value.get() == before + 1
    assert metrics.STORE_DEGRADED._value.get() == 1
    shutil.rmtree(store.path.parent)
