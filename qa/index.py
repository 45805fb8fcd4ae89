"""Index step: sections + embeddings -> one versioned artifact on disk.

Layout of the index folder (`embeddings/` by default):

    CURRENT                 name of the active build folder (swapped atomically)
    build-<time>-<rand>/    one complete build:
        manifest.json       format version, model, dimension, corpus hash, counts, file hashes
        sections.json       articles and sections (the text that is returned)
        vectors.faiss       FAISS inner-product index over normalised chunk vectors
                            (exact; IVF above `approximate_above` vectors)
        rows.npz            FAISS row -> section number, and whether the row speaks for
                            the whole article (title, tags) or for the section
        means.npz           per-language mean vectors (subtracted before indexing)
        lexical/            BM25 index over the same sections
    cache/                  embeddings keyed by model and chunk-text hash

A build is written into its own folder, and only once complete does `CURRENT` point
to it (`os.replace` of a small file is atomic). A crash mid-build therefore leaves the
previous build active; a reader never sees a half-written index.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import faiss
import numpy as np

from .corpus import LANGUAGES, Article, Corpus, Section
from .encoder import Encoder
from .lexical import LexicalIndex

FORMAT_VERSION = 1
MIN_ROWS_FOR_MEAN = 50
CURRENT = "CURRENT"
FILES = ("sections.json", "vectors.faiss", "rows.npz", "means.npz")


class IndexError_(RuntimeError):
    """Base of index loading errors (named so as not to shadow the builtin)."""


class IndexNotFound(IndexError_):
    pass


class IndexCorrupt(IndexError_):
    pass


class ModelMismatch(IndexError_):
    pass


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
        if self.path.exists():
            try:
                with np.load(self.path) as data:
                    self.vectors = dict(zip(data["keys"].tolist(), data["vectors"]))
            except Exception:
                self.vectors = {}  # an unreadable cache only costs time

    def save(self, keep: set[str]) -> None:
        keys = sorted(k for k in self.vectors if k in keep)
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
    rows: np.ndarray  # FAISS row -> section number
    article_rows: np.ndarray  # FAISS row -> True when the row stands for its whole article
    means: dict[str, np.ndarray]  # language -> mean vector subtracted from that language
    lexical: LexicalIndex

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


def build_index(
    corpus: Corpus,
    encoder: Encoder,
    cache: EmbeddingCache | None = None,
    approximate_above: int = 100_000,
    progress=None,
) -> Index:
    """Embed every section of `corpus` (reusing cached vectors) and assemble an `Index`."""
    started = time.time()
    articles = corpus.articles
    sections: list[Section] = []
    section_article: list[int] = []
    texts: list[str] = []
    rows: list[int] = []
    row_langs: list[str] = []
    article_rows: list[bool] = []
    for a_no, article in enumerate(articles):
        for section in article.sections:
            s_no = len(sections)
            sections.append(section)
            section_article.append(a_no)
            for text, article_level in passage_texts(article, section, encoder.useful_words):
                texts.append(text)
                article_rows.append(article_level)
                rows.append(s_no)
                row_langs.append(article.lang)

    keys = [_text_key(encoder.identity, t) for t in texts]
    cached = cache.vectors if cache else {}
    missing = [i for i, k in enumerate(keys) if k not in cached]
    if progress is not None:
        progress.reset(total=len(texts))
        progress.update(len(texts) - len(missing))
    batch = 64
    for start in range(0, len(missing), batch):
        idx = missing[start : start + batch]
        vecs = encoder.encode_passages([texts[i] for i in idx])
        for i, v in zip(idx, vecs):
            cached[keys[i]] = v
        if progress is not None:
            progress.update(len(idx))
    if cache:
        cache.save(set(keys))

    raw = np.stack([cached[k] for k in keys]).astype(np.float32) if keys else np.zeros((0, encoder.dimension), np.float32)
    langs = np.array(row_langs)
    # A mean over a handful of rows is mostly those rows' meaning, not the language's
    # direction: below MIN_ROWS_FOR_MEAN a language is left uncentred.
    means = {
        lang: raw[langs == lang].mean(axis=0) if (langs == lang).sum() >= MIN_ROWS_FOR_MEAN else np.zeros(raw.shape[1], np.float32)
        for lang in LANGUAGES
        if (langs == lang).any()
    }
    centered = np.zeros_like(raw)
    for lang, mean in means.items():
        sel = langs == lang
        centered[sel] = normalize_blocks(raw[sel] - mean, encoder.blocks)

    lexical = LexicalIndex.build([(lexical_text(articles[a], s), s.lang) for s, a in zip(sections, section_article)])
    counts = {
        lang: {
            "articles": sum(a.lang == lang for a in articles),
            "sections": sum(s.lang == lang for s in sections),
        }
        for lang in LANGUAGES
    }
    manifest = {
        "format_version": FORMAT_VERSION,
        "model": encoder.identity,
        "dimension": encoder.dimension,
        "blocks": encoder.blocks,
        "corpus_hash": corpus_hash(corpus),
        "articles": len(articles),
        "sections": len(sections),
        "vectors": len(texts),
        "languages": counts,
        "faiss": "ivf" if len(texts) > approximate_above else "flat",
        "build_time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "build_seconds": round(time.time() - started, 2),
        "embedded": len(missing),
    }
    return Index(
        manifest=manifest,
        articles=articles,
        sections=sections,
        section_article=np.array(section_article, dtype=np.int32),
        faiss_index=make_faiss(centered, approximate_above),
        rows=np.array(rows, dtype=np.int32),
        article_rows=np.array(article_rows, dtype=bool),
        means=means,
        lexical=lexical,
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _article_record(a: Article) -> dict:
    record = dataclasses.asdict(a)
    record.pop("sections")
    return record


def save_index(index: Index, root: Path | str, keep: int = 2) -> Path:
    """Write `index` as a new build under `root` and make it current, atomically."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    name = f"build-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    folder = root / name
    folder.mkdir()
    with open(folder / "sections.json", "w", encoding="utf-8") as f:
        json.dump(
            {
                "articles": [_article_record(a) for a in index.articles],
                "sections": [dataclasses.asdict(s) for s in index.sections],
                "section_article": index.section_article.tolist(),
            },
            f,
            ensure_ascii=False,
        )
    faiss.write_index(index.faiss_index, str(folder / "vectors.faiss"))
    np.savez(folder / "rows.npz", rows=index.rows, article_rows=index.article_rows)
    np.savez(folder / "means.npz", **index.means)
    index.lexical.save(folder / "lexical")
    files = {n: _sha256(folder / n) for n in FILES}
    files.update({f"lexical/{p.name}": _sha256(p) for p in sorted((folder / "lexical").iterdir())})
    manifest = dict(index.manifest, files=files)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    _fsync_tree(folder)

    pointer_tmp = root / f"{CURRENT}.tmp"
    with open(pointer_tmp, "w") as f:
        f.write(name)
        f.flush()
        os.fsync(f.fileno())
    os.replace(pointer_tmp, root / CURRENT)
    index.manifest = manifest
    _prune(root, name, keep)
    return folder


def _fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


def _prune(root: Path, current: str, keep: int) -> None:
    """Remove old builds, keeping the current one and the newest `keep - 1` complete
    others; also remove debris of builds that crashed before the current one."""
    others = sorted((p for p in root.glob("build-*") if p.is_dir() and p.name != current), reverse=True)
    complete = [p for p in others if (p / "manifest.json").exists()]
    debris = [p for p in others if p not in complete and p.name < current]
    for p in complete[max(keep - 1, 0) :] + debris:
        shutil.rmtree(p, ignore_errors=True)


def current_build(root: Path | str) -> Path:
    root = Path(root)
    pointer = root / CURRENT
    if not pointer.exists():
        raise IndexNotFound(f"no index in {root}: run `qa ingest` first")
    folder = root / pointer.read_text().strip()
    if not folder.is_dir():
        raise IndexCorrupt(f"{pointer} names {folder.name}, which does not exist: run `qa ingest` again")
    return folder


def read_manifest(root: Path | str) -> dict:
    return _build_manifest(current_build(root))


def _build_manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IndexCorrupt(f"{folder / 'manifest.json'} is unreadable ({e}): run `qa ingest` again") from None


def load_index(root: Path | str, model: str | None = None, verify: bool = True) -> Index:
    """Load the current build. `model` is the encoder identity the caller will query
    with: vectors from another model would give wrong results, so that is an error."""
    return load_build(current_build(root), model, verify)


def load_build(folder: Path, model: str | None = None, verify: bool = True) -> Index:
    """Load one build folder (see `load_index`)."""
    manifest = _build_manifest(folder)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexCorrupt(
            f"{folder} has format version {manifest.get('format_version')}, this program reads "
            f"{FORMAT_VERSION}: run `qa ingest` again"
        )
    if model is not None and manifest.get("model") != model:
        raise ModelMismatch(
            f"the index in {folder} was built with model '{manifest.get('model')}', but the service is "
            f"configured for '{model}': rebuild with `qa ingest` or change the model setting"
        )
    if verify:
        for name, digest in manifest.get("files", {}).items():
            path = folder / name
            if not path.exists() or _sha256(path) != digest:
                raise IndexCorrupt(f"{path} is missing or corrupt (hash mismatch): run `qa ingest` again")
    try:
        data = json.loads((folder / "sections.json").read_text(encoding="utf-8"))
        articles = [Article(**a) for a in data["articles"]]
        sections = [Section(**s) for s in data["sections"]]
        faiss_index = faiss.read_index(str(folder / "vectors.faiss"))
        ivf = faiss.try_extract_index_ivf(faiss_index)
        if ivf is not None:
            ivf.nprobe = IVF_NPROBE
        with np.load(folder / "rows.npz") as r:
            rows, article_rows = r["rows"], r["article_rows"]
        with np.load(folder / "means.npz") as m:
            means = {k: m[k] for k in m.files}
        lexical = LexicalIndex.load(folder / "lexical", len(sections))
    except Exception as e:  # any unreadable part means the build cannot be trusted
        raise IndexCorrupt(f"{folder} could not be read ({type(e).__name__}: {e}): run `qa ingest` again") from None
    if faiss_index.ntotal != len(rows) or faiss_index.d != manifest.get("dimension"):
        raise IndexCorrupt(f"{folder}: vector count or dimension disagrees with the manifest")
    return Index(
        manifest=manifest,
        articles=articles,
        sections=sections,
        section_article=np.array(data["section_article"], dtype=np.int32),
        faiss_index=faiss_index,
        rows=rows,
        article_rows=article_rows,
        means=means,
        lexical=lexical,
    )


def _age(folder: Path) -> tuple[str, float]:
    """Sort key, newest last: the folder name's time (one-second resolution), then
    the manifest's mtime."""
    manifest = folder / "manifest.json"
    return folder.name[:21], manifest.stat().st_mtime if manifest.exists() else 0.0


def load_newest_intact(root: Path | str, model: str | None = None) -> tuple[Index, Path, list[str]]:
    """The current build, or else the newest other build in `root` that loads cleanly
    (`save_index` keeps the last ones), its folder, and why each newer build was
    refused. Raises the current build's error when no build loads."""
    root = Path(root)
    try:
        folder = current_build(root)
        return load_build(folder, model), folder, []
    except IndexNotFound:
        raise
    except IndexError_ as e:
        first, refused = e, [str(e)]
    pointer = (root / CURRENT).read_text().strip()
    for folder in sorted((p for p in root.glob("build-*") if p.is_dir() and p.name != pointer), key=_age, reverse=True):
        try:
            return load_build(folder, model), folder, refused
        except IndexError_ as e:
            refused.append(str(e))
    raise first
