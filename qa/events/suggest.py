"""Query suggestions: completions as a member types, and the most asked questions for
an empty box (like Algolia Query Suggestions or Typesense's popular queries).

Two sources:
- questions members asked that got an answer they opened or found helpful, from the
  event store: only questions asked (and their answer opened) in at least `MIN_COUNT`
  different hours, redacted once more on the way out, and left out when anything in them
  was personal data (a placeholder such as `[phone]`) or when any asker said the
  answer did not help. The store knows no member (by design), so hours stand in for
  askers: one member asking the same question again and again in one sitting (Enter
  again, the widget reopened, another replica answering the final question) counts
  once, not three times;
- the articles' own phrasings (`questions:` in the corpus), for a new service whose
  store is still empty.
Suggestions are in the page's language and for its country (a question from members
in Kazakhstan is not offered in Germany).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from ..corpus import ALL, Article
from .redact import PLACEHOLDERS, has_personal_data
from .store import MEMBER_SOURCES, EventStore, normalize

MIN_COUNT = 3  # different hours the same question was asked (and its answer opened) in
HOUR = 3600
MAX_LENGTH = 120  # characters: a long question is a story, not a suggestion
SINCE_DAYS = 30
REFRESH_SECONDS = 60.0  # how long the popular questions are kept in memory

# Members' questions (not the agent console's or /docs', not a prefix its session
# superseded: qa/events/sessions.py) with an answer that was opened
# or voted helpful, never voted not helpful; counted in hours (CAST truncates in SQLite
# and rounds in PostgreSQL: either way, one bucket per hour).
HOURS = f"COUNT(DISTINCT CAST(q.ts / {HOUR} AS INTEGER))"
POPULAR_SQL = (
    f"SELECT MIN(q.text), q.norm, q.lang, q.country, {HOURS} FROM queries q"
    " WHERE q.ts >= ? AND q.answered = 1 AND q.superseded = 0"
    " AND q.source IN (" + ", ".join(f"'{s}'" for s in MEMBER_SOURCES) + ")"
    " AND EXISTS (SELECT 1 FROM feedback f WHERE f.query_id = q.id"
    "   AND (f.kind = 'opened' OR (f.kind = 'helpful' AND f.helpful = 1)))"
    " AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.query_id = q.id AND f.kind = 'helpful' AND f.helpful = 0)"
    f" GROUP BY q.norm, q.lang, q.country HAVING {HOURS} >= ? ORDER BY {HOURS} DESC, COUNT(*) DESC"
)


@dataclass
class Suggestion:
    text: str
    lang: str
    countries: list[str]  # where it applies; ALL for everywhere
    count: int  # in how many different hours it was asked (0: an article's phrasing)
    source: str  # "asked" or "article"
    category: str = ""
    norm: str = ""
    order: int = 0  # a phrasing's place in its article's `questions:` (the first is the most typical)

    def __post_init__(self):
        self.norm = self.norm or normalize(self.text)


def safe(text: str) -> bool:
    """A question fit to show to other members: short, and nothing personal in it,
    neither as stored (a placeholder) nor found again now."""
    if not 3 <= len(text) <= MAX_LENGTH:
        return False
    if any(p in text for p in PLACEHOLDERS):
        return False
    return not has_personal_data(text)  # redaction finds nothing in it (redact() normalises first)


def popular(store: EventStore, since_seconds: float = SINCE_DAYS * 86400, min_count: int = MIN_COUNT,
            now: float | None = None) -> list[Suggestion]:
    """The store's questions that may be suggested, most asked first."""
    since = (now or time.time()) - since_seconds
    rows = store.query(POPULAR_SQL, (since, max(2, min_count)))
    return [Suggestion(text=text.strip(), lang=lang, countries=[country] if country else [ALL], count=int(n),
                       source="asked", norm=norm)
            for text, norm, lang, country, n in rows if safe(text)]


def phrasings(articles: list[Article]) -> list[Suggestion]:
    """The articles' `questions:`, one suggestion each (file order)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for a in articles:
        for n, q in enumerate(a.questions):
            key = (a.lang, normalize(q))
            if key not in seen and safe(q):
                seen.add(key)
                out.append(Suggestion(text=q, lang=a.lang, countries=list(a.countries), count=0, source="article",
                                      category=a.category, order=n))
    return out


def _applies(s: Suggestion, lang: str | None, country: str | None, category: str | None) -> bool:
    if lang and s.lang != lang:
        return False
    if country and ALL not in s.countries and country not in s.countries:
        return False
    return not (category and s.category and s.category != category)


def _matches(s: Suggestion, prefix: str) -> int:
    """0: starts with the typed text, 1: a later word does, -1: no match."""
    if s.norm.startswith(prefix):
        return 0
    return 1 if f" {prefix}" in s.norm else -1


class Suggester:
    """Popular questions (refreshed from the store every `REFRESH_SECONDS`) and the
    articles' phrasings of the loaded index."""

    def __init__(self, min_count: int = MIN_COUNT, refresh: float = REFRESH_SECONDS):
        self.min_count, self.refresh = min_count, refresh
        self._popular: list[Suggestion] = []
        self._loaded_at = -1e18
        self._phrasings: tuple[list[Article] | None, list[Suggestion]] = (None, [])
        self._lock = threading.Lock()

    def _asked(self, store: EventStore | None) -> list[Suggestion]:
        if store is None:
            return []
        if time.monotonic() - self._loaded_at > self.refresh:
            with self._lock:
                if time.monotonic() - self._loaded_at > self.refresh:
                    self._popular = popular(store, min_count=self.min_count)
                    self._loaded_at = time.monotonic()
        return self._popular

    def _articles(self, articles: list[Article]) -> list[Suggestion]:
        if self._phrasings[0] is not articles:  # a new index was loaded
            self._phrasings = (articles, phrasings(articles))
        return self._phrasings[1]

    def warm(self, articles: list[Article]) -> None:
        """Read a newly loaded index's phrasings now (the service calls this after each
        load), not in the first member's request: a few hundred ms per thousand."""
        self._articles(articles)

    def suggest(self, typed: str, store: EventStore | None, articles: list[Article], lang: str | None = None,
                country: str | None = None, category: str | None = None, limit: int = 6) -> list[Suggestion]:
        """Completions of `typed` (the most asked questions when it is empty): asked
        questions first, by how often, then phrasings; each text once."""
        prefix = normalize(typed)
        # A category (a tile of the portal) narrows to its articles' phrasings.
        asked = [] if category else [s for s in self._asked(store) if _applies(s, lang, country, None)]
        own = [s for s in self._articles(articles) if _applies(s, lang, country, category)]
        if prefix:  # asked first (most asked first), then phrasings; each: starting with it, then short
            ranked = sorted(
                ((m, n, s) for n, s in enumerate(asked + own) if (m := _matches(s, prefix)) >= 0 and s.norm != prefix),
                key=lambda t: (t[2].source != "asked", t[0], -t[2].count, len(t[2].text), t[1]),
            )
            candidates = [s for _, _, s in ranked]
        else:  # the most asked, then each article's first phrasing before any second one
            candidates = asked + sorted(own, key=lambda s: s.order)
        out, seen = [], set()
        for s in candidates:
            if s.norm not in seen:
                seen.add(s.norm)
                out.append(s)
            if len(out) >= limit:
                break
        return out
