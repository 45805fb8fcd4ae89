"""`qa` command line: one subcommand per step (ingest, serve, ask, eval, bench)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import get_settings


def _encoder(model: str):
    from .encoder import Encoder

    s = get_settings()
    return Encoder(model, query_prompt=s.query_prompt, passage_prompt=s.passage_prompt)


def cmd_ingest(args) -> int:
    from .corpus import CorpusError
    from .ingest import NothingToBuild, ingest

    s = get_settings()
    try:
        report = ingest(
            args.corpus,
            args.out,
            _encoder(args.model),
            strict=args.strict,
            approximate_above=s.approximate_above,
            show_progress=not args.quiet,
        )
    except CorpusError as e:
        print(f"error: {e}", file=sys.stderr)
        print("--strict: nothing was written; the previous index stays active", file=sys.stderr)
        return 1
    except (NothingToBuild, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for e in report.errors:
        print(f"{e}", file=sys.stderr)
    print(report.summary())
    return 0


def build_parser() -> argparse.ArgumentParser:
    s = get_settings()
    parser = argparse.ArgumentParser(prog="qa", description="helpdesk-qa: multilingual help-article search")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="parse the corpus, embed it, and build the index")
    p.add_argument("--corpus", type=Path, default=s.corpus_dir, help="corpus folder (default: %(default)s)")
    p.add_argument("--out", type=Path, default=s.index_dir, help="index folder (default: %(default)s)")
    p.add_argument("--model", default=s.model, help="embedding model (default: %(default)s)")
    p.add_argument("--strict", action="store_true", help="fail on the first malformed file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_ingest)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
