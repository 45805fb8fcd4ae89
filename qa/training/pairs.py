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
- question-crosslingual: the same phrasing -> that section in the article's other
  languages (members ask in their language about articles that exist only in
  another one);
- tag: a member keyword from `tags:` -> the article's best section.

Questions and tags point to an article, not a section: "best section" is the base
model's choice among that article's sections.

Every example carries its article id as `group`: training puts at most one example
of an article in a batch, since the article's other sections and translations are
not wrong answers the model should be pushed away from.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..corpus import Article, Corpus, Section

KINDS = ("translation", "heading", "title", "question", "question-crosslingual", "tag")
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
    pair_groups: list[str] = field(default_factory=list)  # article id of each pair
    triplet_groups: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, group: str, anchor: str, positive: str, negative: str | None = None) -> None:
        if negative is None:
            self.pairs.append((anchor, positive))
            self.pair_groups.append(group)
        else:
            self.triplets.append((anchor, positive, negative))
            self.triplet_groups.append(group)
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def finish(self, rng: random.Random) -> None:
        """Drop repeated (anchor, positive) pairs (a tag used twice in an article) and
        shuffle, keeping each example with its group."""
        seen: set[tuple[str, str]] = set()
        kept = [(p, g) for p, g in zip(self.pairs, self.pair_groups) if not (p in seen or seen.add(p))]
        self.pairs, self.pair_groups = _shuffled(kept, rng)
        self.triplets, self.triplet_groups = _shuffled(list(zip(self.triplets, self.triplet_groups)), rng)


def _shuffled(examples: list[tuple], rng: random.Random) -> tuple[list, list]:
    """Shuffle (example, group) pairs; the examples and their groups, still aligned."""
    rng.shuffle(examples)
    return [e for e, _ in examples], [g for _, g in examples]


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
                        a.id,
                        "passage: " + indexed_form(art[first.lang], first),
                        "passage: " + indexed_form(art[second.lang], second),
                    )


def _outline_pairs(articles: list[Article], out: Pairs, rng: random.Random) -> None:
    for a in articles:
        intro = a.sections[0] if a.sections else None
        if intro is not None and intro.plain.strip():
            out.add("title", a.id, "query: " + a.title, "passage: " + _cut(intro.plain))
        for s in a.sections[1:]:
            if not s.plain.strip():
                continue
            siblings = [o for o in a.sections[1:] if o is not s and o.plain.strip()]
            negative = "passage: " + _cut(rng.choice(siblings).plain) if siblings else None
            if negative is None:
                out.add("heading", a.id, "query: " + s.title, "passage: " + _cut(s.plain))
            else:
                out.add("heading", a.id, "query: " + s.title, "passage: " + _cut(s.plain), negative)


def _member_pairs(articles: list[Article], out: Pairs, encode) -> None:
    """questions and tags -> the article's best section by the base model (`encode`:
    list of texts -> normalised vectors); questions also -> that section's translations."""
    asks = [
        (a, kind, text)
        for a in articles
        for kind, texts in (("question", a.questions), ("tag", a.tags))
        for text in texts
    ]
    if not asks:
        return
    passages = {id(a): ["passage: " + indexed_form(a, s) for s in a.sections] for a in articles if a.sections}
    flat = [p for ps in passages.values() for p in ps]
    vectors = dict(zip(flat, encode(flat)))
    versions: dict[str, list[Article]] = defaultdict(list)
    for a in articles:
        versions[a.id].append(a)

    def best(article: Article, q: np.ndarray) -> int:
        return int(np.argmax([vectors[p] @ q for p in passages[id(article)]]))

    queries = encode(["query: " + text for _, _, text in asks])
    for (a, kind, text), q in zip(asks, queries):
        if id(a) not in passages:
            continue
        position = best(a, q)
        out.add(kind, a.id, "query: " + text, passages[id(a)][position])
        if kind != "question":
            continue  # a tag is a word of its language; its translation is not the member's
        for other in versions[a.id]:
            if other is a or id(other) not in passages:
                continue
            # Same outline: the same step; otherwise the base model's choice there.
            there = position if len(other.sections) == len(a.sections) else best(other, q)
            out.add("question-crosslingual", a.id, "query: " + text, passages[id(other)][there])


def make_pairs(corpus: Corpus, encode, exclude_categories: set[str] = frozenset(), seed: int = 9) -> Pairs:
    """All training examples from the corpus, leaving out `exclude_categories`."""
    rng = random.Random(seed)
    articles = training_articles(corpus, set(exclude_categories))
    out = Pairs()
    _translation_pairs(articles, out, rng)
    _outline_pairs(articles, out, rng)
    _member_pairs(articles, out, encode)
    out.finish(rng)
    return out
