"""One typed question is one question, whichever process stored its prefixes.

A widget searches as the member types ("wo", "wo ist", "wo ist mein Paket") and asks
once more with the second stage when typing stops, all under one session id. Each
process's recorder merges what it sees (qa/events/recorder.py), but behind nginx or
with several workers the requests of one session land on different processes, each of
which would store its own part. So the store keeps a hash of the session beside each
question and, when it writes, marks a question `superseded` when the next question of
its session (in time order, whenever it arrives) extends it, shortens it or repeats it.
Superseded questions stay in the store, so feedback on them still counts; insights
count questions without them.

The session hash links the questions of one search box for a short time only: the
retention pass clears it after SESSION_KEEP seconds.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable

# Earlier questions of a session that a new one may supersede: typing one question
# takes seconds; a member refining it minutes later still asks the same question.
WINDOW = 600.0
SESSION_KEEP = 3600.0  # seconds a question keeps its session hash


def _words(text: str) -> str:
    return " ".join(text.casefold().split())


def same_question(earlier: str, later: str) -> bool:
    """`later` extends, shortens (backspace) or repeats `earlier`."""
    a, b = _words(earlier), _words(later)
    return b.startswith(a) or a.startswith(b)


def repeats(earlier: str, later: str) -> bool:
    """`later` asks `earlier` again, word for word (the widget's final question)."""
    return _words(earlier) == _words(later)


def session_key(session: str | None) -> str | None:
    """What is stored of a session id: a hash, since an API client could send anything
    that matches the pattern (hex digits). A session of decimal digits only is not kept
    at all: it could be a phone, member or card number, and a hash of one is found
    again by trying them all. The widget's random sessions have letters."""
    if not session or session.isdigit():
        return None
    return hashlib.sha256(session.encode()).hexdigest()[:16]


def superseded(questions: list[tuple[str, float, str]]) -> set[str]:
    """The ids superseded among one session's (id, ts, norm): in time order, each
    question that the next one extends, shortens or repeats."""
    ordered = sorted(questions, key=lambda q: (q[1], q[0]))
    return {a[0] for a, b in zip(ordered, ordered[1:]) if same_question(a[2], b[2])}


def merge(cur, sql: Callable[[str], str], rows: list[tuple], where: dict[str, int]) -> tuple[list[tuple], list[str]]:
    """`rows` about to be inserted (tuples with columns at `where`'s positions: id, ts,
    norm, session, superseded) with their `superseded` flag set, and the ids of stored
    questions that they supersede. Runs in the writer's transaction."""
    by_session: dict[str, list[tuple[str, float, str]]] = defaultdict(list)
    incoming = {r[where["id"]] for r in rows}
    for r in rows:
        if r[where["session"]]:
            by_session[r[where["session"]]].append((r[where["id"]], r[where["ts"]], r[where["norm"]]))
    if not by_session:
        return rows, []
    since = min(q[1] for qs in by_session.values() for q in qs) - WINDOW
    marks = ",".join("?" * len(by_session))
    cur.execute(sql(f"SELECT id, ts, norm, superseded, session FROM queries WHERE session IN ({marks}) AND ts >= ?"),
                [*by_session, since])
    stored_flag = {}
    for qid, ts, norm, flag, session in cur.fetchall():
        if qid not in incoming:  # a retried row is already stored: it is not its own successor
            by_session[session].append((qid, ts, norm))
            stored_flag[qid] = flag
    gone: set[str] = set()
    for questions in by_session.values():
        gone |= superseded(questions)
    out = []
    for r in rows:
        if r[where["id"]] in gone:
            r = r[:where["superseded"]] + (1,) + r[where["superseded"] + 1:]
        out.append(r)
    return out, sorted(q for q in gone if stored_flag.get(q) == 0)
