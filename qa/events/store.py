"""The event store: questions and their feedback, in SQLite (default) or PostgreSQL.

One SQL dialect for both: `?` placeholders (turned into `%s` for psycopg), epoch
seconds as DOUBLE PRECISION, booleans as 0/1 INTEGER, `INSERT … ON CONFLICT`. The
schema is versioned: `MIGRATIONS[n]` takes version n to n+1, applied in one
transaction under a lock, so replicas starting together migrate once.

Connections are per thread (the writer thread has its own; readers in the request
threadpool have theirs). A failed operation drops the thread's connection, so the
next one reconnects: a store that was down comes back by itself.

Nothing it accepted is lost to one bad row: every text is made safe for both back
ends first (`safe_text`: no NUL, which PostgreSQL refuses, no lone surrogates, which
neither can encode), and when a batch still fails on its data, its rows are written
one by one and only those that really fail are counted (`write` returns how many).
SQLite's file handling (rollback journal, no mmap, a deleted or replaced file
noticed and reopened) is in `sqlite.py`.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from dataclasses import dataclass

from ..errors import StoreError
from . import sessions

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
    # 3: where a question came from (widget, agent, api, docs), and the results it showed
    # as a JSON list of [article_id, anchor] in rank order, so feedback can be checked
    # against what the member saw
    [
        "ALTER TABLE queries ADD COLUMN source TEXT NOT NULL DEFAULT 'api'",
        "ALTER TABLE queries ADD COLUMN shown TEXT",
    ],
    # 4: one typed question is one question across processes (qa/events/sessions.py):
    # a hash of the widget's session, kept for an hour, and whether the session's next
    # question superseded this one
    [
        "ALTER TABLE queries ADD COLUMN session TEXT",
        "ALTER TABLE queries ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX queries_session ON queries (session)",
    ],
]
# Sources that count as members' questions in insights and gaps unless asked otherwise.
MEMBER_SOURCES = ("widget", "api")
SOURCES = ("widget", "api", "agent", "docs")
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
    session: str | None = None  # widget's typing session: stored as a hash for an hour (sessions.py)
    source: str = "api"  # widget, agent, api or docs
    shown: tuple[tuple[str, str], ...] = ()  # (article_id, anchor) of each result, in rank order


@dataclass
class FeedbackEvent:
    query_id: str
    kind: str  # "opened" or "helpful"
    article_id: str
    anchor: str
    position: int | None
    helpful: bool | None
    ts: float
    verify: bool = False  # the query was answered elsewhere: the writer checks it against the store

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.query_id, self.kind, self.article_id, self.anchor)


UNSAFE = re.compile(r"[\x00\ud800-\udfff]")


def safe_text(value):
    """A string both back ends store as it is: without NUL (PostgreSQL's text cannot
    hold it) and lone surrogates (not encodable as UTF-8). Other values pass."""
    # isprintable() is False for both (and for other control characters): a C-speed
    # check, so ordinary text skips the regex.
    if type(value) is str and not value.isprintable():
        return UNSAFE.sub("", value)
    return value


def _safe(row: tuple) -> tuple:
    return tuple([safe_text(v) for v in row])


def row_level(e: BaseException) -> bool:
    """An error caused by the data of a row (not by the store being away)."""
    names = {c.__name__ for c in type(e).__mro__}
    return bool(names & {"DataError", "IntegrityError"}) or isinstance(e, (UnicodeError, ValueError, OverflowError))


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


# Where `_rows` puts the columns that sessions.merge reads and sets.
QUERY_COLUMNS = {"id": 0, "ts": 1, "norm": 4, "session": 16, "superseded": 17}


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
        self.last_error: str | None = None  # of the last operation, None when it succeeded
        self._recovered = False  # set by a back end that repaired what made an operation fail

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
                self.last_error = None
                return result
            except BaseException:
                conn.rollback()
                raise
            finally:
                cur.close()
        except Exception as e:
            self._drop()
            self.last_error = f"{type(e).__name__}: {e}"
            self._failed(e)
            err = StoreError(f"{type(e).__name__}: {e}")
            err.row_level = row_level(e)  # type: ignore[attr-defined]
            raise err from e

    def _failed(self, e: Exception) -> None:
        """Hook for a back end to react to a failure (SQLite: a corrupt file)."""

    def health(self) -> dict:
        """{"status": "ok"}, or {"status": "degraded", "reason": …} while the last
        operation failed (SQLite adds the file incidents of sqlite.py)."""
        if self.last_error:
            return {"status": "degraded", "reason": f"the last operation failed: {self.last_error[:300]}"}
        return {"status": "ok"}

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
    @staticmethod
    def _rows(queries: list[QueryEvent], feedback: list[FeedbackEvent]) -> tuple[list, list, list]:
        q_rows = [_safe((
            e.id, e.ts, int(e.ts // 86400), e.text, normalize(e.text), e.lang, e.country, e.category,
            int(e.answered), e.top_article, e.top_anchor, e.score, e.latency_ms, e.index_build, e.source,
            json.dumps([list(s) for s in e.shown], ensure_ascii=False), sessions.session_key(e.session), 0))
            for e in queries
        ]
        opened = [_safe((f.query_id, f.kind, f.article_id, f.anchor, f.position, None, f.ts))
                  for f in feedback if f.kind == "opened"]
        votes = [_safe((f.query_id, f.kind, f.article_id, f.anchor, f.position, int(bool(f.helpful)), f.ts))
                 for f in feedback if f.kind == "helpful"]
        return q_rows, opened, votes

    def _insert(self, cur, q_rows: list, opened: list, votes: list) -> None:
        q_rows, superseded = sessions.merge(cur, self._sql, q_rows, QUERY_COLUMNS)
        for chunk in _chunks(q_rows):
            cur.execute(self._sql(
                "INSERT INTO queries (id, ts, day, text, norm, lang, country, category, answered, top_article,"
                " top_anchor, score, latency_ms, index_build, source, shown, session, superseded) VALUES " +
                _values(18, len(chunk)) + " ON CONFLICT (id) DO NOTHING"), [v for row in chunk for v in row])
        for chunk in _chunks(superseded):
            cur.execute(self._sql(f"UPDATE queries SET superseded = 1 WHERE id IN ({','.join('?' * len(chunk))})"),
                        chunk)
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
                    insert + _values(7, len(chunk)) + key + "DO UPDATE SET helpful = excluded.helpful, ts = excluded.ts"
                ),
                [v for r in chunk for v in r],
            )

    def write(self, queries: list[QueryEvent], feedback: list[FeedbackEvent]) -> int:
        """Write a batch in one transaction; returns how many rows were rejected. When the
        batch fails on its data (not on the store), each row is tried alone, so one bad
        row never takes the others with it. Raises StoreError when the store fails."""
        q_rows, opened, votes = self._rows(queries, feedback)
        for attempt in range(2):
            try:
                self._run(lambda cur: self._insert(cur, q_rows, opened, votes))
                return 0
            except StoreError as e:
                if getattr(e, "row_level", False):
                    break
                if attempt or not self._recovered:
                    raise
                self._recovered = False  # the back end repaired itself (a new file): once more
        rejected = 0
        singles = [([r], [], []) for r in q_rows] + [([], [r], []) for r in opened] + [([], [], [r]) for r in votes]
        for q, o, v in singles:
            try:
                self._run(lambda cur, q=q, o=o, v=v: self._insert(cur, q, o, v))
            except StoreError as e:
                if not getattr(e, "row_level", False):
                    raise  # the store went away meanwhile: the caller counts the rest
                rejected += 1
        return rejected

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

    def forget_sessions(self, before: float) -> None:
        """Unlink the questions asked before `before` from their search session."""
        self._run(lambda cur: cur.execute(
            self._sql("UPDATE queries SET session = NULL WHERE session IS NOT NULL AND ts < ?"), (before,)))

    # -- reading -----------------------------------------------------------------------
    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        def go(cur):
            cur.execute(self._sql(sql), params)
            return cur.fetchall()

        return self._run(go)

    def has_query(self, query_id: str) -> bool:
        return bool(self.query("SELECT 1 FROM queries WHERE id = ?", (query_id,)))

    def shown(self, query_ids: list[str]) -> dict[str, tuple[tuple[str, str], ...]]:
        """The results each stored query showed, for the ids that are stored."""
        out: dict[str, tuple[tuple[str, str], ...]] = {}
        for i in range(0, len(query_ids), CHUNK):
            chunk = query_ids[i:i + CHUNK]
            rows = self.query(f"SELECT id, shown FROM queries WHERE id IN ({','.join('?' * len(chunk))})", tuple(chunk))
            for qid, shown in rows:
                out[qid] = tuple((a, b) for a, b in json.loads(shown or "[]"))
        return out

    def votes(self, keys: list[tuple[str, str, str, str]]) -> dict[tuple, bool | None]:
        """The stored feedback for each (query_id, kind, article_id, anchor) that exists:
        the vote (helpful) or None (opened)."""
        out: dict[tuple, bool | None] = {}
        for qid in {k[0] for k in keys}:
            for kind, article, anchor, helpful in self.query(
                    "SELECT kind, article_id, anchor, helpful FROM feedback WHERE query_id = ?", (qid,)):
                out[(qid, kind, article, anchor)] = None if helpful is None else bool(helpful)
        return out

    def schema_version(self) -> int:
        return self.query("SELECT version FROM schema_version")[0][0]


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
