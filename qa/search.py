"""Search step: a question -> ranked, country-eligible sections in the user's language.

Ranking, in order:
1. Dense: the query vector (centred with its language's mean, see `Index.center`)
   against every chunk; a section scores its best chunk.
2. Lexical: BM25 over stemmed titles, tags and text, squashed into [0, 1) by
   `bm25 / (bm25 + LEXICAL_HALF)` so a strong keyword match adds at most
   `LEXICAL_WEIGHT` to the cosine and a weak one adds little. Unlike reciprocal
   rank fusion this keeps the dense score's scale, so lexical evidence can only
   re-order close calls instead of dragging good dense matches down.
3. Translations: versions of the same section (same article id and position) are
   one result; it scores its best version and is shown in the user's language
   when that version exists.
4. Article context: each section gets a share of its article's best section score,
   so a section of the clearly right article beats a lone lucky section elsewhere.
5. Country: ineligible sections are dropped. A section scoped to the user's country
   that scores within `country_margin` of its article's best general section is
   placed just above it: for a member in Kazakhstan "how do I pay" should open on
   the Kazakhstan section, but "my card payment failed" should not.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from .corpus import ALL, LANGUAGES, Article, Section
from .encoder import Encoder
from .index import Index
from .language import UNKNOWN, detect_language


BM25_THRESHOLD = 0.15


@dataclass
class Ranking:
    """Weights of the ranking; defaults tuned on the dev set (docs/quality.md)."""

    lexical_weight: float = 0.1
    lexical_half: float = 16.0
    article_weight: float = 0.3
    country_margin: float = 0.15
    steps_bonus: float = 0.03  # the product answers with step-by-step sections
    own_language_bonus: float = 0.0
    dense: bool = True
    lexical: bool = True
    threshold: float = 0.33
    per_article: int = 2

    @classmethod
    def for_retrieval(cls, mode: str = "hybrid", threshold: float | None = None) -> "Ranking":
        """The product's ranking ('hybrid') or a single-signal one ('dense', 'bm25')."""
        if mode == "hybrid":
            ranking = cls()
        elif mode == "dense":
            ranking = cls(lexical=False)
        elif mode == "bm25":
            # BM25 scores are squashed into [0, 1) and rarely reach cosine levels.
            ranking = cls(dense=False, threshold=BM25_THRESHOLD)
        else:
            raise ValueError(f"unknown retrieval mode '{mode}' (hybrid, dense, bm25)")
        if threshold is not None:
            ranking.threshold = threshold
        return ranking


@dataclass
class Hit:
    section: Section
    article: Article
    score: float
    available_languages: list[str]


@dataclass
class SearchResult:
    query: str
    query_lang: str
    answered: bool
    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)


class Searcher:
    def __init__(self, index: Index, encoder: Encoder | None, ranking: Ranking | None = None):
        self.index = index
        self.encoder = encoder
        self.ranking = ranking or Ranking()
        # (article id, position) -> {lang: section number}: the translations of a section
        self.versions: dict[tuple[str, int], dict[str, int]] = defaultdict(dict)
        # (article id, lang) -> article number
        self.article_by_id: dict[tuple[str, str], int] = {}
        # article number -> its section numbers, in order
        self.article_sections: dict[int, list[int]] = defaultdict(list)
        for a_no, a in enumerate(index.articles):
            self.article_by_id[(a.id, a.lang)] = a_no
        for s_no, s in enumerate(index.sections):
            self.versions[(s.article_id, s.position)][s.lang] = s_no
            self.article_sections[int(index.section_article[s_no])].append(s_no)
        self.categories = sorted({a.category for a in index.articles})
        self.article_langs: dict[str, list[str]] = defaultdict(list)
        for a in index.articles:
            self.article_langs[a.id].append(a.lang)
        for langs in self.article_langs.values():
            langs.sort(key=LANGUAGES.index)

    # -- scoring -----------------------------------------------------------------
    def _dense_scores(self, question: str, lang: str | None, timings: dict) -> tuple[np.ndarray, np.ndarray]:
        t = time.perf_counter()
        q = self.encoder.encode_queries([question])
        timings["encode_ms"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        q = self.index.center(q, lang)
        n = self.index.faiss_index.ntotal
        k = min(n, 400)
        scores, rows = self.index.faiss_index.search(q, k)
        # Rows outside the k nearest count as unrelated (0).
        sections = np.zeros(len(self.index.sections), dtype=np.float32)
        articles = np.zeros(len(self.index.articles), dtype=np.float32)
        found = rows[0][rows[0] >= 0]
        found_scores = scores[0][rows[0] >= 0]
        sec = self.index.rows[found]
        whole = self.index.article_rows[found]
        np.maximum.at(sections, sec[~whole], found_scores[~whole])
        np.maximum.at(articles, self.index.section_article[sec[whole]], found_scores[whole])
        timings["faiss_ms"] = (time.perf_counter() - t) * 1000
        return sections, articles

    def scores(self, question: str, lang: str | None, timings: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Relevance per section and per article file (from the rows that speak for
        a whole article), before translation grouping and filters."""
        timings = {} if timings is None else timings
        r = self.ranking
        total = np.zeros(len(self.index.sections), dtype=np.float32)
        article_total = np.zeros(len(self.index.articles), dtype=np.float32)
        if r.dense and self.encoder is not None:
            sections, articles = self._dense_scores(question, lang, timings)
            total += sections
            article_total += articles
        if r.lexical:
            t = time.perf_counter()
            bm25 = self.index.lexical.scores(question, lang)
            squashed = bm25 / (bm25 + r.lexical_half)
            total += (r.lexical_weight if r.dense else 1.0) * squashed
            timings["lexical_ms"] = (time.perf_counter() - t) * 1000
        return total, article_total

    # -- ranking -----------------------------------------------------------------
    def search(
        self,
        question: str,
        lang: str | None = None,
        country: str | None = None,
        category: str | None = None,
        limit: int = 5,
        per_article: int | None = None,
    ) -> SearchResult:
        timings: dict[str, float] = {}
        query_lang = lang or detect_language(question)
        scoring_lang = None if query_lang == UNKNOWN else query_lang
        section_scores, article_scores = self.scores(question, scoring_lang, timings)

        t = time.perf_counter()
        r = self.ranking
        idx = self.index
        # One candidate per translated section: its best version's score.
        best: dict[tuple[str, int], float] = {}
        for s_no in np.flatnonzero(section_scores > 0):
            s = idx.sections[s_no]
            key = (s.article_id, s.position)
            score = float(section_scores[s_no]) + (r.own_language_bonus if s.lang == scoring_lang else 0.0)
            if score > best.get(key, -1.0):
                best[key] = score
        article_best: dict[str, float] = defaultdict(float)
        for a_no in np.flatnonzero(article_scores > 0):
            article_id = idx.articles[a_no].id
            article_best[article_id] = max(article_best[article_id], float(article_scores[a_no]))
        for (article_id, _), score in best.items():
            article_best[article_id] = max(article_best[article_id], score)

        ranked: list[tuple[float, float, int]] = []  # (final, before country lift, section)
        for key, score in best.items():
            s_no = self._display_version(key, scoring_lang)
            section = idx.sections[s_no]
            article = idx.articles[idx.section_article[s_no]]
            if category and article.category != category:
                continue
            if country and not (ALL in section.countries or country in section.countries):
                continue
            final = (1 - r.article_weight) * score + r.article_weight * article_best[key[0]]
            if section.steps:
                final += r.steps_bonus
            ranked.append((final, final, s_no))
        if country:
            ranked = self._lift_country_sections(ranked, country)
        ranked.sort(key=lambda x: (-x[0], -x[1]))

        hits: list[Hit] = []
        per_article = r.per_article if per_article is None else per_article
        shown: dict[str, int] = defaultdict(int)
        for score, _, s_no in ranked:
            section = idx.sections[s_no]
            if shown[section.article_id] >= per_article:
                continue
            shown[section.article_id] += 1
            hits.append(
                Hit(
                    section=section,
                    article=idx.articles[idx.section_article[s_no]],
                    score=round(score, 4),
                    available_languages=self.article_langs[section.article_id],
                )
            )
            if len(hits) >= limit:
                break
        timings["rank_ms"] = (time.perf_counter() - t) * 1000
        answered = bool(hits) and hits[0].score >= r.threshold
        return SearchResult(question, query_lang, answered, hits, timings)

    def _lift_country_sections(self, ranked: list[tuple[float, float, int]], country: str):
        general_best: dict[str, float] = defaultdict(lambda: -1.0)
        for final, _, s_no in ranked:
            section = self.index.sections[s_no]
            if ALL in section.countries:
                general_best[section.article_id] = max(general_best[section.article_id], final)
        lifted = []
        for final, before, s_no in ranked:
            section = self.index.sections[s_no]
            top = general_best[section.article_id]
            if ALL not in section.countries and top - self.ranking.country_margin <= final < top:
                final = top + 1e-4
            lifted.append((final, before, s_no))
        return lifted

    def _display_version(self, key: tuple[str, int], lang: str | None) -> int:
        """The user's language when the section exists in it, else the portal's
        order of preference (ru, de, en)."""
        versions = self.versions[key]
        if lang in versions:
            return versions[lang]
        for lg in LANGUAGES:
            if lg in versions:
                return versions[lg]
        raise KeyError(key)

    # -- articles ----------------------------------------------------------------
    def article(self, article_id: str, lang: str | None = None) -> tuple[Article, list[Section]] | None:
        langs = self.article_langs.get(article_id)
        if not langs:
            return None
        chosen = lang if lang in langs else langs[0]
        a_no = self.article_by_id[(article_id, chosen)]
        sections = [self.index.sections[n] for n in self.article_sections[a_no]]
        return self.index.articles[a_no], sections

    def translations(self, section: Section) -> dict[str, Section]:
        """Every language version of `section`."""
        return {lg: self.index.sections[n] for lg, n in self.versions[(section.article_id, section.position)].items()}
