"""The labelled question sets `qa eval` and `qa tune` use, each paired with its corpus.

- dev: the help-desk questions on the sample corpus (`../shared/eval/dev.jsonl`);
- xquad: XQuAD's Wikipedia questions in de/ru/en on their own corpus;
- members: questions written by hand the way members type them (`eval/members.jsonl`),
  a held-out test set: `qa eval` reports it, nothing tunes or trains on it.

A question file named `questions.jsonl` takes its folder's name (`xquad`), any other
its own stem (`dev`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import ROOT, get_settings
from ..errors import UsageError

EVAL_DIR = ROOT.parent / "shared" / "eval"
DEV_SET = EVAL_DIR / "dev.jsonl"
XQUAD_SET = EVAL_DIR / "xquad" / "questions.jsonl"
XQUAD_CORPUS = EVAL_DIR / "xquad" / "corpus"
MEMBERS_SET = ROOT / "eval" / "members.jsonl"
TUNING_SETS = [DEV_SET, XQUAD_SET]  # what `qa tune` chooses weights on
HELD_OUT = [MEMBERS_SET]  # reported beside them, never tuned on
EVAL_SETS = TUNING_SETS + HELD_OUT  # what `qa eval` reports by default


@dataclass
class EvalSet:
    name: str
    questions: Path
    corpus: Path

    @property
    def held_out(self) -> bool:
        """A test set: reported, never tuned on (leave-one-category-out leaves it out too)."""
        return Path(self.questions).resolve() in {p.resolve() for p in HELD_OUT}


def set_name(path: Path) -> str:
    return path.parent.name if path.stem == "questions" else path.stem


def default_corpus(path: Path) -> Path:
    """The corpus a known question file is asked against; the configured one otherwise."""
    return XQUAD_CORPUS if Path(path) == XQUAD_SET else get_settings().corpus_dir


def pair_sets(questions: list[Path], corpora: list[Path] | None) -> list[EvalSet]:
    """One `EvalSet` per question file: its corpus by position, one corpus for all,
    or (none given) each file's default corpus."""
    if corpora is None:
        corpora = [default_corpus(q) for q in questions]
    elif len(corpora) == 1:
        corpora = corpora * len(questions)
    if len(corpora) != len(questions):
        raise UsageError("give one --corpus, or one per --questions file")
    return [EvalSet(set_name(q), q, c) for q, c in zip(questions, corpora)]
