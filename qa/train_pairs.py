"""Training pairs for `qa train`, drawn from the corpus alone.

Never from dev.jsonl or XQuAD: those measure the trained model. Kinds of pairs
(anchor -> positive, texts carry e5's `query: ` / `passage: ` prefixes):

- translation: a section -> the same section (same article id and position) in
  another language, both as passages: cross-lingual alignment;
- heading: a section heading -> its section's text, with a sibling section of the
  same article as hard negative (the heading must pick its own text, not the
  article's other steps);
- title: an article title -> its intro;
- question: a member phrasing from `questions:` -> the article's section the base
  model ranks first for it, in the form the index embeds (`title. heading\\ntext`);
- tag: a member keyword from `tags:` -> likewise.

Questions and tags point to an article, not a section: "best section" is the base
model's choice among that article's sections.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from .corpus import Article, Corpus, Section

KINDS = ("translation", "heading", "title", "question", "tag")
MAX_WORDS = 120  # e5 reads 512 tokens; training reads the first 128 (a step's cost)


def _cut(text: str, words: int = MAX_WORDS) -> str:
    return " ".join(text.split()[:words])


def indexed_form(article: Article, section: Section) -> str:
    """The passage text as the index embeds it (see qa.index.passage_texts)."""
    head = article.title if section.position == 0 else f"{article.title}. {section.title}"
    return _cut(f"{head}\n{section.plain}")


@dataclass
class Pairs:
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (anchor, positive)
    triplets: list[tuple[str, str, str]] = field(default_factory=list)  # (anchor, positive, negative)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, anchor: str, positive: str, negative: str | None = None) -> None:
        if negative is None:
            self.pairs.append((anchor, positive))
        else:
            self.triplets.append((anchor, positive, negative))
        self.counts[kind] = self.counts.get(kind, 0) + 1


def training_articles(corpus: Corpus, exclude_categories: set[str]) -> list[Article]:
    return [a for a in corpus.articles if a.category not in exclude_categories]


def _translation_pairs(articles: list[Article], out: Pairs, rng: random.Random) -> None:
    by_id: dict[str, list[Article]] = defaultdict(list)
    for a in articles:
        by_id[a.id].append(a)
    for versions in by_id.values():
        versions.sort(key=lambda a: a.lang)
        for i, a in enumerate(versions):
            for b in versions[i + 1 :]:
                if len(a.sections) != len(b.sections):
                    continue  # positions only match when both have the same outline
                for sa, sb in zip(a.sections, b.sections):
                    first, second = (sa, sb) if rng.random() < 0.5 else (sb, sa)
                    art = {sa.lang: a, sb.lang: b}
                    out.add(
                        "translation",
                        "passage: " + indexed_form(art[first.lang], first),
                        "passage: " + indexed_form(art[second.lang], second),
                    )


def _outline_pairs(articles: list[Article], out: Pairs, rng: random.Random) -> None:
    for a in articles:
        intro = a.sections[0] if a.sections else None
        if intro is not None and intro.plain.strip():
            out.add("title", "query: " + a.title, "passage: " + _cut(intro.plain))
        for s in a.sections[1:]:
            if not s.plain.strip():
                continue
            siblings = [o for o in a.sections[1:] if o is not s and o.plain.strip()]
            negative = "passage: " + _cut(rng.choice(siblings).plain) if siblings else None
            if negative is None:
                out.add("heading", "query: " + s.title, "passage: " + _cut(s.plain))
            else:
                out.add("heading", "query: " + s.title, "passage: " + _cut(s.plain), negative)


def _member_pairs(articles: list[Article], out: Pairs, encode) -> None:
    """questions and tags -> the article's best section by the base model (`encode`:
    list of texts -> normalised vectors)."""
    asks = [(a, kind, text) for a in articles for kind, texts in (("question", a.questions), ("tag", a.tags)) for text in texts]
    if not asks:
        return
    passages = {id(a): ["passage: " + indexed_form(a, s) for s in a.sections] for a in articles if a.sections}
    flat = [p for ps in passages.values() for p in ps]
    vectors = dict(zip(flat, encode(flat)))
    queries = encode(["query: " + text for _, _, text in asks])
    for (a, kind, text), q in zip(asks, queries):
        options = passages.get(id(a))
        if not options:
            continue
        best = options[int(np.argmax([vectors[p] @ q for p in options]))]
        out.add(kind, "query: " + text, best)


def make_pairs(corpus: Corpus, encode, exclude_categories: set[str] = frozenset(), seed: int = 9) -> Pairs:
    """All training examples from the corpus, leaving out `exclude_categories`."""
    rng = random.Random(seed)
    articles = training_articles(corpus, set(exclude_categories))
    out = Pairs()
    _translation_pairs(articles, out, rng)
    _outline_pairs(articles, out, rng)
    _member_pairs(articles, out, encode)
    # Identical anchors with different positives (a tag used twice) are duplicates
    # for in-batch negatives; keep the first.
    seen: set[str] = set()
    out.pairs = [p for p in out.pairs if not (p[0] in seen or seen.add(p[0]))]
    rng.shuffle(out.pairs)
    rng.shuffle(out.triplets)
    return out
