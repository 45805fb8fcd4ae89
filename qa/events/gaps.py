"""Closing the loop: from the event store back to the articles' `questions:` lists.

`gaps()` lists the groups of unanswered and "not helpful" questions (redacted text,
grouped by meaning as in the insights), each with the articles nearest to it and,
per article, a ready-to-paste YAML `questions:` block: the article's own phrasings
plus the group's questions in the article's language, deduplicated and within the
corpus limits. `phrasing()` does the same for one question an agent picked.

Nothing here writes into corpus/: editors decide what goes in.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from ..corpus import MAX_QUESTIONS, QUESTION_LENGTH, Article
from ..search import Searcher
from .insights import UNANSWERED_CANDIDATES, Embed, _asked, _src, group_by_meaning
from .redact import redact, suspicious
from .store import MEMBER_SOURCES, EventStore

NEAREST = 3


def usable(question: str) -> str | None:
    """The phrasing as the corpus would accept it, or None: whitespace collapsed,
    3-200 characters, nothing redacted in it (a placeholder is no phrasing) and no
    long number (an ID redaction did not recognise must not reach a public article)."""
    text = " ".join(question.split())
    low, high = QUESTION_LENGTH
    if not low <= len(text) <= high or suspicious(text):
        return None
    return text


def article_file(article: Article) -> str:
    """corpus/<lang>/<category>/<id>.md, as the editors' tree lays it out."""
    parts = Path(article.path).parts
    return (
        "corpus/" + "/".join(parts[-3:])
        if len(parts) >= 3
        else f"corpus/{article.lang}/{article.category}/{article.id}.md"
    )


def snippet(article: Article, new: list[str]) -> dict:
    """The article's `questions:` block with `new` phrasings added (duplicates and
    anything over the 30-item limit left out)."""
    merged, seen, added, skipped = list(article.questions), {q.casefold() for q in article.questions}, [], []
    for q in new:
        text = usable(q)
        if text is None or text.casefold() in seen:
            continue
        if len(merged) >= MAX_QUESTIONS:
            skipped.append(text)
            continue
        merged.append(text)
        seen.add(text.casefold())
        added.append(text)
    # The corpus's own style: indented items in double quotes (a JSON string is a valid
    # YAML double-quoted scalar).
    block = "questions:\n" + "".join(f"  - {json.dumps(q, ensure_ascii=False)}\n" for q in merged)
    return {
        "article_id": article.id,
        "lang": article.lang,
        "title": article.title,
        "file": article_file(article),
        "added": added,
        "over_limit": skipped,
        "yaml": f"# {article_file(article)}: replace its questions: block with\n{block}",
    }


def _nearest(searcher: Searcher, group: dict, extra: list[str]) -> list[dict]:
    """Articles nearest to the group's label (plus articles members voted on), each in
    every language it exists in, with a snippet of the group's questions in that language."""
    result = searcher.search(group["label"], limit=10)
    ids: list[tuple[str, float | None]] = []
    for hit in result.hits:
        if hit.article.id not in [i for i, _ in ids]:
            ids.append((hit.article.id, round(float(hit.score), 3)))
    ids = ids[:NEAREST]
    for article_id in extra:
        if article_id not in [i for i, _ in ids] and searcher.article(article_id) is not None:
            ids.append((article_id, None))
    out = []
    for article_id, score in ids:
        variants = []
        for lang in searcher.article_langs[article_id]:
            article = searcher.article(article_id, lang)[0]
            mine = [q["text"] for q in group["questions"] if q.get("lang") in (lang, None, "unknown")]
            variants.append(snippet(article, mine))
        out.append({"article_id": article_id, "score": score, "title": variants[0]["title"], "snippets": variants})
    return out


def _rows(store: EventStore, since_ts: float, sources: tuple[str, ...]) -> tuple[list, list]:
    unanswered = store.query(
        "SELECT MIN(text), COUNT(*), MIN(lang) FROM queries WHERE ts >= ? AND answered = 0" + _asked(sources) +
        " GROUP BY norm ORDER BY COUNT(*) DESC, MIN(text) LIMIT ?", (since_ts, UNANSWERED_CANDIDATES))
    not_helpful = store.query(
        "SELECT MIN(q.text), COUNT(*), MIN(q.lang), MIN(f.article_id)"
        " FROM feedback f JOIN queries q ON q.id = f.query_id"
        " WHERE f.kind = 'helpful' AND f.helpful = 0 AND f.ts >= ?" + _src(sources, "q.") + " GROUP BY q.norm"
        " ORDER BY COUNT(*) DESC, MIN(q.text) LIMIT ?",
        (since_ts, UNANSWERED_CANDIDATES),
    )
    return unanswered, not_helpful


def _grouped(rows: list, embed: Embed | None, kind: str) -> list[dict]:
    langs = {t: lang for t, _, lang, *_ in rows}
    voted = {t: rest[0] for t, _, _, *rest in rows if rest}
    groups = group_by_meaning([(t, int(n)) for t, n, *_ in rows], embed)
    for g in groups:
        g["kind"] = kind
        for q in g["questions"]:
            q["lang"] = langs.get(q["text"])
        g["voted_articles"] = sorted({voted[q["text"]] for q in g["questions"] if q["text"] in voted})
    return groups


def gaps(store: EventStore, since_seconds: float, searcher: Searcher | None, embed: Embed | None,
         limit: int = 15, now: float | None = None, sources: tuple[str, ...] = MEMBER_SOURCES) -> list[dict]:
    now = time.time() if now is None else now
    unanswered, not_helpful = _rows(store, now - since_seconds, sources)
    groups = _grouped(unanswered, embed, "unanswered")[:limit] + _grouped(not_helpful, embed, "not_helpful")[:limit]
    for g in groups:
        g["nearest"] = _nearest(searcher, g, g["voted_articles"]) if searcher else []
    return groups


def phrasing(searcher: Searcher, question: str, article_id: str, lang: str | None) -> dict | None:
    """The agent console's "copy as phrasing": the customer's question, redacted, as a
    `questions:` block of the chosen article in `lang` (or the question's language)."""
    found = searcher.article(article_id, lang)
    if found is None:
        return None
    text = redact(" ".join(question.split()))
    out = snippet(found[0], [text])
    out["question"] = text
    out["usable"] = usable(text) is not None
    return out


def to_text(groups: list[dict]) -> str:
    if not groups:
        return "No unanswered or \"not helpful\" questions in this period."
    lines = []
    for g in groups:
        title = "unanswered" if g["kind"] == "unanswered" else "not helpful"
        lines.append(f"[{title}] {g['count']}×  {g['label']}")
        lines += [f"    · {q['text']} ({q['count']}, {q['lang'] or '?'})" for q in g["questions"][1:6]]
        for n in g["nearest"]:
            score = "voted" if n["score"] is None else f"{n['score']:.2f}"
            lines.append(f"  nearest: {n['article_id']} ({score}) {n['title']}")
        best = next((s for n in g["nearest"][:1] for s in n["snippets"] if s["added"]), None)
        if best:
            lines.append("  " + re.sub(r"\n(?=.)", "\n  ", best["yaml"].rstrip("\n")))
        lines.append("")
    return "\n".join(lines)
