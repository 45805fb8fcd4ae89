"""Ingest: corpus folder -> index artifact, with a summary of what was built."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from .artifact import save_index
from .corpus import LANGUAGES, CorpusError, load_corpus
from .encoder import Encoder
from .errors import NothingToBuild
from .index import EmbeddingCache, Index, build_index
from .rules import RULES_FILE, load_rules


@dataclass
class IngestReport:
    index: Index
    folder: Path
    errors: list[CorpusError]
    seconds: float
    missing_translations: dict[str, list[str]] = field(default_factory=dict)  # id -> missing langs

    def summary(self) -> str:
        m = self.index.manifest

        def per_lang(what: str) -> str:
            return ", ".join(f"{lang} {m['languages'][lang][what]}" for lang in LANGUAGES)

        lines = [
            f"Index written to {self.folder}",
            f"  articles: {m['articles']} ({per_lang('articles')})",
            f"  sections: {m['sections']} ({per_lang('sections')})",
            f"  phrasings: {m.get('phrasings', 0)} member questions; synonyms: {m.get('synonym_groups', 0)} groups; "
            f"rules: {m.get('rules', 0)}",
            f"  vectors:  {m['vectors']} ({m['embedded']} embedded now, {m['vectors'] - m['embedded']} from cache)",
            f"  model:    {m['model']} ({m['dimension']} dims)",
            f"  articles missing a translation: {len(self.missing_translations)}",
        ]
        for article_id, langs in sorted(self.missing_translations.items()):
            lines.append(f"    {article_id}: no {', '.join(langs)}")
        if self.errors:
            lines.append(f"  skipped {len(self.errors)} malformed file(s) or entries:")
            lines.extend(f"    {e}" for e in self.errors)
        lines.append(f"  took {self.seconds:.1f} s")
        return "\n".join(lines)


def ingest(
    corpus_dir: Path | str,
    out_dir: Path | str,
    encoder: Encoder,
    strict: bool = False,
    approximate_above: int = 100_000,
    show_progress: bool = False,
) -> IngestReport:
    """Parse `corpus_dir`, embed, and atomically replace the index in `out_dir`.

    Malformed files are skipped (and reported) unless `strict`, in which case the first
    one raises `CorpusError` and nothing is written. Raises `NothingToBuild` when no
    article could be parsed."""
    started = time.time()
    corpus = load_corpus(corpus_dir)
    try:
        corpus.rules = load_rules(Path(corpus_dir) / RULES_FILE, corpus)
    except CorpusError as e:  # a broken rules file: reported, and no rules rather than a wrong one
        corpus.errors.append(e)
    if strict and corpus.errors:
        raise corpus.errors[0]
    if not corpus.articles:
        raise NothingToBuild(f"no valid article in {corpus_dir} ({len(corpus.errors)} malformed)")
    out_dir = Path(out_dir)
    cache = EmbeddingCache(out_dir / "cache", encoder.identity)
    with tqdm(desc="embedding", unit="chunk", disable=not show_progress) as bar:
        index = build_index(corpus, encoder, cache, approximate_above, progress=bar)
    folder = save_index(index, out_dir)

    langs_by_id: dict[str, set[str]] = defaultdict(set)
    for a in corpus.articles:
        langs_by_id[a.id].add(a.lang)
    missing = {
        i: [lang for lang in LANGUAGES if lang not in langs] for i, langs in langs_by_id.items()
        if len(langs) < len(LANGUAGES)
    }
    return IngestReport(index, folder, corpus.errors, time.time() - started, missing)
