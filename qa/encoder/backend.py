"""The interface every embedding backend offers `qa.encoder.Encoder`.

Three classes implement it: `DirectBackend` (the bundled numpy models, no torch),
`SentenceTransformerBackend` (any sentence-transformers model; imports torch) and
`OnnxModel` (an exported folder on onnxruntime; no torch). mypy checks them against
this protocol through `Encoder._backend`'s return type (see .ci/run).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class EncoderBackend(Protocol):
    @property
    def model(self) -> object:
        """The object that computes vectors (for inspection and tests)."""

    @property
    def dimension(self) -> int:
        """Length of the vectors."""

    @property
    def max_seq_length(self) -> int | None:
        """Tokens the model reads, or None when it splits its own input (bundled models)."""

    @property
    def prompts(self) -> dict[str, str]:
        """Named prefixes the model folder declares, e.g. {"query": "query: "}."""

    def encode(self, texts: list[str], *, prompt: str, batch_size: int) -> np.ndarray:
        """L2-normalised float32 vectors of `texts`, each prefixed with `prompt`."""

    def for_serving(self) -> None:
        """Tune the process for encoding one short query at a time."""
