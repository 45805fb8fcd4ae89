"""`qa` command line: one subcommand per step (ingest, serve, ask, eval, tune, bench, deploy, report, gaps)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import ROOT, get_settings

EVAL_DIR = ROOT.parent / "shared" / "eval"
DEV_SET = EVAL_DIR / "dev.jsonl"
# The helpdesk questions on our corpus and XQuAD on its own: what `qa eval` and `qa tune` use by default.
EVAL_SETS = [DEV_SET, EVAL_DIR / "xquad" / "questions.jsonl"]
EVAL_CORPORA = [get_settings().corpus_dir, EVAL_DIR / "xquad" / "corpus"]


def _encoder(model: str):
    from .encoder import Encoder

    s = get_settings()
    return Encoder(model, query_prompt=s.query_prompt, passage_prompt=s.passage_prompt)


def _load(index_dir: Path):
    """(encoder, index) for the configured model, or None after printing why not."""
    from .artifact import IndexError_, load_index

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
    from .server import prepare_metrics_dir, remove_metrics_dir, serve

    url = f"http://{args.host}:{args.port}"
    print(f"helpdesk-qa on {url}  (demo portal: {url}/  agent console: {url}/agent  API docs: {url}/docs)")
    metrics_dir = prepare_metrics_dir()  # before any worker imports prometheus-client
    try:
        serve(args.host, args.port, args.workers, args.log_level, access_log=not args.no_access_log,
              drain_seconds=get_settings().drain_seconds)
    finally:
        remove_metrics_dir(metrics_dir)
    return 0


def cmd_deploy(args) -> int:
    import logging

    from .deploy import Deployment, find_nginx, render_nginx

    ports = [args.replica_port + n for n in range(args.replicas)]
    if args.action == "render":
        print(render_nginx(args.port, ports, rate=args.rate, burst=args.burst))
        return 0
    if not find_nginx():
        print("error: nginx not found: apt-get install -y nginx", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)  # imported for the pages' CSP hashes
    Deployment(args.run_dir, args.port, ports, rate=args.rate, burst=args.burst).run()


def cmd_report(args) -> int:
    from .insights import overview, parse_since, to_csv, to_text
    from .store import StoreError, open_store

    s = get_settings()
    try:
        seconds = parse_since(args.since)
        store = open_store(s.database_url, s.data_dir)
        embed = None if args.no_grouping else _encoder(s.model).encode_queries
        report = overview(store, seconds, embed, limit=args.limit)
    except (ValueError, StoreError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(to_csv(report) if args.csv else to_text(report), end="" if args.csv else "\n")
    return 0


def cmd_gaps(args) -> int:
    import json

    from .gaps import gaps, to_text
    from .insights import parse_since
    from .search import Searcher
    from .store import StoreError, open_store

    s = get_settings()
    try:
        seconds = parse_since(args.since)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    loaded = _load(args.index)
    if loaded is None:
        return 1
    encoder, index = loaded
    try:
        groups = gaps(open_store(s.database_url, s.data_dir), seconds, Searcher(index, encoder),
                      encoder.encode_queries, limit=args.limit)
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(groups, ensure_ascii=False, indent=2) if args.json else to_text(groups))
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


def _eval_sets(args) -> list[tuple[str, list, Path]] | None:
    """(name, questions, corpus) per `--questions` file, its corpus paired by position
    (one `--corpus` serves every file); None after printing why not."""
    from .evaluate import QuestionFileError, load_questions

    if args.corpus is None:  # the defaults pair up; a question file of one's own goes with corpus/
        args.corpus = EVAL_CORPORA if args.questions == EVAL_SETS else [get_settings().corpus_dir]
    corpora = args.corpus if len(args.corpus) > 1 else args.corpus * len(args.questions)
    if len(corpora) != len(args.questions):
        print("error: give one --corpus, or one per --questions file", file=sys.stderr)
        return None
    sets = []
    for path, corpus in zip(args.questions, corpora):
        try:
            questions = load_questions(path)
        except (OSError, QuestionFileError) as e:
            print(f"error: {e}", file=sys.stderr)
            return None
        name = path.parent.name if path.stem == "questions" else path.stem  # xquad/questions.jsonl -> xquad
        sets.append((name, questions, corpus))
    return sets


def _systems(args, sets, models, phrasings=(True,)):
    """{set name: {label: System}}, or None after printing why not."""
    from .evaluate import System, build_searchers

    s = get_settings()
    out = {}
    for name, questions, corpus in sets:
        try:
            searchers = build_searchers(corpus, models, args.cache, s.query_prompt, s.passage_prompt, phrasings)
        except (ValueError, FileNotFoundError) as e:
            print(f"error: {e}", file=sys.stderr)
            return None
        out[name] = {label: System(label, searcher, questions) for label, searcher in searchers.items()}
    return out


def cmd_eval(args) -> int:
    import json

    from .evaluate import breakdown, format_table, misses

    sets = _eval_sets(args)
    if sets is None:
        return 1
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    phrasings = {"on": (True,), "off": (False,), "both": (True, False)}[args.phrasings]
    systems = _systems(args, sets, models, phrasings)
    if systems is None:
        return 1
    if args.loco:
        return _print_loco(systems, f"{models[0]} hybrid", args.json)
    tables = {name: {label: breakdown(system.run()) for label, system in by_label.items()} for name, by_label in systems.items()}
    out = sys.stderr if args.json else sys.stdout
    if args.json:
        print(json.dumps(tables, indent=2, ensure_ascii=False))
    else:
        for (name, questions, corpus), table in zip(sets, tables.values()):
            print(f"\n== {name}: {len(questions)} questions; corpus {corpus}")
            print(format_table(table))
    if args.misses:
        label = f"{models[0]} hybrid"
        for name, by_label in systems.items():
            print(f"\nMisses of {label} on {name}:", file=out)
            for line in misses(by_label[label].run()):
                print("  " + line, file=out)
    return 0


def _print_loco(systems: dict, label: str, as_json: bool) -> int:
    """Leave-one-category-out on the first set, the other sets joining every tuning."""
    import json

    from tqdm import tqdm

    from .tuning import LOCO_PASSES, grid_steps, leave_one_category_out, tuned_values

    names = list(systems)
    main = systems[names[0]][label]
    others = [systems[n][label] for n in names[1:]]
    categories = {q.category for q in main.questions} - {"none"}
    with tqdm(total=grid_steps(LOCO_PASSES) * len(categories), desc="leave-one-category-out", disable=as_json) as bar:
        results = leave_one_category_out(main, others, bar)
    if as_json:
        print(json.dumps([{"category": r.category, **r.metrics, "weights": tuned_values(r.ranking)} for r in results], indent=2))
        return 0
    print(f"\nLeave-one-category-out, {label}: weights tuned without the category's {names[0]} questions"
          + (f" (plus {', '.join(names[1:])})" if others else "") + ", scored on them")
    print(f"{'category':<16}{'n':>5}{'R@1':>8}{'R@5':>8}{'MRR@10':>8}   weights chosen without it")
    for r in results:
        w = ", ".join(f"{k}={v:g}" for k, v in tuned_values(r.ranking).items())
        print(f"{r.category:<16}{r.n:>5}{r.metrics['R@1']:>8.3f}{r.metrics['R@5']:>8.3f}{r.metrics['MRR@10']:>8.3f}   {w}")
    r1 = [r.metrics["R@1"] for r in results]
    worst = min(results, key=lambda r: r.metrics["R@1"])
    print(f"{'mean':<16}{sum(r.n for r in results):>5}{sum(r1) / len(r1):>8.3f}"
          f"{sum(r.metrics['R@5'] for r in results) / len(results):>8.3f}"
          f"{sum(r.metrics['MRR@10'] for r in results) / len(results):>8.3f}")
    print(f"worst: {worst.category} {worst.metrics['R@1']:.3f}")
    return 0


def cmd_tune(args) -> int:
    import json

    from tqdm import tqdm

    from .evaluate import format_table, breakdown
    from .search import RANKING_FILE
    from .tuning import Split, grid_steps, objective, tune, tuned_values

    sets = _eval_sets(args)
    if sets is None:
        return 1
    systems = _systems(args, sets, [args.model])
    if systems is None:
        return 1
    label = f"{args.model} hybrid"
    chosen = {name: by_label[label] for name, by_label in systems.items()}
    splits = [Split(system) for system in chosen.values()]
    start = next(iter(chosen.values())).searcher.ranking
    with tqdm(total=grid_steps(), desc=f"tuning {args.model}") as bar:
        ranking = tune(splits, start, bar)
    print(f"objective (mean of (R@1 + MRR@10) / 2 over {', '.join(chosen)}): "
          f"{objective(splits, start):.4f} before, {objective(splits, ranking):.4f} after")
    print("weights: " + json.dumps(tuned_values(ranking)))
    for name, system in chosen.items():
        print(f"\n== {name}")
        print(format_table({"before": breakdown(system.run(start)), "after": breakdown(system.run(ranking))}))
    if args.write:
        table = json.loads(RANKING_FILE.read_text(encoding="utf-8")) if RANKING_FILE.exists() else {}
        table[args.model] = tuned_values(ranking)
        RANKING_FILE.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"\nwrote the weights for {args.model} to {RANKING_FILE}")
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

    p = sub.add_parser("deploy", help="nginx in front of N replicas on this machine (docs/deploy.md)")
    p.add_argument("action", choices=["up", "render"], help="up: run until SIGTERM/Ctrl-C; render: print the nginx config")
    p.add_argument("--replicas", type=int, default=2, help="qa serve processes (default: %(default)s)")
    p.add_argument("--port", type=int, default=8080, help="nginx listens on 127.0.0.1:PORT (default: %(default)s)")
    p.add_argument("--replica-port", type=int, default=8101, help="first replica's port (default: %(default)s)")
    p.add_argument("--rate", type=float, default=20, help="requests/s per client address on /v1/* (default: %(default)s)")
    p.add_argument("--burst", type=int, default=40, help="burst above the rate before 429 (default: %(default)s)")
    p.add_argument("--run-dir", type=Path, default=Path("run"), help="config, logs, pid files (default: %(default)s)")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("report", help="the insights overview of the event store (questions, gaps, feedback)")
    p.add_argument("--since", default="7d", help="how far back: 7d, 24h, 2w (default: %(default)s)")
    p.add_argument("--csv", action="store_true", help="CSV instead of text")
    p.add_argument("--limit", type=int, default=15, help="rows per list (default: %(default)s)")
    p.add_argument("--no-grouping", action="store_true", help="group unanswered questions by exact text only (no model)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("gaps", help="unanswered and 'not helpful' question groups, nearest articles, YAML phrasings")
    p.add_argument("--since", default="30d", help="how far back: 30d, 7d, 2w (default: %(default)s)")
    p.add_argument("--limit", type=int, default=15, help="groups of each kind (default: %(default)s)")
    p.add_argument("--index", type=Path, default=s.index_dir, help="index folder (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="machine-readable output, with every article's snippet")
    p.set_defaults(func=cmd_gaps)

    p = sub.add_parser("ask", help="print the best sections for a question")
    p.add_argument("question")
    p.add_argument("--lang", choices=["ru", "de", "en"], help="language of the question (default: detected)")
    p.add_argument("--country", type=str.upper, choices=list(_countries()), help="member's country")
    p.add_argument("--category")
    p.add_argument("--limit", type=int, default=3)
    p.add_argument("--index", type=Path, default=s.index_dir, help="index folder (default: %(default)s)")
    p.set_defaults(func=cmd_ask)

    def eval_inputs(p):
        p.add_argument("--questions", type=Path, nargs="+", default=EVAL_SETS,
                       help="JSONL question files (default: the dev set and XQuAD)")
        p.add_argument("--corpus", type=Path, nargs="+",
                       help="corpus folder, one for all question files or one each (default: corpus/ "
                       "for the dev set, the XQuAD corpus for XQuAD)")
        p.add_argument("--cache", type=Path, default=s.index_dir / "cache", help="embedding cache folder")

    p = sub.add_parser("eval", help="answer quality on labelled questions, beside BM25 and dense baselines")
    eval_inputs(p)
    p.add_argument("--models", default=s.model, help="comma-separated models to compare (default: %(default)s)")
    p.add_argument("--phrasings", choices=["on", "off", "both"], default="on",
                   help="index the articles' questions: phrasings, or not, or compare both")
    p.add_argument("--loco", action="store_true",
                   help="leave-one-category-out: weights tuned without each category, scored on it")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--misses", action="store_true", help="list each miss with what ranked first")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("tune", help="choose the ranking weights for a model on labelled questions")
    eval_inputs(p)
    p.add_argument("--model", default=s.model, help="default: %(default)s")
    p.add_argument("--write", action="store_true", help="store the weights in qa/ranking.json")
    p.set_defaults(func=cmd_tune)

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
