"""The one place where the training defaults are written: `TrainOptions` (the e5
fine-tuning, `qa train`) and `CrossOptions` (the second stage, `qa train-rerank`).

`qa train` and `qa train-rerank` take their argument defaults from here,
`qa.training.train.train` and `qa.training.cross_train.train_cross` their options, and
scripts/train_loco.py its own; change a default here and all follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainOptions:
    """How `qa train` fine-tunes e5 (docs/quality-training.md says why these values)."""

    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    max_steps: int = -1  # > 0: stop after this many steps (tests, quick runs)
    max_seq_length: int = 128
    freeze_word_embeddings: bool = True
    # > 0: late interaction trained in the same pass, weighted so (qa/training/late_loss.py)
    late_weight: float = 0.0
    exclude_categories: list[str] = field(default_factory=list)
    seed: int = 9


@dataclass
class CrossOptions:
    """How `qa train-rerank` trains the second stage (qa/training/cross_train.py)."""

    # Two of e5's twelve layers and 128 tokens: about 13 ms per candidate on one core
    # (four layers and 192 tokens cost about four times as much, docs/quality.md).
    layers: int = 2
    max_length: int = 128
    groups_per_batch: int = 2
    negatives: int = 7
    epochs: int = 1
    learning_rate: float = 5e-5
    head_learning_rate: float = 1e-3
    warmup: float = 0.05
    threads: int = 2
    seed: int = 13
    limit: int = 0  # at most this many groups (0: all); for tests
