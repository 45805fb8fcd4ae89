"""The SQLite event store, hardened against what can happen to its file while serving.

- **Rollback journal, no memory map** (`journal_mode=DELETE`, `mmap_size=0`): WAL
  keeps a `-shm` file memory-mapped in every process, and an I/O fault on a mapped
  page (a truncated or vanished `-shm`, a full or failing disk) is a SIGBUS that kills
  the answering process. With plain reads and writes the same fault is an error the
  writer catches. Cost: fewer events per second in the writer (docs/events.md).
- **A deleted or replaced file** is noticed before every transaction (the open file's
  device and inode against the path's): the connection is dropped and the file
  reopened (the schema created again), instead of writing into a deleted inode.
- **A file that lost its tables** (truncated to nothing): the schema is created again.
- **A corrupt file** ("file is not a database", "malformed") is renamed aside
  (`events.sqlite3.corrupt-<time>`) and a fresh one started.

Each incident is logged, counted (`qa_event_store_incidents_total{kind}`) and reported
by `health()` (so by `/readyz`'s `store` field) as degraded for `INCIDENT_HOLD` seconds.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from ..ops import metrics
from .store import EventStore

log = logging.getLogger("qa.events")

INCIDENT_HOLD = 300.0  # seconds /readyz keeps saying "degraded" after an incident
CORRUPT = ("file is not a database", "malformed")


class SQLiteStore(EventStore):
    def __init__(self, path: Path | str):
        super().__init__()
        self.path = Path(path)
        self.describe = f"sqlite:{self.path}"
        self._incident: tuple[float, str] | None = None
        self._incident_lock = threading.Lock()

    # -- the file ----------------------------------------------------------------------
    def _identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _note(self, kind: str, reason: str) -> None:
        with self._incident_lock:
            self._incident = (time.time(), reason)
        metrics.STORE_INCIDENTS.labels(kind).inc()
        log.error("event store: %s", reason)

    def _connect(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10, isolation_level="DEFERRED", check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA journal_mode=DELETE")  # no -wal and no memory-mapped -shm
        conn.execute("PRAGMA mmap_size=0")  # the database itself read and written, never mapped
        conn.execute("PRAGMA synchronous=FULL")
        self._local.identity = self._identity()
        return conn

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            now = self._identity()
            if now != getattr(self._local, "identity", None):
                what = "deleted" if now is None else "replaced"
                self._note(what, f"{self.path} was {what} while open; reopened "
                                 f"{'a new file' if now is None else 'the file now at that path'}")
                self._drop()
                self._migrated = False  # a new file needs the schema
        return super()._conn()

    def _failed(self, e: Exception) -> None:
        message = str(e)
        if isinstance(e, sqlite3.OperationalError) and "no such table" in message:
            self._migrated = False  # the tables are gone (a truncated file): create them again
            self._recovered = True
            self._note("emptied", f"{self.path} was emptied (lost its tables: {message}); schema created again")
        elif isinstance(e, sqlite3.DatabaseError) and any(c in message for c in CORRUPT):
            self._move_aside(message)

    def _move_aside(self, message: str) -> None:
        # Only the file this connection had open: another process may have moved it already.
        if self._identity() != getattr(self._local, "identity", None):
            return
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        try:
            os.replace(self.path, aside)
            journal = self.path.with_name(self.path.name + "-journal")
            if journal.exists():
                os.replace(journal, aside.with_name(aside.name + "-journal"))
        except OSError as err:
            self._note("corrupt", f"{self.path} is corrupt ({message}) and could not be moved aside: {err}")
            return
        self._migrated = False
        self._recovered = True
        self._note("corrupt", f"{self.path} was corrupt ({message}); moved aside to {aside.name}, a new one started")

    def health(self) -> dict:
        base = super().health()
        with self._incident_lock:
            incident = self._incident
        if base["status"] == "ok" and incident and time.time() - incident[0] < INCIDENT_HOLD:
            when = time.strftime("%H:%M:%S", time.gmtime(incident[0]))
            return {"status": "degraded", "reason": f"{incident[1]} (at {when} UTC)"}
        return base

    def _lock_migrations(self, cur) -> None:
        cur.connection.commit()
        cur.execute("BEGIN IMMEDIATE")  # one writer at a time: workers sharing the file migrate once
