"""Search step: a question -> ranked, country-eligible sections in the user's language.

`signals` computes the evidence once (the costly part); `fuse` and `rank` combine it
with a `Ranking`'s weights, so tuning and evaluation reuse the product's own code.
`search` runs them, then the second stage and the rules.

Ranking, in order:
0. The question: normalised, its language detected, Latin-script Russian read into
   Cyrillic by the corpus's own Russian words (`qa.query.prepare`). That text is what
   is searched (`SearchResult.searched`).
1. Dense: the query vector (centred with its language's mean, see `Index.center`)
   against every chunk; a section scores its best chunk. A member phrasing
   (`questions:`) mapped to a section counts `phrase_weight` times its cosine, less
   what question shape alone gives a phrasing match (`qa.background`).
2. Lexical: BM25 over stemmed titles, tags, text and phrasings (with the operator's
   synonyms added to the question), relative to the question's best BM25 match:
   `bm25 / (best + lexical_half)`. A rare exact word (ОГРНИП, ELSTER) then counts
   fully however low its raw BM25, and `lexical_half` damps a question whose best
   match is itself weak. It adds at most `lexical_weight` to the cosine, keeping the
   dense score's scale, so lexical evidence re-orders close calls instead of dragging
   good dense matches down. A section that exists only in other languages than the
   question's cannot match its words: it gets the best lexical evidence of the
   question-language sections the dense side ranks highest (`_impute_lexical`).
3. Translations: versions of the same section (same article id and position) are
   one result; it scores its best version and is shown in the user's language
   when that version exists.
4. Article context: each section gets a share (`article_weight`) of its article's
   score (its best section, or its title/tags rows and phrasings), so a section of the
   clearly right article beats a lone lucky section elsewhere. Numbered steps add
   `steps_bonus`.
5. Filters and country: a category keeps only its sections; ineligible countries'
   sections are dropped. A section scoped to the user's country that scores within
   `country_margin` of its article's best general section is placed just above it:
   for a member in Kazakhstan "how do I pay" should open on the Kazakhstan section,
   but "my card payment failed" should not. No article fills more than `per_article`
   results.
6. Answered: the fitted no-answer decision (`qa.answerability`, over
   `SearchResult.features`) where it was fitted on this index's articles; otherwise
   the top result's confidence, fused like its score but with lexical evidence in
   absolute terms (`answer_half`, see `Searcher._confidence`), against `threshold`.

After ranking (`search`):
7. Second stage: a final question (`rerank=True`) on a service with a reranker has
   its top candidates reread together with the question (qa/rerank/).
8. Rules: the support team's hide, boost and pin (qa/rules.py) act on the ranked
   list, ranked with room to spare; a pin makes the answer `answered`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field, replace

import numpy as np

from . import rules
from .background import Background, Level
from .corpus import ALL, LANGUAGES, Article, Section
from .coverage import Coverage
from .encoder import Encoder
from .encoder.queries import Encoded, QueryVectors
from .index import ROW_ARTICLE, ROW_PHRASING, ROW_SECTION, Index
from .language import UNKNOWN
from .query import PreparedQuestion, Vocabulary, prepare
from .ranking import Ranking
from .rerank import Reranker
from .rerank.late import group_scores


@dataclass
class Hit:
    section: Section
    article: Article
    score: float
    available_languages: list[str]
    group: int = -1  # the section in all its translations (`Searcher.groups`)
    rule: str | None = None  # the rule that pinned or boosted it (qa/rules.py)
    second_stage: float | None = None  # what the second stage added to `score` (qa/rerank/)


@dataclass
class Signals:
    """The evidence for one question, before fusion: per section (S) or per article file (A)."""

    query_lang: str
    scoring_lang: str | None
    timings: dict[str, float]
    dense: np.ndarray  # S: best cosine of the section's own rows
    dense_article: np.ndarray  # A: best cosine of the article's title/tags rows
    phrase: np.ndarray  # S: best cosine of a member phrasing mapped to the section
    phrase_article: np.ndarray  # A: best cosine of the article's phrasings
    lexical: np.ndarray  # S: BM25 of the section
    lexical_phrase: np.ndarray  # S: best BM25 of a phrasing mapped to the section
    background: Level = field(default_factory=lambda: Level(0.0, 0.0))  # how close unrelated rows come
    text: str = ""  # the question as searched
    near_unanswerable: float = 0.0  # cosine to the closest written question without an answer
    query_tokens: np.ndarray | None = None  # the question's token states (late interaction), when there are any

    @classmethod
    def empty(cls, query_lang: str, scoring_lang: str | None, n_sections: int, n_files: int) -> Signals:
        s, a = (lambda: np.zeros(n_sections, np.float32)), (lambda: np.zeros(n_files, np.float32))
        return cls(query_lang, scoring_lang, {}, s(), a(), s(), a(), s(), s())


@dataclass
class SearchResult:
    query: str
    query_lang: str
    answered: bool
    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)
    confidence: float = 0.0  # the top result's fused score with absolute lexical evidence
    answer_probability: float | None = None  # of the no-answer decision, where a model is fitted
    features: np.ndarray | None = None  # what the no-answer decision saw (`qa.answerability.FEATURES`)
    searched: str = ""  # the text searched: normalised, Latin-script Russian in Cyrillic (qa/query.py)
    evidence: Evidence | None = None  # what ranking computed, for rules and explanations
    rules: list = field(default_factory=list)  # `qa.rules.Fired`: the rules that acted
    reranked: bool = False  # the second stage reread the top candidates (qa/rerank/)


@dataclass
class Evidence:
    """Ranking's own arrays for one question, kept (by reference) so that rules
    (`qa.rules.apply`) and explanations (`qa.explain`) need not recompute them."""

    signals: Signals
    ranking: Ranking
    group: np.ndarray  # fused score per group
    article: np.ndarray  # fused score per article id
    unlifted: np.ndarray  # per group, with article context and steps bonus, before the country lift
    final: np.ndarray  # per group, after the country lift and late interaction (-inf: not eligible)
    shown: np.ndarray  # group -> the section shown
    late: dict[int, float] = field(default_factory=dict)  # group -> what late interaction added


IMPUTE_POOL = 20  # candidates whose lexical evidence a section missing the question's language gets


class Searcher:
    def __init__(
        self, index: Index, encoder: Encoder | None, ranking: Ranking | None = None, query_cache: int = 0,
        reranker: Reranker | None = None, typo_tolerance: bool = True,
    ):
        self.index = index
        self.encoder = encoder
        self.reranker = reranker  # the second stage, for final questions (qa/rerank/)
        self.ranking = ranking or Ranking.tuned(encoder.name if encoder else None)
        # Questions -> vectors, with an LRU of recent ones (popular questions repeat,
        # search-as-you-type re-sends prefixes), several in one call for the API's batcher.
        # Token states too where the build has late interaction's (qa/rerank/late.py).
        self.query_vectors = (
            QueryVectors(encoder, with_tokens=index.late is not None, cache_size=query_cache) if encoder else None
        )
        sections, articles = index.sections, index.articles
        self.categories = sorted({a.category for a in articles})

        # A "group" is one section in all its translations (same article id and position);
        # ranking happens per group, display per language version.
        group_ids: dict[tuple[str, int], int] = {}
        versions: dict[tuple[str, int], dict[str, int]] = defaultdict(dict)  # group -> lang -> section
        self.section_group = np.empty(len(sections), dtype=np.int64)
        for s_no, sec in enumerate(sections):
            key = (sec.article_id, sec.position)
            self.section_group[s_no] = group_ids.setdefault(key, len(group_ids))
            versions[key][sec.lang] = s_no
        self.groups = list(group_ids)
        self.group_of = group_ids  # (article id, position) -> group
        self.group_sections = [list(versions[k].values()) for k in self.groups]  # group -> its sections

        article_ids = sorted({a.id for a in articles})
        self.article_no = {a: i for i, a in enumerate(article_ids)}  # article id -> number
        self.group_article = np.array([self.article_no[a] for a, _ in self.groups], dtype=np.int64)
        self.max_groups_per_article = int(np.bincount(self.group_article).max()) if self.groups else 1
        self.file_article = np.array([self.article_no[a.id] for a in articles], dtype=np.int64)

        # Which version each group shows, per user language (None: portal order ru, de, en).
        self.display: dict[str | None, np.ndarray] = {}
        for lang in (None, *LANGUAGES):
            order = ([lang] if lang else []) + list(LANGUAGES)
            self.display[lang] = np.array(
                [next(v[lg] for lg in order if lg in v) for v in (versions[k] for k in self.groups)],
                dtype=np.int64,
            )
        self.section_has_steps = np.array([bool(sec.steps) for sec in sections])
        self.section_lang = np.array([sec.lang for sec in sections])
        self.section_lang_no = np.array([LANGUAGES.index(sec.lang) for sec in sections], dtype=np.int64)
        self.file_lang_no = np.array([LANGUAGES.index(a.lang) for a in articles], dtype=np.int64)
        self.group_has_lang = {
            lang: np.array([lang in versions[k] for k in self.groups], dtype=bool) for lang in LANGUAGES
        }
        self.section_general = np.array([ALL in sec.countries for sec in sections])
        self.section_category = np.array([articles[a].category for a in index.section_article])
        self._country_masks: dict[str, np.ndarray] = {}
        self.background = Background(index)
        self.coverage = Coverage(index)
        # Tells Latin-script Russian (qa/query.py), and spells misspelt words as the corpus does (qa/typos.py).
        self.vocabulary = Vocabulary.from_index(index, typo_tolerance)

        self.article_by_id: dict[tuple[str, str], int] = {}
        self.article_sections: dict[int, list[int]] = defaultdict(list)  # article file -> sections
        for a_no, a in enumerate(articles):
            self.article_by_id[(a.id, a.lang)] = a_no
        for s_no in range(len(sections)):
            self.article_sections[int(index.section_article[s_no])].append(s_no)
        self.article_langs: dict[str, list[str]] = defaultdict(list)
        for a in articles:
            self.article_langs[a.id].append(a.lang)
        for langs in self.article_langs.values():
            langs.sort(key=LANGUAGES.index)

    def _country_mask(self, country: str) -> np.ndarray:
        """Sections that apply in `country`."""
        if country not in self._country_masks:
            self._country_masks[country] = np.array(
                [ALL in sec.countries or country in sec.countries for sec in self.index.sections]
            )
        return self._country_masks[country]

    # -- scoring -----------------------------------------------------------------
    def prepare(self, question: str, lang: str | None = None) -> PreparedQuestion:
        """The question normalised, its language detected, Latin-script Russian in
        Cyrillic (qa/query.py): `search_text` is what is encoded and searched."""
        return prepare(question, self.vocabulary, lang)

    def signals(
        self, question: str, lang: str | None = None, prepared: PreparedQuestion | None = None,
        encoded: Encoded | None = None,
    ) -> Signals:
        """Every piece of evidence for `question` (the costly part of a search).
        `prepared` and `encoded`: `prepare`'s result and the searched text's vector when
        the caller has them already (the API encodes concurrent questions together)."""
        prepared = prepared or self.prepare(question, lang)
        question, query_lang = prepared.search_text, prepared.lang
        scoring_lang = None if query_lang == UNKNOWN else query_lang
        n_sections = len(self.index.sections)
        sig = Signals.empty(query_lang, scoring_lang, n_sections, len(self.index.articles))
        sig.text = question
        if self.ranking.dense and self.encoder is not None:
            self._dense(question, scoring_lang, sig, encoded)
        if self.ranking.lexical:
            t = time.perf_counter()
            bm25 = self.index.lexical.scores(question, scoring_lang, self.index.synonyms.expand(question))
            sig.lexical = bm25[:n_sections]
            if len(bm25) > n_sections:  # phrasing documents follow the sections
                np.maximum.at(sig.lexical_phrase, self.index.phrasing_section, bm25[n_sections:])
            sig.timings["lexical_ms"] = (time.perf_counter() - t) * 1000
        return sig

    def _dense(self, question: str, lang: str | None, sig: Signals, encoded: Encoded | None = None) -> None:
        t = time.perf_counter()
        q, sig.query_tokens = encoded if encoded is not None else self.query_vectors.get(question)
        sig.timings["encode_ms"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        if len(self.index.unanswerable):
            sig.near_unanswerable = float((self.index.unanswerable @ q[0]).max())
        q = self.index.center(q, lang)
        sig.background = self.background.level(q, lang)
        k = min(self.index.faiss_index.ntotal, 400)
        scores, rows = self.index.faiss_index.search(q, k)
        # Rows outside the k nearest count as unrelated (0).
        ok = rows[0] >= 0
        found, found_scores = rows[0][ok], scores[0][ok]
        sec = self.index.rows[found]
        kind = self.index.row_kind[found]
        art = self.index.section_article[sec]
        for kind_no, per_section, per_article in (
            (ROW_SECTION, sig.dense, None),
            (ROW_ARTICLE, None, sig.dense_article),
            (ROW_PHRASING, sig.phrase, sig.phrase_article),
        ):
            sel = kind == kind_no
            if per_section is not None:
                np.maximum.at(per_section, sec[sel], found_scores[sel])
            if per_article is not None:
                np.maximum.at(per_article, art[sel], found_scores[sel])
        sig.timings["faiss_ms"] = (time.perf_counter() - t) * 1000

    # -- ranking -----------------------------------------------------------------
    def search(
        self,
        question: str,
        lang: str | None = None,
        country: str | None = None,
        category: str | None = None,
        limit: int = 5,
        per_article: int | None = None,
        fallback_lang: str | None = None,
        rerank: bool = False,
        prepared: PreparedQuestion | None = None,
        encoded: Encoded | None = None,
    ) -> SearchResult:
        """`lang` is the question's language (detected when None); `fallback_lang` is
        the language to answer in when it cannot be detected ("IBAN", "PV"), e.g.
        the language of the page the member is on. `rerank`: a final question (Enter,
        the agent console), reread by the second stage when the service has one; the
        as-you-type path leaves it off and stays cheap. `prepared`, `encoded`: see `signals`."""
        sig = self.signals(question, lang, prepared, encoded)
        fired = self.index.rules.matching(sig.text or question, self.index.synonyms, sig.query_lang, country, category)
        depth = self.reranker.depth if rerank and self.reranker is not None else 0
        wanted = max(limit, depth)
        result = self.rank(question, sig, country, category, 2 * wanted + 5 if fired else wanted, per_article,
                           fallback_lang)
        if depth:
            result.hits = self.reranker.rerank(sig.text or question, result.hits, result.timings)
            result.reranked = True
        # Rules (qa/rules.py) act on the ranked list, ranked with room to spare.
        if fired:
            rules.apply(self, result, fired, country, category, limit, Hit)
        result.hits = result.hits[:limit]
        return result

    def fuse(self, sig: Signals, ranking: Ranking | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Score per group (a section in all its translations) and per article id."""
        r = ranking or self.ranking
        lexical = np.maximum(sig.lexical, sig.lexical_phrase)
        top = float(lexical.max()) if len(lexical) else 0.0
        # Relative to the best lexical match of this question, damped when even that is
        # weak: a rare exact word (ОГРНИП, ELSTER) counts fully, a stray common one little.
        lexical_norm = lexical / (top + r.lexical_half) if top > 0 else lexical
        if r.dense and self.encoder is not None:
            # What question shape alone gives a phrasing match, per language of the phrasing.
            excess = np.array([sig.background.excess.get(lang, 0.0) for lang in LANGUAGES], np.float32)
            phrase = np.where(sig.phrase > 0, sig.phrase - excess[self.section_lang_no], 0.0)
            phrase_article = np.where(sig.phrase_article > 0, sig.phrase_article - excess[self.file_lang_no], 0.0)
            dense = np.maximum(sig.dense, r.phrase_weight * phrase)
            if sig.scoring_lang:
                lexical_norm = self._impute_lexical(lexical_norm, dense, sig.scoring_lang)
            sections = dense + r.lexical_weight * lexical_norm
            files = np.maximum(sig.dense_article, r.phrase_weight * phrase_article)
        else:
            sections, files = lexical_norm, np.zeros(len(self.index.articles), np.float32)
        group = np.zeros(len(self.groups), dtype=np.float32)
        np.maximum.at(group, self.section_group, sections)
        article = np.zeros(len(self.article_no), dtype=np.float32)
        np.maximum.at(article, self.group_article, group)
        np.maximum.at(article, self.file_article, files)
        return group, article

    def _impute_lexical(self, lexical_norm: np.ndarray, dense: np.ndarray, lang: str) -> np.ndarray:
        """Lexical evidence for a section that exists only in other languages than the
        question's. Its words cannot match the question's, so its BM25 says nothing about
        it: missing evidence, not evidence against. It gets the benefit of the doubt: the
        best lexical evidence of the `IMPUTE_POOL` sections in the question's language that
        the dense side ranks highest. Between it and the best lexical match the lexical side
        is then neutral, and meaning decides. (The mean of that pool, tried first, still
        let a same-language section with the question's words win: dev cross-lingual R@1
        0.625 against 0.812 with the best; docs/quality.md.)"""
        missing = ~self.group_has_lang[lang][self.section_group]
        own = np.flatnonzero(self.section_lang == lang)
        if not missing.any() or not len(own):
            return lexical_norm
        pool = own[np.argpartition(-dense[own], min(IMPUTE_POOL, len(own)) - 1)[:IMPUTE_POOL]]
        out = lexical_norm.copy()
        out[missing] = np.maximum(out[missing], float(lexical_norm[pool].max()))
        return out

    def rank(
        self,
        question: str,
        sig: Signals,
        country: str | None = None,
        category: str | None = None,
        limit: int = 5,
        per_article: int | None = None,
        fallback_lang: str | None = None,
        ranking: Ranking | None = None,
    ) -> SearchResult:
        """Fuse the signals, apply filters and the country lift, and pick the results."""
        t = time.perf_counter()
        r = ranking or self.ranking
        group_score, article_score = self.fuse(sig, r)
        shown = self.display[sig.scoring_lang or fallback_lang]
        final = (1 - r.article_weight) * group_score + r.article_weight * article_score[self.group_article]
        final += r.steps_bonus * self.section_has_steps[shown]
        eligible = group_score > 0
        if category:
            eligible &= self.section_category[shown] == category
        if country:
            eligible &= self._country_mask(country)[shown]
        before = final.copy()
        if country:
            final = self._lift_country_sections(final, eligible, shown, r.country_margin)
        final = np.where(eligible, final, -np.inf)
        late = self._late_interaction(sig, final, r)

        per_article = r.per_article if per_article is None else per_article
        # Enough candidates to fill `limit` even if every article's groups rank together.
        n_candidates = min(int(eligible.sum()), limit * self.max_groups_per_article)
        top = np.argpartition(-final, n_candidates - 1)[:n_candidates] if n_candidates else np.array([], int)
        top = sorted(top, key=lambda g: (-final[g], -before[g]))
        hits: list[Hit] = []
        top_groups: list[int] = []
        per: dict[int, int] = defaultdict(int)
        for g in top:
            a = self.group_article[g]
            if per[a] >= per_article:
                continue
            per[a] += 1
            top_groups.append(int(g))
            section = self.index.sections[shown[g]]
            hits.append(
                Hit(
                    section=section,
                    article=self.index.articles[self.index.section_article[shown[g]]],
                    score=round(float(final[g]), 4),
                    available_languages=self.article_langs[section.article_id],
                    group=int(g),
                )
            )
            if len(hits) >= limit:
                break
        sig.timings["rank_ms"] = (time.perf_counter() - t) * 1000
        result = SearchResult(question, sig.query_lang, False, hits, sig.timings, searched=sig.text or question)
        result.evidence = Evidence(sig, r, group_score, article_score, before, final, shown, late)
        if hits:
            self._decide(result, sig, r, top_groups[0], (group_score, article_score), shown)
        return result

    def _late_interaction(self, sig: Signals, final: np.ndarray, r: Ranking) -> dict[int, float]:
        """Late interaction rereads the `late_depth` best groups (qa/rerank/late.py): each
        gets `late_weight` x how much better its MaxSim is than the worst of them, added to
        `final` in place. Only where the question has token states (an ONNX e5 build)."""
        if sig.query_tokens is None or self.index.late is None or r.late_weight <= 0:
            return {}
        t = time.perf_counter()
        ranked = np.flatnonzero(np.isfinite(final))
        top = ranked[np.argsort(-final[ranked], kind="stable")[: r.late_depth]]
        if not len(top):
            return {}
        scores = group_scores(sig.query_tokens, self.index.late, [self.group_sections[g] for g in top])
        added = r.late_weight * (scores - scores.min())
        final[top] += added
        sig.timings["late_ms"] = (time.perf_counter() - t) * 1000
        return {int(g): round(float(a), 4) for g, a in zip(top, added)}

    def _decide(self, result: SearchResult, sig: Signals, r: Ranking, group: int,
                fused: tuple[np.ndarray, np.ndarray], shown: np.ndarray) -> None:
        """`answered`: by the fitted no-answer model where there is one, else by the
        confidence against the threshold."""
        result.confidence = self._confidence(sig, r, group, fused)
        _, article_score = fused
        top_article = self.group_article[group]
        rest = np.delete(article_score, top_article)
        cover = self.coverage.cover(sig.text, sig.scoring_lang, int(self.index.section_article[shown[group]]))
        top_phrase = max(0.0, float(sig.phrase.max()) - sig.background.phrase_excess) if sig.phrase.any() else 0.0
        article_dense = np.zeros(len(self.article_no), np.float32)
        np.maximum.at(article_dense, self.group_article[self.section_group], sig.dense)
        result.features = np.array([
            result.confidence, float(sig.dense.max()), top_phrase,
            float(article_score[top_article] - (rest.max() if len(rest) else 0.0)),
            cover.covered, cover.covered_rare, cover.known, sig.background.section_high, float(np.log1p(cover.words)),
            float(np.log1p(max(sig.lexical.max(initial=0.0), sig.lexical_phrase.max(initial=0.0)))),
            float(article_dense[top_article] - np.delete(article_dense, top_article).max(initial=0.0)),
            cover.covered_weight, cover.missing_rarest, sig.near_unanswerable,
        ])
        if r.answer_model is not None and self._fitted_here(r.answer_model):
            result.answer_probability = r.answer_model.probability(result.features)
            result.answered = result.answer_probability >= r.answer_model.threshold
        else:
            result.answered = result.confidence >= r.threshold

    def _fitted_here(self, model) -> bool:
        """Whether the no-answer model was fitted on (mostly) this index's articles."""
        return model.applies_to(self.article_langs.keys())

    def _confidence(
        self, sig: Signals, r: Ranking, group: int, fused: tuple[np.ndarray, np.ndarray]
    ) -> float:
        """The top result's score with its lexical evidence taken in absolute terms
        (damped by `answer_half` instead of `lexical_half`). Ranking wants lexical
        evidence relative to the question's best match, so that a rare exact word
        counts fully; "is there an answer at all" wants it absolute, so that a stray
        match of a common word does not make a nonsense question look answered.
        `fused` is the ranking's own fusion, reused when both dampings are the same."""
        group_score, article_score = (
            self.fuse(sig, replace(r, lexical_half=r.answer_half)) if r.answer_half != r.lexical_half else fused
        )
        a = self.group_article[group]
        return round(float((1 - r.article_weight) * group_score[group] + r.article_weight * article_score[a]), 4)

    def _lift_country_sections(
        self, final: np.ndarray, eligible: np.ndarray, shown: np.ndarray, margin: float
    ) -> np.ndarray:
        general = self.section_general[shown]
        general_best = np.full(len(self.article_no), -np.inf, dtype=np.float32)
        sel = eligible & general
        np.maximum.at(general_best, self.group_article[sel], final[sel])
        top = general_best[self.group_article]
        lift = eligible & ~general & (final < top) & (final >= top - margin)
        return np.where(lift, top + 1e-4, final)

    # -- articles ----------------------------------------------------------------
    def article(self, article_id: str, lang: str | None = None) -> tuple[Article, list[Section]] | None:
        langs = self.article_langs.get(article_id)
        if not langs:
            return None
        chosen = lang if lang in langs else langs[0]
        a_no = self.article_by_id[(article_id, chosen)]
        sections = [self.index.sections[n] for n in self.article_sections[a_no]]
        return self.index.articles[a_no], sections
