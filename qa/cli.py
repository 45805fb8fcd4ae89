"""`qa` command line: one subcommand per step (ingest, serve, ask, eval, bench)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import ROOT, get_settings

DEV_SET = ROOT.parent / "shared" / "eval" / "dev.jsonl"


def _encoder(model: str):
    from .encoder import Encoder

    s = get_settings()
    return Encoder(model, query_prompt=s.query_prompt, passage_prompt=s.passage_prompt)


def _load(index_dir: Path):
    """(encoder, index) for the configured model, or None after printing why not."""
    from .index import IndexError_, load_index

    encoder = _encoder(get_settings().model)
    try:
        return encoder, load_index(index_dir, model=encoder.identity)
    except IndexError_ as e:
        print(f"error: {e}", file=sys.stderr)
        return None


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


def cmd_serve(args) -> int:
    from .server import serve

    url = f"http://{args.host}:{args.port}"
    print(f"helpdesk-qa on {url}  (demo portal: {url}/  agent console: {url}/agent  API docs: {url}/docs)")
    serve(args.host, args.port, args.workers, args.log_level, access_log=not args.no_access_log)
    return 0


def cmd_ask(args) -> int:
    from .search import Searcher

    loaded = _load(args.index)
    if loaded is None:
        return 1
    encoder, index = loaded
    searcher = Searcher(index, encoder)
    country = args.country.upper() if args.country else None
    result = searcher.search(args.question, lang=args.lang, country=country, category=args.category, limit=args.limit)
    print(f"query language: {result.query_lang}   answered: {'yes' if result.answered else 'no'}")
    for n, hit in enumerate(result.hits, 1):
        s_, a = hit.section, hit.article
        link = f"{a.url}#{s_.anchor}" if s_.anchor else a.url
        only = "" if s_.lang == result.query_lang or result.query_lang == "unknown" else f"  (only in {s_.lang})"
        print(f"\n{n}. [{hit.score:.3f}] {a.title} › {s_.title}{only}")
        print(f"   {link}   countries: {', '.join(s_.countries)}")
        for i, step in enumerate(s_.steps, 1):
            print(f"   {i}. {step}")
        if not s_.steps:
            print("   " + s_.plain[:300].replace("\n", " ") + ("…" if len(s_.plain) > 300 else ""))
    if not result.answered:
        print("\nNo confident answer: contact support and include your member ID.")
    return 0


def cmd_eval(args) -> int:
    import json

    from .evaluate import QuestionFileError, breakdown, evaluate, format_table, load_questions, misses

    s = get_settings()
    try:
        questions = load_questions(args.questions)
    except (OSError, QuestionFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        outcomes = evaluate(args.corpus, questions, models, args.cache, s.query_prompt, s.passage_prompt)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    tables = {label: breakdown(o) for label, o in outcomes.items()}
    if args.json:
        print(json.dumps(tables, indent=2, ensure_ascii=False))
    else:
        print(f"{len(questions)} questions from {args.questions}; corpus {args.corpus}")
        print(format_table(tables))
    if args.misses:
        label = f"{models[0]} hybrid"
        print(f"\nMisses of {label}:", file=sys.stderr if args.json else sys.stdout)
        for line in misses(outcomes[label]):
            print("  " + line, file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_bench(args) -> int:
    from . import bench
    from .evaluate import load_questions
    from .search import Searcher

    questions = [q.q for q in load_questions(args.questions)]
    loaded = _load(args.index)
    if loaded is None:
        return 1
    encoder, index = loaded
    report: dict = {}
    if args.synthetic:
        base = index.faiss_index.reconstruct_n(0, index.faiss_index.ntotal)
        queries = index.center(encoder.encode_queries(questions), None)
        report["synthetic"] = [bench.synthetic(base, queries, int(n)) for n in args.synthetic.split(",")]
        print(bench.format_synthetic(report["synthetic"]))
    else:
        clients = [int(c) for c in args.clients.split(",")]
        steps = bench.breakdown(Searcher(index, encoder), questions)
        report["breakdown_ms"] = steps
        print("In-process, median ms per step: " + ", ".join(f"{k} {v:.3f}" for k, v in steps.items()))
        rates = [float(r) for r in args.rates.split(",") if r]
        # The bench cycles through a fixed set of questions: without disabling the query
        # cache it would measure cache hits, not search.
        no_cache = {"HELPDESK_QA_QUERY_CACHE": "0"}
        report["hybrid"] = bench.load_table(
            args.index, questions, clients, args.seconds, args.workers, no_cache, rates
        )
        print(bench.format_load(report["hybrid"], f"\nHTTP GET /v1/ask, {args.workers} worker(s), {args.seconds:g} s per row: hybrid"))
        cached = bench.load_table(
            args.index, questions, clients[-1:], args.seconds, args.workers, {"HELPDESK_QA_QUERY_CACHE": "4096"}
        )
        report["hybrid_cached"] = cached
        print(bench.format_load(cached, "\nsame, every query vector already in the LRU cache (repeated questions)"))
        report["bm25"] = bench.load_table(
            args.index, questions, clients, args.seconds, args.workers, {"HELPDESK_QA_RETRIEVAL": "bm25"}, rates
        )
        print(bench.format_load(report["bm25"], "\nsame load, BM25-only configuration"))
        print("\nhybrid / BM25-only: " + ", ".join(
            f"{h['clients']} clients: {h['rps'] / b['rps']:.2f}x req/s, {h['p50_ms'] / b['p50_ms']:.2f}x p50"
            for h, b in zip(report["hybrid"], report["bm25"])
            if not h.get("offered_rps")
        ))
    if args.json:
        Path(args.json).write_text(bench.to_json(report))
    return 0


def _countries():
    from .corpus import COUNTRIES

    return COUNTRIES


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

    p = sub.add_parser("serve", help="run the HTTP service (uvicorn)")
    p.add_argument("--host", default=s.host, help="default: %(default)s")
    p.add_argument("--port", type=int, default=s.port, help="default: %(default)s")
    p.add_argument("--workers", type=int, default=s.workers, help="worker processes (default: %(default)s)")
    p.add_argument("--log-level", default="info")
    p.add_argument("--no-access-log", action="store_true")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("ask", help="print the best sections for a question")
    p.add_argument("question")
    p.add_argument("--lang", choices=["ru", "de", "en"], help="language of the question (default: detected)")
    p.add_argument("--country", type=str.upper, choices=list(_countries()), help="member's country")
    p.add_argument("--category")
    p.add_argument("--limit", type=int, default=3)
    p.add_argument("--index", type=Path, default=s.index_dir, help="index folder (default: %(default)s)")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="answer quality on labelled questions, beside BM25 and dense baselines")
    p.add_argument("--questions", type=Path, default=DEV_SET, help="JSONL questions (default: %(default)s)")
    p.add_argument("--corpus", type=Path, default=s.corpus_dir, help="corpus folder (default: %(default)s)")
    p.add_argument("--models", default=s.model, help="comma-separated models to compare (default: %(default)s)")
    p.add_argument("--cache", type=Path, default=s.index_dir / "cache", help="embedding cache folder")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--misses", action="store_true", help="list each miss with what ranked first")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="load the real server, break a search down, or test FAISS at scale")
    p.add_argument("--index", type=Path, default=s.index_dir, help="index folder (default: %(default)s)")
    p.add_argument("--questions", type=Path, default=DEV_SET, help="queries to send (default: %(default)s)")
    p.add_argument("--clients", default="1,8,32", help="concurrent clients per row (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=10, help="duration of each row (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="server worker processes (default: %(default)s)")
    p.add_argument("--rates", default="250,500", help="open-loop rows: requests/s offered by the most clients")
    p.add_argument("--synthetic", metavar="N[,N]", help="instead: FAISS exact vs IVF on N synthetic vectors")
    p.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    p.set_defaults(func=cmd_bench)

    from .model_cli import add_commands  # qa model build-e5 / export-onnx, qa train

    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
