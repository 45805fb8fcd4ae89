"""Serve an exported model without torch: onnxruntime + tokenizers + numpy.

An ONNX model folder (written by `qa model export-onnx`) holds:

    model.onnx        the transformer: input_ids, attention_mask -> token states
    tokenizer.json    the `tokenizers` tokenizer of the source model
    onnx_model.json   prompts, max_seq_length, dimension, pooling
    qa_model.json     version (hash of model.onnx) and the source model's version

`OnnxModel` offers the part of the `SentenceTransformer` interface that
`qa.encoder.Encoder` uses (`encode`, `prompts`, `max_seq_length`,
`get_embedding_dimension`, indexing as a one-module pipeline), so the encoder picks
it with one line. Nothing here imports torch or sentence-transformers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

CONFIG_FILE = "onnx_model.json"
MODEL_FILE = "model.onnx"
TOKEN_BUDGET = 4096  # padded tokens per batch (about 2 tokens per word in de/ru)


def is_onnx_folder(model: str) -> bool:
    folder = Path(model)
    return (folder / MODEL_FILE).is_file() and (folder / CONFIG_FILE).is_file()


class OnnxModel:
    def __init__(self, folder: str | Path, threads: int | None = None):
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        config = json.loads((self.folder / CONFIG_FILE).read_text())
        self.prompts: dict[str, str] = config.get("prompts", {})
        self.max_seq_length: int = int(config["max_seq_length"])
        self.dimension: int = int(config["dimension"])
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_seq_length)
        self.pad_id = int(config.get("pad_token_id", 1))
        self.session = cpu_session(self.folder / MODEL_FILE, threads or default_threads())

    def for_serving(self) -> None:
        """One query at a time on one thread (the server runs one worker per core)."""
        self.session = cpu_session(self.folder / MODEL_FILE, 1)

    @property
    def model(self) -> OnnxModel:
        """The Encoder's backend interface: the model behind it is this pipeline."""
        return self

    def __getitem__(self, i: int) -> OnnxModel:
        # Encoder looks at the first module of the pipeline; this is the whole pipeline.
        if i != 0:
            raise IndexError(i)
        return self

    def get_embedding_dimension(self) -> int:
        return self.dimension

    get_sentence_embedding_dimension = get_embedding_dimension

    def _batch(self, texts: list[str]) -> np.ndarray:
        ids, mask = padded(self.tokenizer.encode_batch(texts), self.pad_id)
        (states,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
        weights = mask[:, :, None].astype(np.float32)
        return (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)

    def encode(
        self,
        texts: list[str],
        prompt: str | None = None,
        prompt_name: str | None = None,
        batch_size: int = 32,
        normalize_embeddings: bool = True,
        **_ignored,
    ) -> np.ndarray:
        """Mean-pooled (and normalised) vectors, like the source SentenceTransformer."""
        prefix = prompt if prompt is not None else self.prompts.get(prompt_name or "", "")
        texts = [prefix + t for t in texts]
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Sort by length so that a batch pads little, then restore the order.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        start = 0
        while start < len(texts):
            # Long texts go in smaller batches: attention memory grows with tokens².
            words = len(texts[order[start]].split())
            size = max(1, min(batch_size, TOKEN_BUDGET // max(1, 2 * words)))
            rows = order[start : start + size]
            out[rows] = self._batch([texts[i] for i in rows])
            start += size
        if normalize_embeddings:
            out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-12
        return out


    def token_states(self, texts: list[str], prompt: str = "", max_tokens: int | None = None,
                     batch_size: int = 16) -> tuple[np.ndarray, list[np.ndarray]]:
        """One forward pass per batch: each text's mean-pooled, L2-normalised vector (as
        `encode` gives it) and its token states, each L2-normalised (float32, one row per
        token read; at most `max_tokens`): what late interaction compares
        (qa/rerank/late.py)."""
        pooled = np.zeros((len(texts), self.dimension), dtype=np.float32)
        tokens: list[np.ndarray] = [np.zeros((0, self.dimension), np.float32)] * len(texts)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            encodings = self.tokenizer.encode_batch([prompt + texts[i] for i in rows])
            if max_tokens:
                for e in encodings:
                    e.truncate(max_tokens)
            ids, mask = padded(encodings, self.pad_id)
            (states,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
            weights = mask[:, :, None].astype(np.float32)
            means = (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            pooled[rows] = means / (np.linalg.norm(means, axis=1, keepdims=True) + 1e-12)
            for row, state, m in zip(rows, states, mask):
                read = state[m.astype(bool)]
                tokens[row] = read / (np.linalg.norm(read, axis=1, keepdims=True) + 1e-12)
        return pooled, tokens


def cpu_session(path: Path, threads: int | None):
    """An onnxruntime session on the CPU; `threads` intra-op threads (None: onnxruntime's
    choice). Shared by the ONNX encoder and the second stage (qa/rerank/cross.py)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Every batch has another shape: an arena sized for past shapes only grows
    # (15 GB on a 47k-word corpus); plain allocation keeps memory to one batch.
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def padded(encodings: list, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """`input_ids` and `attention_mask` of a batch of `tokenizers` encodings, padded
    with `pad_id` to the longest."""
    width = max(len(e.ids) for e in encodings)
    ids = np.full((len(encodings), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(encodings), width), dtype=np.int64)
    for row, e in enumerate(encodings):
        ids[row, : len(e.ids)] = e.ids
        mask[row, : len(e.ids)] = 1
    return ids, mask


def default_threads() -> int | None:
    value = os.environ.get("HELPDESK_QA_ONNX_THREADS")
    return int(value) if value else None
