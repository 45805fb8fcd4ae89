"""The event store: questions and their feedback, in SQLite (default) or PostgreSQL.

One SQL dialect for both: `?` placeholders (turned into `%s` for psycopg), epoch
seconds as DOUBLE PRECISION, booleans as 0/1 INTEGER, `INSERT … ON CONFLICT`. The
schema is versioned: `MIGRATIONS[n]` takes version n to n+1, applied in one
transaction under a lock, so replicas starting together migrate once.

Connections are per thread (the writer thread has its own; readers in the request
threadpool have theirs). A failed operation drops the thread's connection, so the
next one reconnects: a store that was down comes back by itself.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import StoreError

MIGRATIONS: list[list[str]] = [
    # 1: questions and feedback
    [
        """CREATE TABLE queries (
            id TEXT PRIMARY KEY,
            ts DOUBLE PRECISION NOT NULL,
            day INTEGER NOT NULL,
            text TEXT NOT NULL,
            norm TEXT NOT NULL,
            lang TEXT NOT NULL,
            country TEXT NOT NULL,
            category TEXT NOT NULL,
            answered INTEGER NOT NULL,
            top_article TEXT,
            top_anchor TEXT,
            score DOUBLE PRECISION,
            latency_ms DOUBLE PRECISION,
            index_build TEXT
        )""",
        "CREATE INDEX queries_ts ON queries (ts)",
        """CREATE TABLE feedback (
            query_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            article_id TEXT NOT NULL,
            anchor TEXT NOT NULL,
            position INTEGER,
            helpful INTEGER,
            ts DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (query_id, kind, article_id, anchor)
        )""",
        "CREATE INDEX feedback_ts ON feedback (ts)",
    ],
    # 2: the insights' "not helpful" and gaps queries filter on kind first
    ["CREATE INDEX feedback_kind ON feedback (kind, helpful, ts)"],
]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass
class QueryEvent:
    id: str
    ts: float
    text: str  # redacted before it reaches the store
    lang: str
    country: str
    category: str
    answered: bool
    top_article: str | None
    top_anchor: str | None
    score: float | None
    latency_ms: float
    index_build: str | None
    session: str | None = None  # widget's typing session: not stored, only used to merge prefixes


@dataclass
class FeedbackEvent:
    query_id: str
    kind: str  # "opened" or "helpful"
    article_id: str
    anchor: str
    position: int | None
    helpful: bool | None
    ts: float


def normalize(text: str) -> str:
    """The grouping key of a question: case-folded, single spaces, no trailing punctuation."""
    return " ".join(text.casefold().split()).rstrip("?!.… ")


# One multi-row INSERT per batch instead of executemany: the sqlite3 module releases
# and re-takes the GIL around every row it steps, and each re-take competes with the
# request-handling thread (a forced GIL switch per row shows as tail latency).
CHUNK = 500


def _chunks(rows: list) -> list[list]:
    return [rows[i:i + CHUNK] for i in range(0, len(rows), CHUNK)]


def _values(columns: int, rows: int) -> str:
    one = "(" + ",".join("?" * columns) + ")"
    return ",".join([one] * rows)


def _last_per_key(rows: list[tuple]) -> list[tuple]:
    """One row per (query_id, kind, article_id, anchor), the latest: a multi-row
    INSERT … ON CONFLICT DO UPDATE may not touch the same row twice."""
    return list({r[:4]: r for r in rows}.values())


class EventStore:
    """The SQL shared by both back ends; subclasses open connections and lock migrations."""

    placeholder = "?"

    def __init__(self) -> None:
        self._local = threading.local()
        self._migrated = False

    # -- connections -------------------------------------------------------------------
    def _connect(self):
        raise NotImplementedError

    def _lock_migrations(self, cur) -> None:
        raise NotImplementedError

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            if not self._migrated:
                self._migrate(conn)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close, too
                conn.close()

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _run(self, fn):
        """Run `fn(cursor)` in a transaction on this thread's connection."""
        try:
            conn = self._conn()
            cur = conn.cursor()
            try:
                result = fn(cur)
                conn.commit()
                return result
            except BaseException:
                conn.rollback()
                raise
            finally:
                cur.close()
        except Exception as e:
            self._drop()
            raise StoreError(f"{type(e).__name__}: {e}") from e

    def _migrate(self, conn) -> None:
        cur = conn.cursor()
        try:
            self._lock_migrations(cur)
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            cur.execute("SELECT version FROM schema_version")
            row = cur.fetchone()
            version = row[0] if row else 0
            if row is None:
                cur.execute("INSERT INTO schema_version (version) VALUES (0)")
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the event store has schema version {version}, newer than this code's {SCHEMA_VERSION}"
                )
            for n in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[n]:
                    cur.execute(statement)
                cur.execute(self._sql("UPDATE schema_version SET version = ?"), (n + 1,))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            cur.close()
        self._migrated = True

    def close(self) -> None:
        self._drop()

    # -- writing -----------------------------------------------------------------------
    def write(self, queries: list[QueryEvent], feedback: list[FeedbackEvent]) -> None:
        q_rows = [
            (e.id, e.ts, int(e.ts // 86400), e.text, normalize(e.text), e.lang, e.country, e.category,
             int(e.answered), e.top_article, e.top_anchor, e.score, e.latency_ms, e.index_build)
            for e in queries
        ]
        opened = [
            (f.query_id, f.kind, f.article_id, f.anchor, f.position, None, f.ts) for f in feedback if f.kind == "opened"
        ]
        votes = [(f.query_id, f.kind, f.article_id, f.anchor, f.position, int(bool(f.helpful)), f.ts)
                 for f in feedback if f.kind == "helpful"]

        def go(cur):
            for chunk in _chunks(q_rows):
                cur.execute(self._sql(
                    "INSERT INTO queries (id, ts, day, text, norm, lang, country, category, answered, top_article,"
                    " top_anchor, score, latency_ms, index_build) VALUES " + _values(14, len(chunk)) +
                    " ON CONFLICT (id) DO NOTHING"), [v for row in chunk for v in row])
            insert = "INSERT INTO feedback (query_id, kind, article_id, anchor, position, helpful, ts) VALUES "
            key = " ON CONFLICT (query_id, kind, article_id, anchor) "
            for chunk in _chunks(_last_per_key(opened)):
                cur.execute(
                    self._sql(insert + _values(7, len(chunk)) + key + "DO NOTHING"), [v for r in chunk for v in r]
                )
            for chunk in _chunks(_last_per_key(votes)):
                # A changed vote replaces the earlier one: the member's last word counts.
                cur.execute(
                    self._sql(
                        insert
                        + _values(7, len(chunk))
                        + key
                        + "DO UPDATE SET helpful = excluded.helpful, ts = excluded.ts"
                    ),
                    [v for r in chunk for v in r],
                )

        self._run(go)

    def delete_before(self, cutoff: float) -> int:
        """Retention: drop questions older than `cutoff` and all feedback on them."""
        def go(cur):
            cur.execute(
                self._sql("DELETE FROM feedback WHERE ts < ? OR query_id IN (SELECT id FROM queries WHERE ts < ?)"),
                (cutoff, cutoff),
            )
            cur.execute(self._sql("DELETE FROM queries WHERE ts < ?"), (cutoff,))
            return cur.rowcount

        return self._run(go)

    # -- reading -----------------------------------------------------------------------
    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        def go(cur):
            cur.execute(self._sql(sql), params)
            return cur.fetchall()

        return self._run(go)

    def has_query(self, query_id: str) -> bool:
        return bool(self.query("SELECT 1 FROM queries WHERE id = ?", (query_id,)))

    def schema_version(self) -> int:
        return self.query("SELECT version FROM schema_version")[0][0]


class SQLiteStore(EventStore):
    def __init__(self, path: Path | str):
        super().__init__()
        self.path = Path(path)
        self.describe = f"sqlite:{self.path}"

    def _connect(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10, isolation_level="DEFERRED", check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def _lock_migrations(self, cur) -> None:
        cur.connection.commit()
        cur.execute("BEGIN IMMEDIATE")  # one writer at a time: workers sharing the file migrate once


class PostgresStore(EventStore):
    placeholder = "%s"

    def __init__(self, url: str, connect_timeout: int = 3):
        super().__init__()
        self.url = url
        self.connect_timeout = connect_timeout
        self.describe = "postgresql"

    def _connect(self):
        import psycopg

        return psycopg.connect(self.url, connect_timeout=self.connect_timeout)

    def _lock_migrations(self, cur) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(7305511)")  # replicas starting together migrate once


def open_store(database_url: str | None, data_dir: Path) -> EventStore:
    """PostgreSQL when a URL is configured, else one SQLite file in the data folder.
    Nothing connects here: the first use does, so a store that is down never stops start-up."""
    if database_url:
        if database_url.startswith(("postgres://", "postgresql://")) or "host=" in database_url:
            return PostgresStore(database_url)
        if database_url.startswith("sqlite:///"):
            return SQLiteStore(database_url.removeprefix("sqlite:///"))
        raise StoreError(
            f"HELPDESK_QA_DATABASE_URL: unsupported URL (use postgresql://… or sqlite:///path): {database_url[:40]}"
        )
    return SQLiteStore(Path(data_dir) / "events.sqlite3")
