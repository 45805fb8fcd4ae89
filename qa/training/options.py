"""`TrainOptions`: the one place where the training defaults are written.

`qa train` takes its argument defaults from here, `qa.training.train.train` its
options, and scripts/train_loco.py its own; change a default here and all follow.
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
    exclude_categories: list[str] = field(default_factory=list)
    seed: int = 9
