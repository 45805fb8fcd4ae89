"""One adaptation of one index folder: lock, decide, run the steps, report.

    decide    train (the corpus changed enough, or --force), refresh (re-ingest with the
              last adapted encoder: the current build is not adapted, e.g. after a
              `qa ingest`), or nothing (say why in the status)
    run       the steps of qa/adapt/steps.py, with the status rewritten at each step
              and progress report, and logged at every tenth of the way
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import signal
import time
from pathlib import Path

from ..artifact import MODELS, build_models, current_build, read_manifest
from ..corpus import load_corpus
from ..errors import AdaptStopped, IndexLoadError, NothingToBuild
from . import changes
from .gate import held_out
from .status import Lock, StatusWriter, adapt_dir, missing_libraries, now, read_status
from .steps import CANDIDATES, Options, Run, Step, pipeline

log = logging.getLogger("qa.adapt")

FINGERPRINT_FILE = "fingerprint.json"  # the corpus as the last training saw it
WORK = "work"

def adapt(options: Options) -> dict:
    """Run one adaptation if no other job holds this index folder; returns the final
    status ({"phase": "busy", ...} when another job does)."""
    lock = Lock(options.index_dir)
    try:
        acquired = lock.acquire()
    except OSError as e:  # a read-only index folder (a replica's volume): nothing to adapt here
        log.warning("adapt: cannot lock %s (%s): no adaptation", lock.path, e)
        return {"phase": "unavailable", "reason": f"cannot lock {lock.path}: {e}"}
    if not acquired:
        running = read_status(options.index_dir)
        log.info("adapt: another job adapts %s (pid %s on %s, %s): not starting a second one", options.index_dir,
                 running.get("pid"), running.get("host"), running.get("step") or running.get("phase"))
        return {**running, "phase": "busy"}
    status = StatusWriter(options.index_dir, read_status(options.index_dir))
    previous = signal.signal(signal.SIGTERM, _stop)
    status.update(phase="starting", started=now(), finished=None, result=None, reason=None, step=None,
                  step_no=None, steps=None, percent=0.0, eta_seconds=None, build=None, gate=None,
                  nice=os.getpriority(os.PRIO_PROCESS, 0), threads=options.threads, oom_score_adj=_oom_score())
    status.start_heartbeat()
    try:
        _run(options, status)
    except AdaptStopped:
        log.warning("adapt: stopped by SIGTERM during %s", status.data.get("step"))
        status.update(phase="stopped", finished=now(), reason=f"stopped during {status.data.get('step')}")
    except Exception as e:  # the job must end with a status that says what happened
        log.exception("adapt: failed")
        status.update(phase="failed", finished=now(), reason=f"{status.data.get('step')}: {type(e).__name__}: {e}")
    finally:
        status.stop_heartbeat()
        signal.signal(signal.SIGTERM, previous)
        for scratch in (WORK, CANDIDATES):  # a candidate left here was neither promoted nor kept aside
            shutil.rmtree(adapt_dir(options.index_dir) / scratch, ignore_errors=True)
        lock.release()
    return dict(status.data)


def _oom_score() -> int | None:
    try:
        return int(Path("/proc/self/oom_score_adj").read_text())
    except (OSError, ValueError):
        return None


def _stop(signum, frame) -> None:
    raise AdaptStopped()


def _run(options: Options, status: StatusWriter) -> None:
    root = adapt_dir(options.index_dir)
    corpus = load_corpus(options.corpus_dir)
    if not corpus.articles:
        raise NothingToBuild(f"no valid article in {options.corpus_dir}")
    _load_rules(corpus, options.corpus_dir)
    printed = changes.fingerprint(corpus)
    plan, why = decide(options, printed, status.data.get("last"))
    if plan is None:
        log.info("adapt: nothing to do: %s", why)
        status.update(phase="skipped", reason=why, finished=now(), percent=None)
        return
    parts = options.parts if plan == "train" else ()
    missing = missing_libraries(parts)
    if missing:
        reason = f"training libraries missing ({', '.join(missing)}): pip install 'helpdesk-qa[train]'; serving " \
                 "is not affected"
        log.warning("adapt: %s", reason)
        status.update(phase="unavailable", reason=reason, finished=now(), percent=None)
        return
    log.info("adapt: %s (%s) in %s", plan, why, options.index_dir)
    train_corpus, questions = held_out(corpus)
    work = root / WORK
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    run = Run(options, corpus, train_corpus, questions, work)
    if plan == "refresh":
        run.encoder_folder = _last_models(root, status.data["last"]).get("encoder")
        run.reranker_folder = _last_models(root, status.data["last"]).get("reranker")
    elif options.encoder is not None:
        run.encoder_folder = options.encoder
    timings = _steps(run, pipeline(parts), status, why)
    if plan == "train":
        changes.save(root / FINGERPRINT_FILE, printed)
    assert run.verdict is not None
    models = {"encoder": run.encoder_folder, "reranker": run.reranker_folder}
    made = {k: v.name for k, v in models.items() if v is not None and v.parent == root / MODELS}
    previous = status.data.get("last") or {}
    last = {"result": run.result, "reason": run.verdict.reason, "finished": now(), "build": run.build,
            "plan": plan, "fingerprint": changes.digest(printed), "training": run.training,
            # what a refresh re-ingests with: the models of the last promoted adaptation
            "promoted_models": made if run.result == "promoted" else previous.get("promoted_models", {})}
    status.update(phase="finished", result=run.result, reason=run.verdict.reason, finished=now(), percent=100.0,
                  eta_seconds=0, build=run.build, gate=run.verdict.to_json(), seconds=timings, last=last,
                  max_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    _prune_models(root, last)


def decide(options: Options, printed: dict, last: dict | None) -> tuple[str | None, str]:
    """("train" | "refresh" | None, why)."""
    root = adapt_dir(options.index_dir)
    if options.settings.retrieval == "bm25":
        return None, "retrieval is bm25: there is no encoder to adapt"
    if options.encoder is not None:
        return "train", f"asked to gate the encoder {options.encoder}"
    if options.force:
        return "train", "asked (--force)"
    saved = changes.load(root / FINGERPRINT_FILE)
    if saved is None or not last:
        return "train", "no adaptation yet in this index folder"
    change = changes.change(saved, printed)
    if change.enough:
        return "train", f"the corpus changed: {change}"
    if last.get("result") != "promoted":
        return None, f"{change} since the last adaptation, which was kept aside ({last.get('reason')}); " \
                     "`qa adapt --force` tries again"
    wanted = _last_models(root, last)
    if _current_encoder_version(options.index_dir) == _version_of(wanted.get("encoder")):
        return None, f"up to date: the current build is adapted; {change} since its training"
    if wanted.get("encoder") is not None:
        return "refresh", f"the current build is not the adapted one; {change} since the last training"
    return "train", "the last adapted encoder is gone"


def _last_models(root: Path, last: dict) -> dict[str, Path]:
    return {role: root / MODELS / name for role, name in (last.get("promoted_models") or {}).items()
            if (root / MODELS / name).is_dir()}


def _version_of(folder: Path | None) -> str | None:
    return folder.name.split("-", 1)[1] if folder is not None else None


def _current_encoder_version(index_dir: Path) -> str | None:
    try:
        manifest = read_manifest(index_dir)
        if "encoder" in build_models(current_build(index_dir), manifest):
            return manifest["models"]["encoder"].get("version")
    except IndexLoadError:
        pass
    return None


def _steps(run: Run, steps: list[Step], status: StatusWriter, why: str) -> dict[str, dict[str, float]]:
    """Run `steps`, reporting percent (by their expected seconds) and an ETA; returns
    each step's wall and CPU seconds (CPU: what it costs on an idle machine, whatever
    else ran beside it)."""
    total = sum(s.seconds for s in steps)
    started = time.time()
    timings: dict[str, dict[str, float]] = {}
    done_before = 0.0
    logged = [0]

    for number, step in enumerate(steps, 1):
        def progress(share: float, step=step, done_before=done_before) -> None:
            percent = 100 * (done_before + min(1.0, max(0.0, share)) * step.seconds) / total
            elapsed = time.time() - started
            eta = round(elapsed * (100 - percent) / percent) if percent >= 2 else None
            status.update(percent=round(percent, 1), eta_seconds=eta)
            if percent >= logged[0] + 10:
                logged[0] = int(percent // 10 * 10)
                log.info("adapt: %s %.0f%% (eta %s)", step.name, percent, f"{eta // 60} min" if eta else "unknown")

        run.progress = progress
        status.update(phase="running", step=step.name, step_no=number, steps=[s.name for s in steps], why=why)
        progress(0.0)
        log.info("adapt: step %d/%d %s", number, len(steps), step.name)
        t0, cpu0 = time.time(), time.process_time()
        step.run(run)
        timings[step.name] = {"wall": round(time.time() - t0, 1), "cpu": round(time.process_time() - cpu0, 1)}
        done_before += step.seconds
    return timings


def _load_rules(corpus, corpus_dir: Path) -> None:
    from ..errors import CorpusError
    from ..rules import RULES_FILE, load_rules

    try:
        corpus.rules = load_rules(Path(corpus_dir) / RULES_FILE, corpus)
    except CorpusError as e:  # as `qa ingest` does: no rules rather than a wrong one
        corpus.errors.append(e)


def _prune_models(root: Path, last: dict) -> None:
    """adapt/models keeps the last adaptation's models (what a refresh re-ingests with);
    builds hold their own links to theirs."""
    keep = set((last.get("promoted_models") or {}).values())
    for folder in (root / MODELS).glob("*"):
        if folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)
