"""Training groups for the second stage (a cross-encoder), drawn from the corpus alone.

Never from dev.jsonl, the members' set or XQuAD: those measure it. A group is one
question with the section that answers it and sections that do not, ranked by the
first stage as it would rank them for a member (so the negatives are the ones the
second stage must learn to push down: its own neighbours):

- question: a member phrasing from `questions:` -> the article's section the first
  stage ranks highest; negatives: the first stage's top sections of other articles;
- tag: a keyword from `tags:`, the same way;
- heading: a section heading -> its own section; negatives: sibling sections of the
  same article (the heading must pick its own steps) and other articles' top sections;
- title: an article title -> its intro;
- cross: a phrasing or tag -> the same section in another language of its article,
  with negatives drawn from both languages. Without these a cross-encoder learns that
  a section in another language is never the answer (trained on same-language pairs
  only, it sent the cross-lingual slice of dev from 0.81 to 0.06), although members
  ask in German about articles that exist only in Russian.

The first stage is asked with the question's own article's phrasings still in the
index, which makes the gold article easy to find; that does not matter here, since
only the *other* articles' sections are kept as negatives.

Leaving categories out (`exclude_categories`) drops them entirely: no question, no
positive and no negative of theirs, as for a portal section added after training.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ..corpus import Article, Corpus, Section
from ..rerank.cross import section_text
from ..search import Searcher


@dataclass
class Group:
    query: str
    positive: str
    negatives: list[str]
    article: str  # the gold article id
    kind: str


@dataclass
class Groups:
    groups: list[Group] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, group: Group) -> None:
        self.groups.append(group)
        self.counts[group.kind] = self.counts.get(group.kind, 0) + 1


def _first_stage_candidates(searcher: Searcher, query: str, lang: str, depth: int) -> list[tuple[Article, Section]]:
    result = searcher.search(query, lang=lang, limit=depth, per_article=2)
    return [(h.article, h.section) for h in result.hits]


def _negatives(candidates, article_id: str, excluded: set[str], n: int) -> list[str]:
    return [section_text(a, s) for a, s in candidates if a.id != article_id and a.category not in excluded][:n]


def make_groups(corpus: Corpus, searcher: Searcher, exclude_categories: set[str] = frozenset(),
                negatives: int = 7, depth: int = 12, seed: int = 13) -> Groups:
    """Every training group of `corpus` outside `exclude_categories`."""
    rng = random.Random(seed)
    excluded = set(exclude_categories)
    out = Groups()
    versions = {(a.id, a.lang): a for a in corpus.articles}
    for article in corpus.articles:
        if article.category in excluded or not article.sections:
            continue
        asks = [("question", q) for q in article.questions] + [("tag", t) for t in article.tags]
        for kind, text in asks:
            candidates = _first_stage_candidates(searcher, text, article.lang, depth)
            own = [s for a, s in candidates if a.id == article.id and a.lang == article.lang]
            best = own[0] if own else article.sections[0]
            negs = _negatives(candidates, article.id, excluded, negatives)
            if negs:
                out.add(Group(text, section_text(article, best), negs, article.id, kind))
            cross = _cross_group(text, article, best, candidates, versions, excluded, negatives, rng)
            if cross:
                out.add(cross)
        _outline_groups(article, searcher, excluded, negatives, depth, rng, out)
    rng.shuffle(out.groups)
    return out


def _outline_groups(article: Article, searcher: Searcher, excluded: set[str], negatives: int, depth: int,
                    rng: random.Random, out: Groups) -> None:
    """Headings -> their own sections (siblings as the hardest negatives); the title -> the intro."""
    steps = [s for s in article.sections[1:] if s.plain.strip() and s.title.strip()]
    for s in steps:
        siblings = [section_text(article, o) for o in steps if o is not s]
        rng.shuffle(siblings)
        others = _negatives(_first_stage_candidates(searcher, s.title, article.lang, depth), article.id, excluded,
                            negatives)
        negs = (siblings[:2] + others)[:negatives]
        if negs:
            out.add(Group(s.title, section_text(article, s), negs, article.id, "heading"))
    intro = article.sections[0]
    if intro.plain.strip():
        negs = _negatives(_first_stage_candidates(searcher, article.title, article.lang, depth), article.id,
                          excluded, negatives)
        if negs:
            out.add(Group(article.title, section_text(article, intro), negs, article.id, "title"))


def _translation(versions: dict, article_id: str, position: int, lang: str) -> tuple[Article, Section] | None:
    other = versions.get((article_id, lang))
    if other is None:
        return None
    return next(((other, s) for s in other.sections if s.position == position), None)


def _cross_group(text: str, article: Article, best: Section, candidates, versions: dict, excluded: set[str],
                 negatives: int, rng: random.Random) -> Group | None:
    """`text` -> `best` in one other language of its article (chosen at random); each
    negative in the question's language or, where it exists, that other language, so
    that the language of a section says nothing about whether it answers."""
    langs = [lang for (aid, lang) in versions if aid == article.id and lang != article.lang]
    if not langs:
        return None
    lang = rng.choice(sorted(langs))
    positive = _translation(versions, article.id, best.position, lang)
    if positive is None:
        return None
    negs = []
    for a, s in candidates:
        if a.id == article.id or a.category in excluded:
            continue
        moved = _translation(versions, a.id, s.position, lang) if rng.random() < 0.5 else None
        negs.append(section_text(*(moved or (a, s))))
    if not negs:
        return None
    return Group(text, section_text(*positive), negs[:negatives], article.id, "cross")
