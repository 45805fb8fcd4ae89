"""Recording events beside the answering path: a bounded queue and one background writer.

`Recorder.record_*` never blocks and never raises: when the queue is full the
event is dropped and counted. The writer thread redacts question text (so raw
text never reaches the store), merges the prefixes a search-as-you-type widget
sends on the way to one question (see SETTLE), writes in batches, retries a store that failed
after a short back-off (events of a failed batch are dropped and counted), and
deletes events older than the retention period once an hour.

Query ids are `uuid4` hex: unguessable, so nobody can send feedback on another
member's question. Feedback is bound to what the query showed: the recorder
remembers, for the ids it issued recently, the (article, anchor) of each result in
rank order, and the store keeps the same list with the question. Feedback on an id
issued here is checked at once (`check_feedback`); feedback on any other id (issued
by another worker or replica, or forged) is answered "pending" and checked by the
writer against the store (`_verify`), which waits up to VERIFY_GRACE for the
question to arrive there, so no request ever waits for store lookups. The writer also
counts each (query, section) once: a changed vote replaces the stored one and is
counted as a change, not as another vote.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict

from ..ops import metrics
from ..text import normalize
from .redact import redact
from .sessions import SESSION_KEEP, repeats, same_question
from .store import EventStore, FeedbackEvent, QueryEvent, StoreError

log = logging.getLogger("qa.events")

BATCH = 500
RETENTION_EVERY = 3600.0
# A widget searches as the member types: "wo", "wo ist", "wo ist mein Paket". Queries of
# one typing session are held this long after the last keystroke's query, and a query
# that extends (or backspaces) the held one replaces it: one question is stored once.
SETTLE = 2.0
# Feedback on a query this process did not issue waits this long for the question to
# reach the store (another worker's writer flushes within ~0.1 s, a typing session
# after SETTLE) before it is rejected as unknown.
VERIFY_GRACE = SETTLE + 2.0
MAX_PENDING = 5000
# A prefix that typing went on from is not stored, but remembered this long: feedback on
# it that reaches this process (a result opened, then typing went on) stores it after all.
MERGED_KEEP = 60.0


def mismatch(shown: tuple[tuple[str, str], ...], event: FeedbackEvent) -> str | None:
    """Why feedback does not match the results its query showed, or None."""
    target = (event.article_id, event.anchor)
    if target not in shown:
        return f"this query did not show section '{event.anchor}' of article '{event.article_id}'"
    if event.kind == "opened" and (event.position is None or event.position > len(shown)
                                   or shown[event.position - 1] != target):
        return (f"position: this query showed article '{event.article_id}' section '{event.anchor}' at position "
                f"{shown.index(target) + 1}, not {event.position}")
    return None


class Recorder:
    def __init__(self, store: EventStore, queue_size: int = 10_000, retention_days: float = 90,
                 remember: int = 50_000, flush_interval: float = 0.05):
        self.store = store
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.retention_days = retention_days
        self.flush_interval = flush_interval
        self._shown: OrderedDict[str, tuple[tuple[str, str], ...]] = OrderedDict()  # issued here
        self._pending: list[tuple[float, FeedbackEvent]] = []  # (give up at, event) awaiting the store
        self._feedback: OrderedDict[tuple, bool | None] = OrderedDict()
        self._held: dict[str, tuple[float, QueryEvent]] = {}  # typing session -> (since, latest query)
        self._merged: OrderedDict[str, tuple[float, QueryEvent]] = OrderedDict()  # id -> (since, dropped prefix)
        self._remember = remember
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_retention = 0.0
        self._attempt = 0
        self.dropped = 0
        self.rejected = 0
        self.written = 0
        self.last_error: str | None = None

    # -- producer side (request handlers) --------------------------------------------
    @staticmethod
    def new_query_id() -> str:
        return uuid.uuid4().hex

    def _put(self, item) -> bool:
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            self._count_dropped(1)
            return False
        metrics.QUEUE_DEPTH.set(self.queue.qsize())
        return True

    def record_query(self, event: QueryEvent, session: str | None = None) -> None:
        event.session = session
        with self._lock:
            self._shown[event.id] = event.shown
            if len(self._shown) > self._remember:
                self._shown.popitem(last=False)
        self._put(event)

    def record_feedback(self, event: FeedbackEvent) -> bool:
        return self._put(event)

    def first_time(self, event: FeedbackEvent) -> bool:
        """False for a retry of feedback this process already took (same key and vote),
        so retries are neither queued nor counted twice. Across processes, the store's
        unique key does the same."""
        key = (event.query_id, event.kind, event.article_id, event.anchor)
        with self._lock:
            if key in self._feedback and self._feedback[key] == event.helpful:
                return False
            self._feedback[key] = event.helpful
            if len(self._feedback) > self._remember:
                self._feedback.popitem(last=False)
        return True

    def issued(self, query_id: str) -> bool:
        """Issued by this process recently (it may not be in the store yet)."""
        with self._lock:
            return query_id in self._shown

    def check_feedback(self, event: FeedbackEvent) -> str | None:
        """For a query issued here: why `event` does not match what it showed (None: it
        does). Raises KeyError for a query not issued here (the writer checks those)."""
        with self._lock:
            shown = self._shown[event.query_id]
        return mismatch(shown, event)

    # -- the writer thread -----------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="qa-event-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Flush what is queued (up to `timeout`) and stop."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        self.store.close()

    def _count_dropped(self, n: int) -> None:
        self.dropped += n
        metrics.EVENTS_DROPPED.inc(n)

    def _take_batch(self) -> list:
        try:
            batch = [self.queue.get(timeout=self.flush_interval)]
        except queue.Empty:
            return []
        # Let a batch gather: one wake-up and one transaction per interval, not per
        # event, so the writer rarely competes with request handling for the GIL.
        self._stop.wait(self.flush_interval)
        while len(batch) < BATCH:
            try:
                batch.append(self.queue.get_nowait())
            except queue.Empty:
                break
        metrics.QUEUE_DEPTH.set(self.queue.qsize())
        return batch

    def _sort(self, batch: list, flush_all: bool) -> tuple[list[QueryEvent], list[FeedbackEvent]]:
        """The questions to write now, and the feedback."""
        queries, feedback = [], []
        now = time.monotonic()
        for e in batch:
            if isinstance(e, FeedbackEvent):
                queries += self._pin(e.query_id)
                feedback.append(e)
            elif e.session:
                previous = self._held.get(e.session)
                if previous:
                    self._follow(previous[1], e, queries, now)
                self._held[e.session] = (now, e)
            else:
                queries.append(e)
        for session, (since, _) in list(self._held.items()):
            if flush_all or now - since >= SETTLE:
                queries.append(self._held.pop(session)[1])
        while self._merged and (now - next(iter(self._merged.values()))[0] >= MERGED_KEEP
                                or len(self._merged) > self._remember):
            self._merged.popitem(last=False)
        return queries, feedback

    def _pin(self, query_id: str) -> list[QueryEvent]:
        """Feedback pins its question: held, it is stored now and no later prefix replaces
        it; dropped as a prefix a moment ago, it is stored after all."""
        pinned = [self._held.pop(session)[1] for session, (_, held) in list(self._held.items())
                  if held.id == query_id]
        dropped = self._merged.pop(query_id, None)
        return pinned + ([dropped[1]] if dropped else [])

    def _follow(self, held: QueryEvent, later: QueryEvent, queries: list[QueryEvent], now: float) -> None:
        """`later` follows `held` in its typing session.
        - Another question: `held` is done and stored.
        - The same words again (the widget's final question after the as-you-type one):
          `held` is stored too, and the store marks it superseded (qa/events/sessions.py).
          Its results were on screen when typing stopped; a member who opens one may reach
          another process, which checks that feedback against the store.
        - A prefix that typing went on from: dropped (`_merged` remembers it for a while)."""
        if not same_question(held.text, later.text) or repeats(held.text, later.text):
            queries.append(held)
        else:
            self._merged[held.id] = (now, held)

    def _reject(self, event: FeedbackEvent, reason: str) -> None:
        self.rejected += 1
        metrics.FEEDBACK_REJECTED.labels(reason).inc()

    def _verify(self, feedback: list[FeedbackEvent]) -> list[FeedbackEvent]:
        """Feedback that may be written now: checked events pass; events on a query
        answered elsewhere are checked against the store once it has the question,
        and rejected when it does not show up within VERIFY_GRACE."""
        now = time.monotonic()
        ready = [f for f in feedback if not f.verify]
        self._pending += [(now + VERIFY_GRACE, f) for f in feedback if f.verify]
        if len(self._pending) > MAX_PENDING:  # a flood of forged ids: the oldest go
            for _, f in self._pending[:-MAX_PENDING]:
                self._reject(f, "unknown_query")
            self._pending = self._pending[-MAX_PENDING:]
        if not self._pending:
            return ready
        shown = self.store.shown(sorted({f.query_id for _, f in self._pending}))
        waiting = []
        for deadline, f in self._pending:
            if f.query_id in shown:
                why = mismatch(shown[f.query_id], f)
                if why is None:
                    ready.append(f)
                else:
                    self._reject(f, "wrong_position" if "position" in why else "not_shown")
            elif now >= deadline:
                self._reject(f, "unknown_query")
            else:
                waiting.append((deadline, f))
        self._pending = waiting
        return ready

    def _count(self, feedback: list[FeedbackEvent]) -> list[FeedbackEvent]:
        """Count each (query, section, kind) once, whichever worker took it: the store
        says whether it is new, a changed vote or a repeat (a repeat is not written)."""
        if not feedback:
            return feedback
        stored = self.store.votes([f.key for f in feedback])
        out = []
        for f in feedback:
            if f.key not in stored:
                helpful = "" if f.helpful is None else ("yes" if f.helpful else "no")
                metrics.FEEDBACK.labels(f.kind, helpful).inc()
            elif stored[f.key] == f.helpful:
                continue
            else:
                metrics.FEEDBACK_CHANGED.inc()
            stored[f.key] = f.helpful
            out.append(f)
        return out

    def _write(self, batch: list, flush_all: bool = False) -> None:
        queries, feedback = self._sort(batch, flush_all)
        if feedback or self._pending:
            feedback = self._count(self._verify(feedback))
        if not queries and not feedback:
            return
        for q in queries:
            q.text = redact(normalize(q.text))
        self._attempt = len(queries) + len(feedback)
        rejected = self.store.write(queries, feedback)
        if rejected:
            self._count_dropped(rejected)
            log.error("event store rejected %d of %d rows; the others were written", rejected, self._attempt)
        self.written += len(queries) + len(feedback) - rejected
        metrics.EVENTS_WRITTEN.inc(len(queries) + len(feedback) - rejected)
        metrics.STORE_DEGRADED.set(int(self.store.health()["status"] != "ok"))

    def _retention(self) -> None:
        if time.time() < self._next_retention:
            return
        self._next_retention = time.time() + 60  # on failure: again in a minute, not at every batch
        self.store.forget_sessions(time.time() - SESSION_KEEP)
        deleted = self.store.delete_before(time.time() - self.retention_days * 86400) if self.retention_days > 0 else 0
        self._next_retention = time.time() + RETENTION_EVERY
        if deleted:
            log.info("retention: deleted %d questions older than %g days", deleted, self.retention_days)

    def _run(self) -> None:
        backoff = 0.0
        while not (self._stop.is_set() and self.queue.empty() and not self._held and not self._pending):
            if backoff:
                self._stop.wait(backoff)
            try:
                self._retention()
            except StoreError as e:
                self._failed(e)
            batch = self._take_batch()
            if not batch and not self._held and not self._pending:
                continue
            try:
                self._attempt = 0
                self._write(batch, flush_all=self._stop.is_set())
                backoff = 0.0
                self.last_error = None
            except Exception as e:  # the writer must survive anything a store throws
                self._count_dropped(self._attempt or len(batch))
                metrics.STORE_DEGRADED.set(1)
                self._failed(e)
                backoff = min(5.0, backoff * 2 or 0.5)
                if self._stop.is_set():
                    self._pending = []
                    break

    def _failed(self, e: Exception) -> None:
        message = str(e)
        if message != self.last_error:
            log.error("event store failed (events are dropped and counted until it is back): %s", message)
        self.last_error = message
