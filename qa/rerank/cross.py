"""A cross-encoder read without torch: onnxruntime + tokenizers + numpy.

A cross-encoder folder (written by `qa train-rerank`, qa/training/cross_train.py) holds:

    model.onnx         question and section together -> one relevance logit
    tokenizer.json     the base model's `tokenizers` tokenizer (pairs: <s> q </s></s> p </s>)
    cross_model.json   max_length, layers, prompts, what it was trained on

It reads the question and a section in one pass, so every word of the question can
attend to every word of the section: what one vector per text cannot do.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..corpus import Article, Section
from ..encoder.onnx import cpu_session, padded

CONFIG_FILE = "cross_model.json"
MODEL_FILE = "model.onnx"
MAX_WORDS = 120  # about as much of a section as 128-192 tokens hold
# How a pair longer than max_length is cut, in training and in serving alike: the longer
# of the two first, so the section gives way and the question stays whole, unless the
# question alone would not fit (500 emoji, a pasted e-mail): then both are cut, where
# "only_second" raised a truncation error (a 500 on /v1/ask with rerank=true).
TRUNCATION = "longest_first"


def section_text(article: Article, section: Section, words: int = MAX_WORDS) -> str:
    """What the second stage reads of a section, in training and in serving alike:
    where it sits (article title, heading), then its text."""
    head = article.title if section.position == 0 else f"{article.title}. {section.title}"
    return " ".join(f"{head}\n{section.plain}".split()[:words])


def is_cross_folder(path: str | Path) -> bool:
    folder = Path(path)
    return (folder / MODEL_FILE).is_file() and (folder / CONFIG_FILE).is_file()


class CrossEncoder:
    """`score(question, passages)`: one logit per passage, higher is more relevant."""

    def __init__(self, folder: str | Path, threads: int = 1):
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.config = json.loads((self.folder / CONFIG_FILE).read_text(encoding="utf-8"))
        self.max_length = int(self.config["max_length"])
        self.query_prompt = self.config.get("query_prompt", "")
        self.passage_prompt = self.config.get("passage_prompt", "")
        self.pad_id = int(self.config.get("pad_token_id", 1))
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_length, strategy=TRUNCATION)
        self.session = cpu_session(self.folder / MODEL_FILE, threads)

    @property
    def version(self) -> str:
        return str(self.config.get("version", ""))

    def inputs(self, question: str, passages: list[str]) -> tuple[np.ndarray, np.ndarray]:
        pairs = [(self.query_prompt + question, self.passage_prompt + p) for p in passages]
        return padded(self.tokenizer.encode_batch(pairs), self.pad_id)

    def score(self, question: str, passages: list[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0, dtype=np.float32)
        ids, mask = self.inputs(question, passages)
        (logits,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
        return np.asarray(logits, dtype=np.float32).reshape(-1)
