"""How much of a question the corpus, and its best article, actually speak about.

Evidence for the no-answer decision (`qa.answerability`) that a cosine cannot give:
"Atomy share price" lies close to many sections, but only "Atomy" occurs in them;
"write me a Python script" has words the corpus never uses at all. Words are compared
by their BM25 forms (`qa.lexical.word_forms`), so inflections count as the same word.

A word that occurs in texts of all three corpus languages (in any of its forms) is a
name or an international term (Atomy, Kaspi, PV, SMS, ID): it says little about the topic,
so `covered_rare` leaves such words out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .corpus import LANGUAGES
from .index import Index
from .lexical import word_forms


@dataclass
class Cover:
    covered: float  # share of the question's content words that the article contains
    covered_rare: float  # the same over words that are not names (see the module docstring)
    known: float  # share of the question's content words the corpus contains at all
    words: int  # content words of the question
    covered_weight: float = 0.0  # share of the question's IDF mass that the article contains
    missing_rarest: float = 0.0  # IDF of the rarest word the article lacks, over log(documents)


class Coverage:
    def __init__(self, index: Index):
        self.lexical = index.lexical
        n_sections = len(index.sections)
        # Each lexical document's file: the sections, then the phrasings (mapped to a section).
        doc_section = np.concatenate([np.arange(n_sections), index.phrasing_section]).astype(np.int64)
        self.doc_file = index.section_article[doc_section] if len(doc_section) else np.zeros(0, np.int64)
        lang_no = {lang: n for n, lang in enumerate(LANGUAGES)}
        self.doc_lang = np.array([lang_no[index.sections[s].lang] for s in doc_section], dtype=np.int64)

    def _is_name(self, docs: np.ndarray) -> bool:
        """Whether a word (all its forms' documents) occurs in texts of every language."""
        return len(np.unique(self.doc_lang[docs])) == len(LANGUAGES)

    def cover(self, question: str, lang: str | None, article_file: int | None) -> Cover:
        """The coverage of `question` by the article file `article_file` (None: no result).

        A word's weight is its IDF, log(documents / documents with the word); a word the
        corpus never uses weighs as if it occurred in half a document: "Gmail" in "reset
        my Gmail password" is what the password article does not speak about."""
        covered = known = rare = rare_covered = 0
        weight = weight_covered = missing = 0.0
        n_docs = max(len(self.doc_file), 1)
        words = word_forms(question, lang)
        for forms in words:
            postings = [self.lexical.postings(f) for f in forms]
            docs = np.unique(np.concatenate(postings)) if postings else np.zeros(0, np.int64)
            idf = float(np.log(n_docs / max(len(docs), 0.5)))
            weight += idf
            hit = article_file is not None and bool((self.doc_file[docs] == article_file).any())
            if hit:
                weight_covered += idf
            else:
                missing = max(missing, idf)
            if not len(docs):
                rare += 1  # a word the corpus never uses is not a name of it
                continue
            known += 1
            covered += hit
            if not self._is_name(docs):
                rare += 1
                rare_covered += hit
        n = len(words)
        return Cover(covered / n if n else 0.0, rare_covered / rare if rare else 0.0, known / n if n else 0.0, n,
                     weight_covered / weight if weight else 0.0, missing / np.log(2 * n_docs))
