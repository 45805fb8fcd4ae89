"""`qa train`: fine-tune the rebuilt e5 on the corpus (sentence-transformers trainer,
MultipleNegativesRankingLoss: in-batch negatives plus sibling-section hard negatives).

The result is a new, versioned model folder `e5-help-<date>-<version>/` beside the
base model, with `training.json` saying what it was trained on and how long it took,
and `qa_model.json` carrying the version the index manifest records.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ..corpus import Corpus, load_nonempty_corpus
from ..encoder.version import folder_version, write_version
from ..errors import NothingToBuild, UsageError
from .options import TrainOptions
from .pairs import Pairs, make_pairs


def probe_loss(model, pairs: list[tuple[str, str]], batch_size: int, scale: float = 20.0) -> float:
    """Mean in-batch ranking loss (what MultipleNegativesRankingLoss minimises) over
    `pairs`, without gradients: the number that should fall when training works."""
    losses = []
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start : start + batch_size]
        if len(batch) < 2:
            break
        a = model.encode([x for x, _ in batch], normalize_embeddings=True, batch_size=batch_size)
        p = model.encode([y for _, y in batch], normalize_embeddings=True, batch_size=batch_size)
        logits = scale * (a @ p.T)
        logits -= logits.max(axis=1, keepdims=True)
        log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        losses.append(float(-np.mean(np.diag(log_softmax))))
    return float(np.mean(losses)) if losses else float("nan")


def _cached_encode(model, path: Path, progress: bool):
    """The base model's vectors for mining, kept on disk by text: a leave-one-category-out
    series mines the same texts again, and mining costs as much as a short training."""
    vectors: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path) as data:
            vectors = dict(zip(data["texts"].tolist(), data["vectors"]))

    def encode(texts: list[str]) -> np.ndarray:
        missing = sorted({t for t in texts if t not in vectors})
        if missing:
            new = model.encode(missing, batch_size=32, normalize_embeddings=True, show_progress_bar=progress)
            vectors.update(zip(missing, new))
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, texts=np.array(list(vectors)), vectors=np.stack(list(vectors.values())))
            os.replace(tmp, path)
        return np.stack([vectors[t] for t in texts])

    return encode


def _datasets(examples: Pairs):
    from datasets import Dataset, DatasetDict

    parts = {}
    if examples.pairs:
        anchors, positives = zip(*examples.pairs)
        parts["pairs"] = Dataset.from_dict({"anchor": list(anchors), "positive": list(positives)})
    if examples.triplets:
        anchors, positives, negatives = zip(*examples.triplets)
        parts["triplets"] = Dataset.from_dict(
            {"anchor": list(anchors), "positive": list(positives), "negative": list(negatives)}
        )
    return DatasetDict(parts)


def _fit(model, examples: Pairs, options: TrainOptions, work: Path, progress: bool, on_step=None) -> list[dict]:
    """Run the sentence-transformers trainer; returns the logged losses. `on_step(step,
    steps)` is told after each step (qa adapt's progress)."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import MultiDatasetBatchSamplers
    from transformers import TrainerCallback

    from .sampler import sampler_for

    log: list[dict] = []

    class KeepLosses(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                log.append({"step": state.global_step, "loss": round(float(logs["loss"]), 4)})

        def on_step_end(self, args, state, control, **kwargs):
            if on_step is not None:
                on_step(state.global_step, state.max_steps)

    args = SentenceTransformerTrainingArguments(
        output_dir=str(work),
        num_train_epochs=options.epochs,
        max_steps=options.max_steps,
        per_device_train_batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        warmup_steps=options.warmup_ratio,  # a float below 1: a share of the steps
        batch_sampler=sampler_for(examples.pair_groups, examples.triplet_groups),
        multi_dataset_batch_sampler=MultiDatasetBatchSamplers.PROPORTIONAL,
        logging_steps=max(1, options.max_steps // 4 if options.max_steps > 0 else 10),
        save_strategy="no",
        report_to="none",
        disable_tqdm=not progress,
        seed=options.seed,
        use_cpu=True,
        dataloader_num_workers=0,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=_datasets(examples),
        loss=_loss(model, options),
        callbacks=[KeepLosses()],
    )
    trainer.train()
    return log


def _loss(model, options: TrainOptions):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    if options.late_weight > 0:
        from .late_loss import PooledAndLateLoss

        return PooledAndLateLoss(model, options.late_weight)
    return MultipleNegativesRankingLoss(model)


def _versions() -> dict:
    import sentence_transformers
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__}


def train(
    corpus_dir: Path | str,
    base: Path | str,
    out_root: Path | str,
    options: TrainOptions | None = None,
    progress: bool = True,
    corpus: Corpus | None = None,
    on_step=None,
) -> Path:
    """Fine-tune `base` on pairs from `corpus_dir` (or from `corpus`, that folder as
    loaded and changed: qa adapt holds phrasings out); returns the new model folder."""
    from sentence_transformers import SentenceTransformer

    from ..index import corpus_hash

    options = options or TrainOptions()
    started = time.time()
    corpus = corpus or load_nonempty_corpus(corpus_dir)
    unknown = set(options.exclude_categories) - {a.category for a in corpus.articles}
    if unknown:
        raise UsageError(f"no article in {corpus_dir} has category {', '.join(sorted(unknown))}")
    model = SentenceTransformer(str(base), device="cpu", local_files_only=True)
    served_length = model.max_seq_length  # training reads less; the saved model reads all
    model.max_seq_length = options.max_seq_length
    if options.freeze_word_embeddings:
        # 96M of e5-small's 118M parameters are the 250k-piece vocabulary; most
        # pieces never occur in the corpus. Freezing them makes a step cheaper and
        # keeps what the model knows about words the help desk does not use.
        model[0].auto_model.embeddings.word_embeddings.weight.requires_grad_(False)

    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    cache = out_root / f".mining-{folder_version(str(base))}-{options.max_seq_length}.npz"
    examples = make_pairs(corpus, _cached_encode(model, cache, progress), set(options.exclude_categories), options.seed)
    if len(examples.pairs) + len(examples.triplets) < 2:
        raise NothingToBuild(f"{corpus_dir}: too few training pairs ({examples.counts})")
    probe = examples.pairs[: 4 * options.batch_size]
    loss_before = probe_loss(model, probe, options.batch_size)

    work = out_root / f".training-{os.getpid()}-{int(started)}"
    try:
        log = _fit(model, examples, options, work / "trainer", progress, on_step)
        loss_after = probe_loss(model, probe, options.batch_size)
        model.max_seq_length = served_length
        model.save(str(work / "model"))
        fit_seconds = time.time() - started
        stamp = datetime.now(UTC)
        info = {
            "trained_by": "qa train",
            "base": str(base),
            "base_version": folder_version(str(base)),
            "corpus": str(corpus_dir),
            "corpus_hash": corpus_hash(corpus),
            "excluded_categories": sorted(options.exclude_categories),
            "examples": examples.counts,
            "options": asdict(options),
            "steps": log[-1]["step"] if log else None,
            "loss_log": log,
            "probe_loss_before": round(loss_before, 4),
            "probe_loss_after": round(loss_after, 4),
            "seconds": round(fit_seconds, 1),
            "date": stamp.isoformat(timespec="seconds"),
            "versions": _versions(),
        }
        (work / "model" / "training.json").write_text(json.dumps(info, indent=2, ensure_ascii=False))
        version = write_version(work / "model", **{k: info[k] for k in ("trained_by", "base", "base_version", "date")})
        folder = out_root / f"e5-help-{stamp:%Y%m%d-%H%M%S}-{version}"
        os.replace(work / "model", folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def steps_per_epoch(examples: Pairs, batch_size: int) -> int:
    return sum(math.ceil(len(x) / batch_size) for x in (examples.pairs, examples.triplets) if x)
