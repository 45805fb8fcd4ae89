"""Index step: sections + embeddings -> an `Index` in memory (FAISS, BM25, metadata).

What gets embedded for a section (`passage_texts`), how member phrasings are mapped to
a section (`map_phrasings`), what BM25 sees (`lexical_text`), the embedding cache, and
`build_index`. Writing a build to disk and loading it back: `qa.artifact`.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np

from .answerability import unanswerable_questions
from .corpus import LANGUAGES, Article, Corpus, Section, Synonyms
from .encoder import Encoder
from .lexical import LexicalIndex
from .rerank.late import LateTokens, section_tokens
from .rules import Rules

FORMAT_VERSION = 2
# What a FAISS row stands for.
ROW_SECTION = 0  # a chunk of a section (or its headings)
ROW_ARTICLE = 1  # the article's title / tags: evidence for the article, not its intro
ROW_PHRASING = 2  # a member phrasing from `questions:`: evidence for the article and its mapped section
MIN_ROWS_FOR_MEAN = 50


def chunk_words(text: str, size: int, overlap: int | None = None) -> list[str]:
    """Split `text` into windows of at most `size` words overlapping by `overlap`."""
    words = text.split()
    if len(words) <= size:
        return [" ".join(words)]
    overlap = size // 4 if overlap is None else overlap
    step = max(1, size - overlap)
    chunks = []
    for start in range(0, len(words), step):
        chunks.append(" ".join(words[start : start + size]))
        if start + size >= len(words):
            break
    return chunks


def passage_texts(article: Article, section: Section, useful_words: int) -> list[tuple[str, bool]]:
    """What gets embedded for a section, as (text, speaks for the whole article).

    - titles + text, in overlapping chunks when the text is long;
    - the titles alone: short questions ("Passwort vergessen") match a heading
      better than a paragraph;
    - with the intro, the article title alone and with its tags (members' own
      keywords). These rows score the article, not the intro: otherwise a short
      question would always land on the intro instead of the step-by-step section."""
    head = article.title if section.position == 0 else f"{article.title}. {section.title}"
    body_words = max(16, useful_words - len(head.split()))
    texts = [(f"{head}\n{chunk}", False) for chunk in chunk_words(section.plain, body_words)]
    if section.position == 0:
        texts.append((article.title, True))
        if article.tags:
            texts.append((f"{article.title}. {', '.join(article.tags)}", True))
    else:
        texts.append((head, False))
    return texts


def map_phrasings(
    phrasing_vectors: np.ndarray, section_vectors: np.ndarray, row_section: np.ndarray, sections: list[Section]
) -> np.ndarray:
    """The section each phrasing of one article points to: the section whose best row is
    most similar to it, with a section of numbered steps preferred by `STEPS_PREFERENCE`
    and the intro only when nothing else comes close (`INTRO_PENALTY`): a member who
    asks "how do I ..." wants the steps, and the intro is reached through the article
    score anyway. `row_section` gives each section row's index into `sections`."""
    sims = phrasing_vectors @ section_vectors.T  # phrasings x rows
    best = np.full((len(phrasing_vectors), len(sections)), -np.inf, dtype=np.float32)
    for col in range(len(sections)):
        cols = row_section == col
        if cols.any():
            best[:, col] = sims[:, cols].max(axis=1)
    bias = np.array(
        [(STEPS_PREFERENCE if s.steps else 0.0) - (INTRO_PENALTY if s.position == 0 else 0.0) for s in sections],
        dtype=np.float32,
    )
    return np.argmax(best + bias, axis=1)


STEPS_PREFERENCE = 0.03
INTRO_PENALTY = 0.05


def lexical_text(article: Article, section: Section) -> str:
    """What BM25 sees: the article title, the section title twice (the intro: the
    article's tags instead), then the text."""
    if section.position == 0:
        return f"{article.title} {' '.join(article.tags)} {section.plain}"
    return f"{article.title} {section.title} {section.title} {section.plain}"


def corpus_hash(corpus: Corpus) -> str:
    h = hashlib.sha256()
    for a in sorted(corpus.articles, key=lambda a: (a.lang, a.id)):
        h.update(Path(a.path).read_bytes())
    return h.hexdigest()


def _text_key(identity: str, text: str) -> str:
    return hashlib.sha256(f"{identity}\x00{text}".encode()).hexdigest()


class EmbeddingCache:
    """Embeddings of chunk texts, keyed by model identity and text hash, in one .npz."""

    def __init__(self, folder: Path, identity: str):
        self.path = folder / f"{hashlib.sha256(identity.encode()).hexdigest()[:16]}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        self.keep: set[str] = set()  # keys used by this build: what `save` keeps
        if self.path.exists():
            try:
                with np.load(self.path) as data:
                    self.vectors = dict(zip(data["keys"].tolist(), data["vectors"]))
            except Exception:
                self.vectors = {}  # an unreadable cache only costs time

    def save(self) -> None:
        keys = sorted(k for k in self.vectors if k in self.keep)
        if not keys:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(keys), vectors=np.stack([self.vectors[k] for k in keys]))
        os.replace(tmp, self.path)


@dataclass
class Index:
    manifest: dict
    articles: list[Article]
    sections: list[Section]
    section_article: np.ndarray  # section number -> article number
    faiss_index: faiss.Index
    rows: np.ndarray  # FAISS row -> section number (a phrasing's: the section it is mapped to)
    row_kind: np.ndarray  # FAISS row -> ROW_SECTION, ROW_ARTICLE or ROW_PHRASING
    means: dict[str, np.ndarray]  # language -> mean vector subtracted from that language
    lexical: LexicalIndex  # documents: the sections, then the phrasings
    phrasing_section: np.ndarray  # phrasing number (lexical document - len(sections)) -> section
    synonyms: Synonyms = field(default_factory=lambda: Synonyms([]))
    # Query vectors (not centred) of the written questions without an answer
    # (qa.answerability.UNANSWERABLE_FILE): how close a question comes to them is
    # evidence for the no-answer decision.
    unanswerable: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    rules: Rules = field(default_factory=Rules)  # the support team's rules (qa/rules.py)
    # Each section's token states, for late interaction (qa/rerank/late.py); only with an
    # encoder that gives them (an ONNX e5 folder).
    late: LateTokens | None = None

    def center(self, vectors: np.ndarray, lang: str | None) -> np.ndarray:
        """Subtract the language's mean (the average of all means when unknown) and
        re-normalise. Removes the 'which language is this' direction that otherwise
        makes same-language passages look closer than same-meaning ones."""
        mean = self.means.get(lang) if lang else None
        if mean is None:
            mean = np.mean(list(self.means.values()), axis=0) if self.means else 0.0
        return normalize_blocks(vectors - mean, self.manifest.get("blocks"))


def normalize_blocks(vectors: np.ndarray, blocks: list[list[float]] | None) -> np.ndarray:
    """L2-normalise each model's block of the vector and scale it by the square root
    of its weight: the inner product is then the weighted sum of per-model cosines
    (one block, weight 1, for a single model)."""
    out = np.array(vectors, dtype=np.float32)
    start = 0
    for dim, weight in blocks or [[out.shape[1], 1.0]]:
        part = out[:, start : start + int(dim)]
        part /= np.linalg.norm(part, axis=1, keepdims=True) + 1e-12
        part *= np.sqrt(weight)
        start += int(dim)
    return out


IVF_NPROBE = 32  # lists scanned per query; recall vs speed measured in docs/performance.md


def make_faiss(vectors: np.ndarray, approximate_above: int) -> faiss.Index:
    """Exact inner-product search up to `approximate_above` vectors; above, an IVF
    index with about sqrt(n) lists, of which `IVF_NPROBE` are scanned per query."""
    dim = vectors.shape[1]
    if len(vectors) <= approximate_above:
        index = faiss.IndexFlatIP(dim)
        index.add(vectors)
        return index
    nlist = max(16, int(np.sqrt(len(vectors))))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(0)
    sample = vectors[rng.choice(len(vectors), min(len(vectors), nlist * 64), replace=False)]
    index.train(sample)
    index.add(vectors)
    index.nprobe = IVF_NPROBE
    return index


def _embed(texts: list[str], encode, identity: str, cache: EmbeddingCache | None, progress) -> tuple[np.ndarray, int]:
    """Vectors of `texts`, reusing and filling the cache (keyed by `identity` and text),
    and how many had to be embedded now."""
    keys = [_text_key(identity, t) for t in texts]
    cached = cache.vectors if cache else {}
    missing = [i for i, k in enumerate(keys) if k not in cached]
    if progress is not None:
        progress.update(len(texts) - len(missing))
    for start in range(0, len(missing), 64):
        idx = missing[start : start + 64]
        for i, v in zip(idx, encode([texts[i] for i in idx])):
            cached[keys[i]] = v
        if progress is not None:
            progress.update(len(idx))
    if cache is not None:
        cache.keep.update(keys)
    vectors = np.stack([cached[k] for k in keys]).astype(np.float32) if keys else np.zeros((0, 0), np.float32)
    return vectors, len(missing)


def _center(raw: np.ndarray, langs: np.ndarray, means: dict[str, np.ndarray], blocks) -> np.ndarray:
    """Each row minus its language's mean (none for a language without one), re-normalised."""
    out = np.zeros_like(raw)
    for lang in np.unique(langs):
        sel = langs == lang
        mean = means.get(str(lang))
        out[sel] = normalize_blocks(raw[sel] - (0.0 if mean is None else mean), blocks)
    return out


def _phrasing_sections(
    phrase_vectors: np.ndarray,
    phrase_article: np.ndarray,
    row_vectors: np.ndarray,
    row_section: np.ndarray,
    row_is_section: np.ndarray,
    section_article: np.ndarray,
    sections: list[Section],
) -> np.ndarray:
    """The section number each phrasing is mapped to (`map_phrasings`, per article)."""
    out = np.zeros(len(phrase_article), dtype=np.int32)
    row_article = section_article[row_section]
    for a_no in np.unique(phrase_article):
        mine = np.flatnonzero(phrase_article == a_no)
        own_rows = np.flatnonzero((row_article == a_no) & row_is_section)
        own_sections = sorted(set(row_section[own_rows].tolist()))
        if not own_sections:
            continue
        col = {s_no: n for n, s_no in enumerate(own_sections)}
        picked = map_phrasings(
            phrase_vectors[mine],
            row_vectors[own_rows],
            np.array([col[s_no] for s_no in row_section[own_rows]]),
            [sections[s_no] for s_no in own_sections],
        )
        out[mine] = np.array(own_sections)[picked]
    return out


@dataclass
class PassageRows:
    """The passage rows of an index before embedding: one text per FAISS row."""

    sections: list[Section]
    section_article: np.ndarray  # section number -> article number (int32)
    texts: list[str]
    rows: np.ndarray  # row -> section number (int32)
    kinds: list[int]  # row -> ROW_SECTION or ROW_ARTICLE


def passage_rows(articles: list[Article], useful_words: int) -> PassageRows:
    """Every section of every article, and the texts embedded for it (`passage_texts`)."""
    sections: list[Section] = []
    section_article: list[int] = []
    texts: list[str] = []
    rows: list[int] = []
    kinds: list[int] = []
    for a_no, article in enumerate(articles):
        for section in article.sections:
            s_no = len(sections)
            sections.append(section)
            section_article.append(a_no)
            for text, article_level in passage_texts(article, section, useful_words):
                texts.append(text)
                kinds.append(ROW_ARTICLE if article_level else ROW_SECTION)
                rows.append(s_no)
    return PassageRows(
        sections, np.array(section_article, dtype=np.int32), texts, np.array(rows, dtype=np.int32), kinds
    )


def language_means(raw: np.ndarray, row_langs: np.ndarray) -> dict[str, np.ndarray]:
    """The mean passage vector of each language. A mean over a handful of rows is mostly
    those rows' meaning, not the language's direction: below MIN_ROWS_FOR_MEAN a
    language is left uncentred (a zero mean)."""
    return {
        lang: raw[row_langs == lang].mean(axis=0)
        if (row_langs == lang).sum() >= MIN_ROWS_FOR_MEAN
        else np.zeros(raw.shape[1], np.float32)
        for lang in LANGUAGES
        if (row_langs == lang).any()
    }


def _manifest(corpus: Corpus, encoder: Encoder, passages: PassageRows, phrasings: int, vectors: int,
              approximate_above: int, started: float, embedded: int) -> dict:
    articles = corpus.articles
    counts = {
        lang: {
            "articles": sum(a.lang == lang for a in articles),
            "sections": sum(s.lang == lang for s in passages.sections),
        }
        for lang in LANGUAGES
    }
    return {
        "format_version": FORMAT_VERSION,
        "model": encoder.identity,
        "dimension": encoder.dimension,
        "blocks": encoder.blocks,
        "corpus_hash": corpus_hash(corpus),
        "articles": len(articles),
        "sections": len(passages.sections),
        "phrasings": phrasings,
        "synonym_groups": len(corpus.synonyms.groups) if corpus.synonyms else 0,
        "rules": len(corpus.rules) if isinstance(corpus.rules, Rules) else 0,
        "vectors": vectors,
        "languages": counts,
        "faiss": "ivf" if vectors > approximate_above else "flat",
        "build_time": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_seconds": round(time.time() - started, 2),
        "embedded": embedded,
    }


@dataclass
class PhrasingRows:
    """The member phrasings (`questions:`) of an index before embedding: one query row each."""

    texts: list[str]
    article: np.ndarray  # phrasing -> article number (int64)


def phrasing_rows(articles: list[Article], included: bool = True) -> PhrasingRows:
    """Every article's phrasings, in article order (none when not `included`)."""
    texts = [q for a in articles for q in a.questions] if included else []
    article = [a_no for a_no, a in enumerate(articles) for _ in a.questions] if included else []
    return PhrasingRows(texts, np.array(article, dtype=np.int64))


@dataclass
class RawVectors:
    """What the encoder gave for one build, before centring."""

    passages: np.ndarray  # one row per passage text
    phrasings: np.ndarray  # one query vector per phrasing
    unanswerable: np.ndarray  # one query vector per written question without an answer
    embedded: int  # passages and phrasings embedded now, not taken from the cache


def embed_rows(passages: PassageRows, phrasings: PhrasingRows, encoder: Encoder, cache: EmbeddingCache | None,
               progress=None) -> RawVectors:
    """Passages embedded as passages; phrasings and the written unanswerable questions as
    queries (they are questions, matched question against question). Cached by text."""
    unanswerable_texts = [row["q"] for row in unanswerable_questions()]
    if progress is not None:
        progress.reset(total=len(passages.texts) + len(phrasings.texts) + len(unanswerable_texts))
    raw, embedded = _embed(passages.texts, encoder.encode_passages, encoder.identity, cache, progress)
    raw_phrases, embedded_phrases = _embed(phrasings.texts, encoder.encode_queries, encoder.identity + "|query",
                                           cache, progress)
    unanswerable, _ = _embed(unanswerable_texts, encoder.encode_queries, encoder.identity + "|query", cache, progress)
    if cache is not None:
        cache.save()
    if not passages.texts:
        raw = np.zeros((0, encoder.dimension), np.float32)
    return RawVectors(raw, raw_phrases, unanswerable, embedded + embedded_phrases)


@dataclass
class CentredRows:
    """The FAISS rows of a build: passages, then phrasings, each centred on its language."""

    vectors: np.ndarray
    rows: np.ndarray  # row -> section number (int32)
    phrasing_section: np.ndarray  # phrasing -> the section of its article it is mapped to
    means: dict[str, np.ndarray]


def centre_rows(articles: list[Article], passages: PassageRows, phrasings: PhrasingRows, raw: RawVectors,
                blocks) -> CentredRows:
    """Each language's mean passage subtracted from its passages and phrasings, and each
    phrasing mapped to a section of its article (`map_phrasings`)."""
    row_langs = np.array([passages.sections[r].lang for r in passages.rows])
    means = language_means(raw.passages, row_langs)
    centered = _center(raw.passages, row_langs, means, blocks)
    if phrasings.texts:
        phrase_langs = np.array([articles[a].lang for a in phrasings.article])
        centered_phrases = _center(raw.phrasings, phrase_langs, means, blocks)
        phrasing_section = _phrasing_sections(
            centered_phrases, phrasings.article, centered, passages.rows, np.array(passages.kinds) == ROW_SECTION,
            passages.section_article, passages.sections,
        )
        vectors = np.vstack([centered, centered_phrases])
    else:
        phrasing_section = np.zeros(0, dtype=np.int32)
        vectors = centered
    rows = np.concatenate([passages.rows, phrasing_section]).astype(np.int32)
    return CentredRows(vectors, rows, phrasing_section, means)


def lexical_index(articles: list[Article], passages: PassageRows, phrasings: PhrasingRows) -> LexicalIndex:
    """BM25 over every section (`lexical_text`), then every phrasing, each in its article's language."""
    return LexicalIndex.build(
        [(lexical_text(articles[a], s), s.lang) for s, a in zip(passages.sections, passages.section_article)]
        + [(text, articles[a].lang) for text, a in zip(phrasings.texts, phrasings.article)]
    )


def build_index(
    corpus: Corpus,
    encoder: Encoder,
    cache: EmbeddingCache | None = None,
    approximate_above: int = 100_000,
    progress=None,
    phrasings: bool = True,
) -> Index:
    """Embed every section of `corpus` (and, with `phrasings`, every member phrasing
    from `questions:`, as a query) reusing cached vectors, and assemble an `Index`.

    Steps: the passage and phrasing rows; their embeddings (cached by text); each
    language's mean subtracted from its rows, each phrasing mapped to a section of its
    article; BM25 over sections and phrasings; FAISS over passages and phrasings; the
    manifest; with an encoder that gives token states, each section's (late interaction)."""
    started = time.time()
    articles = corpus.articles
    passages = passage_rows(articles, encoder.useful_words)
    phrases = phrasing_rows(articles, phrasings)
    raw = embed_rows(passages, phrases, encoder, cache, progress)
    centred = centre_rows(articles, passages, phrases, raw, encoder.blocks)
    lexical = lexical_index(articles, passages, phrases)
    return Index(
        manifest=_manifest(corpus, encoder, passages, len(phrases.texts), len(centred.rows), approximate_above,
                           started, raw.embedded),
        articles=articles,
        sections=passages.sections,
        section_article=passages.section_article,
        faiss_index=make_faiss(centred.vectors, approximate_above),
        rows=centred.rows,
        row_kind=np.array(passages.kinds + [ROW_PHRASING] * len(phrases.texts), dtype=np.int8),
        means=centred.means,
        lexical=lexical,
        phrasing_section=centred.phrasing_section,
        synonyms=corpus.synonyms or Synonyms([]),
        unanswerable=raw.unanswerable,
        rules=corpus.rules if isinstance(corpus.rules, Rules) else Rules(),
        late=section_tokens(articles, passages.sections, passages.section_article, encoder)
        if encoder.reads_tokens else None,
    )
