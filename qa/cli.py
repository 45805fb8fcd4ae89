"""`qa` command line: one subcommand per step (ingest, serve, ask, rules test, eval, tune,
bench, deploy, report, gaps; `qa model`, `qa train` and `qa train-rerank` from
qa/training/cli.py; `qa adapt` from qa/adapt/cli.py).

Each command is a small function over the library and returns the exit code.
Refusals are raised as `QAError`s and printed once, by `main`, as `error: …`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from .config import get_settings
from .corpus import COUNTRIES, LANGUAGES, deep_link
from .errors import CorpusError, MissingDependency, QAError, UsageError
from .quality.sets import DEV_SET, EVAL_SETS, TUNING_SETS


def _encoder(model: str):
    from .encoder import Encoder

    s = get_settings()
    return Encoder(model, query_prompt=s.query_prompt, passage_prompt=s.passage_prompt)


def _load(index_dir: Path):
    """(encoder, index) for the configured model; raises `IndexLoadError`."""
    from .artifact import load_index

    encoder = _encoder(get_settings().model)
    return encoder, load_index(index_dir, model=encoder.identity)


def cmd_ingest(args) -> int:
    from .ingest import ingest

    try:
        report = ingest(args.corpus, args.out, _encoder(args.model), strict=args.strict,
                        approximate_above=get_settings().approximate_above, show_progress=not args.quiet)
    except CorpusError as e:  # only with --strict: the first malformed file stops the build
        raise CorpusError(e.path, e.line, f"{e.reason}\n--strict: nothing was written; the previous index stays "
                          "active") from None
    for e in report.errors:
        print(f"{e}", file=sys.stderr)
    print(report.summary())
    return 0


def cmd_serve(args) -> int:
    from .ops.server import prepare_metrics_dir, remove_metrics_dir, serve

    url = f"http://{args.host}:{args.port}"
    print(f"helpdesk-qa on {url}  (demo portal: {url}/  agent console: {url}/agent  API docs: {url}/docs)")
    metrics_dir = prepare_metrics_dir()  # before any worker imports prometheus-client
    from .adapt.launch import start_background

    start_background(get_settings())  # `qa adapt` beside the server (docs/adapt.md); it does not wait
    try:
        serve(args.host, args.port, args.workers, args.log_level, access_log=not args.no_access_log,
              drain_seconds=get_settings().drain_seconds)
    finally:
        remove_metrics_dir(metrics_dir)
    return 0


def cmd_deploy(args) -> int:
    import logging

    from .ops.deploy import Deployment, find_nginx, render_nginx, scrub_error_line

    if args.action == "scrub-log":  # nginx's error log in a container: its lines quote the request
        for line in sys.stdin:
            print(scrub_error_line(line.rstrip("\n")), flush=True)
        return 0
    ports = [args.replica_port + n for n in range(args.replicas)]
    if args.action == "render":
        upstreams = [u.strip() for u in args.upstream.split(",") if u.strip()] if args.upstream else None
        print(render_nginx(args.listen or args.port, ports, rate=args.rate, burst=args.burst,
                           upstreams=upstreams, template=args.template))
        return 0
    if not find_nginx():
        raise MissingDependency("nginx not found: apt-get install -y nginx")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)  # imported for the pages' CSP hashes
    Deployment(args.run_dir, args.port, ports, rate=args.rate, burst=args.burst).run()
    return 0


def cmd_report(args) -> int:
    from .events.connect import open_store
    from .events.insights import overview, parse_since, to_csv, to_text

    s = get_settings()
    seconds = parse_since(args.since)
    store = open_store(s.database_url, s.data_dir)
    embed = None if args.no_grouping else _encoder(s.model).encode_queries
    report = overview(store, seconds, embed, limit=args.limit)
    print(to_csv(report) if args.csv else to_text(report), end="" if args.csv else "\n")
    return 0


def cmd_gaps(args) -> int:
    from .events.connect import open_store
    from .events.gaps import gaps, to_text
    from .events.insights import parse_since
    from .search import Searcher

    s = get_settings()
    seconds = parse_since(args.since)
    encoder, index = _load(args.index)
    groups = gaps(open_store(s.database_url, s.data_dir), seconds, Searcher(index, encoder),
                  encoder.encode_queries, limit=args.limit)
    print(json.dumps(groups, ensure_ascii=False, indent=2) if args.json else to_text(groups))
    return 0


def cmd_ask(args) -> int:
    from .search import Searcher

    encoder, index = _load(args.index)
    result = Searcher(index, encoder).search(args.question, lang=args.lang, country=args.country,
                                             category=args.category, limit=args.limit)
    print(f"query language: {result.query_lang}   answered: {'yes' if result.answered else 'no'}")
    for n, hit in enumerate(result.hits, 1):
        s_, a = hit.section, hit.article
        only = "" if s_.lang == result.query_lang or result.query_lang == "unknown" else f"  (only in {s_.lang})"
        by = f"  (rule {hit.rule})" if hit.rule else ""
        print(f"\n{n}. [{hit.score:.3f}] {a.title} › {s_.title}{only}{by}")
        print(f"   {deep_link(a.url, s_)}   countries: {', '.join(s_.countries)}")
        for i, step in enumerate(s_.steps, 1):
            print(f"   {i}. {step}")
        if not s_.steps:
            print("   " + s_.plain[:300].replace("\n", " ") + ("…" if len(s_.plain) > 300 else ""))
    if not result.answered:
        print("\nNo confident answer: contact support and mention your member ID.")
    return 0


def cmd_rules_test(args) -> int:
    """What the rules do to one question: the rules whose condition it meets (and
    whether each is in force), the results without rules and with them."""
    from datetime import UTC, datetime

    from .corpus import Corpus
    from .rules import RULES_FILE, Rules, load_rules, status
    from .search import Searcher

    try:
        at = datetime.fromisoformat(args.at).astimezone(UTC) if args.at else datetime.now(UTC)
    except ValueError:
        raise UsageError(f"--at {args.at}: not an ISO time such as 2026-12-04T18:00:00+00:00") from None
    encoder, index = _load(args.index)
    source = f"the index in {args.index}"
    path = args.rules or get_settings().corpus_dir / RULES_FILE
    if path.is_file():  # the file as edited now, checked against the indexed articles
        articles = [replace(a, sections=[s_ for s_, n in zip(index.sections, index.section_article) if n == a_no])
                    for a_no, a in enumerate(index.articles)]
        index.rules, source = load_rules(path, Corpus(articles=articles, errors=[])), str(path)
    index.rules.clock = lambda: at
    searcher = Searcher(index, encoder)
    lang = args.lang or searcher.signals(args.question).query_lang
    matched = index.rules.matching(args.question, index.synonyms, lang, args.country, args.category, at, True)
    print(f"{len(index.rules)} rule(s) from {source}; at {at.isoformat(timespec='seconds')}; "
          f"question language {lang}, country {args.country or 'any'}")
    for rule in matched:
        print(f"  rule '{rule.name}' (line {rule.line}): {rule.action} {rule.target} - {status(rule, at)}")
    if not matched:
        print("  no rule's condition matches this question")
    rules, index.rules = index.rules, Rules()
    kw = {"lang": args.lang, "country": args.country, "category": args.category, "limit": args.limit}
    before = searcher.search(args.question, **kw)
    index.rules = rules
    after = searcher.search(args.question, **kw)
    for title, result in (("without rules", before), ("with rules", after)):
        print(f"\n{title}: answered {'yes' if result.answered else 'no'}")
        for n, hit in enumerate(result.hits, 1):
            by = f"   <- {hit.rule}" if hit.rule else ""
            print(f"  {n}. [{hit.score:.3f}] {hit.article.id}#{hit.section.anchor} {hit.section.title}{by}")
    for fired in after.rules:
        print(f"rule '{fired.rule.name}': {fired.effect}")
    return 0


def _reranker(folder: Path, threads: int = 1):
    """The second stage in `folder` (`--reranker`); a `UsageError` when it is not one."""
    from .rerank import Reranker, is_cross_folder

    if not is_cross_folder(folder):
        raise UsageError(f"--reranker {folder}: not a cross-encoder folder (qa train-rerank)")
    return Reranker.from_folder(folder, threads=threads)


def _systems(args, models: list[str], phrasings: tuple[bool, ...] = (True,)):
    """The evaluation sets of `--questions`/`--corpus` and {set name: {label: System}}."""
    from .quality.evaluate import systems_for
    from .quality.sets import pair_sets

    s = get_settings()
    sets = pair_sets(args.questions, args.corpus)
    return sets, systems_for(sets, models, args.cache, s.query_prompt, s.passage_prompt, phrasings,
                             getattr(args, "typos", 0), s.typo_tolerance)


def cmd_eval(args) -> int:
    from .quality.evaluate import breakdown, format_table, misses

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    phrasings = {"on": (True,), "off": (False,), "both": (True, False)}[args.phrasings]
    sets, systems = _systems(args, models, phrasings)
    label = f"{models[0]} hybrid"
    if args.reranker:
        reranker = _reranker(args.reranker, threads=2)
        for by_label in systems.values():
            staged = by_label[label].with_reranker(reranker)
            by_label[staged.label] = staged
    if args.loco:  # held-out sets join no tuning
        return _loco({s.name: systems[s.name] for s in sets if not s.held_out}, label, args.json)
    tables = {
        name: {lb: breakdown(system.run()) for lb, system in by_label.items()} for name, by_label in systems.items()
    }
    out = sys.stderr if args.json else sys.stdout
    if args.json:
        print(json.dumps(tables, indent=2, ensure_ascii=False))
    else:
        for eval_set, (name, by_label) in zip(sets, systems.items()):
            typos = f", {args.typos} typo(s) each" if args.typos else ""
            n = len(next(iter(by_label.values())).questions)
            print(f"\n== {name}: {n} questions{typos}; corpus {eval_set.corpus}")
            print(format_table(tables[name]))
    if args.misses:
        for name, by_label in systems.items():
            print(f"\nMisses of {label} on {name}:", file=out)
            for line in misses(by_label[label].run()):
                print("  " + line, file=out)
    return 0


def _loco(systems: dict, label: str, as_json: bool) -> int:
    """Leave-one-category-out on the first set, the other sets joining every tuning."""
    from tqdm import tqdm

    from .quality.tuning import LOCO_PASSES, format_loco, grid_steps, leave_one_category_out, loco_records

    names = list(systems)
    main = systems[names[0]][label]
    others = [systems[n][label] for n in names[1:]]
    categories = {q.category for q in main.questions} - {"none"}
    with tqdm(total=grid_steps(LOCO_PASSES) * len(categories), desc="leave-one-category-out", disable=as_json) as bar:
        results = leave_one_category_out(main, others, bar)
    print(json.dumps(loco_records(results), indent=2) if as_json else "\n" + format_loco(results, label, names))
    return 0


def cmd_tune(args) -> int:
    from tqdm import tqdm

    from .quality.evaluate import breakdown, format_table
    from .quality.tuning import Split, grid_steps, objective, tune

    sets, systems = _systems(args, [args.model])
    if any(s.held_out for s in sets):
        raise UsageError("qa tune: eval/members.jsonl is a held-out test set; tune on the dev set and XQuAD")
    label = f"{args.model} hybrid"
    chosen = {name: by_label[label] for name, by_label in systems.items()}
    splits = [Split(system) for system in chosen.values()]
    start = next(iter(chosen.values())).searcher.ranking
    if args.keep_weights:  # only the no-answer decision is fitted anew
        ranking = start
    else:
        with tqdm(total=grid_steps(), desc=f"tuning {args.model}") as bar:
            ranking = tune(splits, start, bar)
    ranking = replace(ranking, answer_model=_fit_answer_model(sets, chosen, ranking, args.cache))
    print(f"objective (mean of (R@1 + MRR@10) / 2 over {', '.join(chosen)}): "
          f"{objective(splits, start):.4f} before, {objective(splits, ranking):.4f} after")
    print("weights: " + json.dumps(ranking.tuned_values()))
    for name, system in chosen.items():
        print(f"\n== {name}")
        print(format_table({"before": breakdown(system.run(start)), "after": breakdown(system.run(ranking))}))
    if args.write:
        path = ranking.save(args.model)
        print(f"\nwrote the weights for {args.model} to {path}")
    return 0


def _fit_answer_model(sets, chosen: dict, ranking, cache_dir: Path):
    """The no-answer decision on the first set's corpus; the questions of sets on other
    corpora (XQuAD) are off-domain there."""
    from .corpus import load_corpus
    from .index import EmbeddingCache
    from .quality.answerability import (
        feature_ablation,
        fit_for_corpus,
        format_ablation,
        format_leave_category_out,
        leave_category_out,
        training_set,
    )
    from .quality.evaluate import corpus_cache

    first = sets[0]
    off_domain = [(q.q, q.lang, "|".join(q.gold)) for s in sets[1:]
                  if Path(s.corpus).resolve() != Path(first.corpus).resolve() for q in chosen[s.name].questions]
    encoder = chosen[first.name].searcher.encoder
    cache = EmbeddingCache(corpus_cache(cache_dir, first.corpus), encoder.identity)
    corpus = load_corpus(first.corpus)
    examples, x, y = training_set(corpus, encoder, ranking, off_domain, cache)
    model = fit_for_corpus(corpus, examples, x, y)
    print(f"no-answer decision fitted on {first.corpus}'s phrasings and headings, the written unanswerable "
          f"questions and {len(off_domain)} off-domain ones (threshold {model.threshold})")
    print(format_ablation(feature_ablation(examples, x, y)))
    system = chosen[first.name]
    folds = {c: replace(m, articles=model.articles) for c, m in leave_category_out(examples, x, y).items()}
    print(format_leave_category_out(folds,
                                    lambda m: system.run(replace(ranking, answer_model=m))))
    return model


def cmd_bench(args) -> int:
    from .quality import bench
    from .quality.evaluate import load_questions
    from .search import Searcher

    questions = [q.q for q in load_questions(args.questions)]
    report: dict = {}
    if args.encoder_batches:
        report["encoder_batches"] = {m: bench.batch_costs(_encoder_for_bench(m), questions)
                                     for m in args.encoder_batches.split(",")}
        print(bench.format_batches(report["encoder_batches"]))
        if args.json:
            Path(args.json).write_text(bench.to_json(report))
        return 0
    encoder, index = _load(args.index)
    if args.synthetic:
        base = index.faiss_index.reconstruct_n(0, index.faiss_index.ntotal)
        queries = index.center(encoder.encode_queries(questions), None)
        report["synthetic"] = [bench.synthetic(base, queries, int(n)) for n in args.synthetic.split(",")]
        print(bench.format_synthetic(report["synthetic"]))
    else:
        steps = bench.breakdown(Searcher(index, encoder), questions)
        report["breakdown_ms"] = steps
        print("In-process, median ms per step: " + ", ".join(f"{k} {v:.3f}" for k, v in steps.items()))
        clients = [int(c) for c in args.clients.split(",")]
        rates = [r if r.endswith("%") else float(r) for r in args.rates.split(",") if r]
        if args.reranker:
            _bench_final(args, bench, encoder, index, questions, clients, report)
        else:
            from .quality.budget import budget, path_rows

            report.update(bench.load_report(args.index, questions, clients, args.seconds, args.workers, rates))
            report["paths"] = path_rows(args.index, questions, args.seconds, args.workers)
            print("\n".join(budget(report, steps)))
    if args.json:
        Path(args.json).write_text(bench.to_json(report))
    return 0


def _encoder_for_bench(model: str):
    from .encoder import Encoder

    encoder = Encoder(model)
    encoder.for_serving()  # one thread, as a worker runs it
    return encoder


def _bench_final(args, bench, encoder, index, questions: list[str], clients: list[int], report: dict) -> None:
    """The final path (rerank=true) beside the as-you-type one, in process and over HTTP."""
    from .search import Searcher

    staged = Searcher(index, encoder, reranker=_reranker(args.reranker))
    steps = bench.breakdown(staged, questions, rerank=True)
    report["final_breakdown_ms"] = steps
    print("Final path (rerank=true), in-process, median ms per step: "
          + ", ".join(f"{k} {v:.3f}" for k, v in steps.items()))
    env = {"HELPDESK_QA_QUERY_CACHE": "0", "HELPDESK_QA_RERANKER": str(args.reranker)}
    for name, query in (("as_you_type", ""), ("final", "&rerank=true")):
        report[name] = bench.load_table(args.index, questions, clients, args.seconds, args.workers, env, query=query)
        print(bench.format_load(report[name], f"\nHTTP GET /v1/ask{'?…' + query if query else ''}, "
                                f"{args.workers} worker(s), second stage loaded: {name.replace('_', '-')} path"))


def _add_eval_inputs(p: argparse.ArgumentParser, cache: Path, default: list[Path], says: str) -> None:
    p.add_argument("--questions", type=Path, nargs="+", default=default, help=f"JSONL question files (default: {says})")
    p.add_argument("--corpus", type=Path, nargs="+",
                   help="corpus folder, one for all question files or one each (default: corpus/ "
                   "for the dev set, the XQuAD corpus for XQuAD)")
    p.add_argument("--cache", type=Path, default=cache, help="embedding cache folder")


def _add_flow_commands(sub, s) -> None:
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
    p.add_argument("--lang", choices=list(LANGUAGES), help="language of the question (default: detected)")
    p.add_argument("--country", type=str.upper, choices=list(COUNTRIES), help="member's country")
    p.add_argument("--category")
    p.add_argument("--limit", type=int, default=3)
    p.add_argument("--index", type=Path, default=s.index_dir, help="index folder (default: %(default)s)")
    p.set_defaults(func=cmd_ask)


def _add_rules_commands(sub, s) -> None:
    p = sub.add_parser("rules", help="the support team's rules (corpus/rules.yaml)").add_subparsers(
        dest="rules_command", required=True).add_parser("test", help="what the rules do to a question")
    p.add_argument("question")
    p.add_argument("--country", type=str.upper, choices=list(COUNTRIES), help="member's country")
    p.add_argument("--lang", choices=list(LANGUAGES), help="language of the question (default: detected)")
    p.add_argument("--category")
    p.add_argument("--limit", type=int, default=5)
    p.add_argument("--at", help="as at this ISO time (default: now), e.g. 2026-12-05T09:00:00+00:00")
    p.add_argument("--rules", type=Path, help="rules file (default: the corpus's rules.yaml, else the index's)")
    p.add_argument("--index", type=Path, default=s.index_dir, help="index folder (default: %(default)s)")
    p.set_defaults(func=cmd_rules_test)


def _add_ops_commands(sub, s) -> None:
    from .ops.deploy import BURST, RATE

    p = sub.add_parser("deploy", help="nginx in front of N replicas on this machine (docs/deploy.md)")
    p.add_argument(
        "action", choices=["up", "render", "scrub-log"],
        help="up: run until SIGTERM/Ctrl-C; render: print the nginx config; "
             "scrub-log: copy nginx's error log from stdin without what members typed"
    )
    p.add_argument("--replicas", type=int, default=2, help="qa serve processes (default: %(default)s)")
    p.add_argument("--port", type=int, default=8080, help="nginx listens on 127.0.0.1:PORT (default: %(default)s)")
    p.add_argument("--replica-port", type=int, default=8101, help="first replica's port (default: %(default)s)")
    p.add_argument("--rate", type=float, default=RATE,
                   help="requests/s per client address on /v1/* (default: %(default)s)")
    p.add_argument("--burst", type=int, default=BURST, help="burst above the rate before 429 (default: %(default)s)")
    p.add_argument("--run-dir", type=Path, default=Path("run"), help="config, logs, pid files (default: %(default)s)")
    # render only: the same template in front of containers (deploy/compose.yaml, deploy/k8s/)
    p.add_argument("--listen", help="render: nginx listen address instead of 127.0.0.1:PORT, e.g. 0.0.0.0:8080")
    p.add_argument("--upstream", help="render: replicas as host:port[,host:port…] instead of local ports")
    p.add_argument("--template", type=Path, help="render: the nginx template (default: deploy/nginx.conf.template)")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("report", help="the insights overview of the event store (questions, gaps, feedback)")
    p.add_argument("--since", default="7d", help="how far back: 7d, 24h, 2w (default: %(default)s)")
    p.add_argument("--csv", action="store_true", help="CSV instead of text")
    p.add_argument("--limit", type=int, default=15, help="rows per list (default: %(default)s)")
    p.add_argument(
        "--no-grouping", action="store_true", help="group unanswered questions by exact text only (no model)"
    )
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("gaps", help="unanswered and 'not helpful' question groups, nearest articles, YAML phrasings")
    p.add_argument("--since", default="30d", help="how far back: 30d, 7d, 2w (default: %(default)s)")
    p.add_argument("--limit", type=int, default=15, help="groups of each kind (default: %(default)s)")
    p.add_argument("--index", type=Path, default=s.index_dir, help="index folder (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="machine-readable output, with every article's snippet")
    p.set_defaults(func=cmd_gaps)


def _add_quality_commands(sub, s) -> None:
    p = sub.add_parser("eval", help="answer quality on labelled questions, beside BM25 and dense baselines")
    _add_eval_inputs(p, s.index_dir / "cache", EVAL_SETS, "the dev set, XQuAD and the held-out members' set")
    p.add_argument("--models", default=s.model, help="comma-separated models to compare (default: %(default)s)")
    p.add_argument("--phrasings", choices=["on", "off", "both"], default="on",
                   help="index the articles' questions: phrasings, or not, or compare both")
    p.add_argument("--loco", action="store_true",
                   help="leave-one-category-out: weights tuned without each category, scored on it")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--misses", action="store_true", help="list each miss with what ranked first")
    p.add_argument("--typos", type=int, default=0, metavar="N",
                   help="misspell each question N times (a fixed seed): how much survives members' typos")
    p.add_argument("--reranker", type=Path, help="also score the first model's hybrid + this second stage "
                   "(a qa train-rerank folder)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("tune", help="choose the ranking weights for a model on labelled questions")
    _add_eval_inputs(p, s.index_dir / "cache", TUNING_SETS, "the dev set and XQuAD")
    p.add_argument("--model", default=s.model, help="default: %(default)s")
    p.add_argument("--write", action="store_true",
                   help="store the weights in qa/ranking.json (a model folder's: FOLDER/ranking.json)")
    p.add_argument("--keep-weights", action="store_true",
                   help="keep the model's current weights; fit only the no-answer decision")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("bench", help="load the real server, break a search down, or test FAISS at scale")
    p.add_argument("--index", type=Path, default=s.index_dir, help="index folder (default: %(default)s)")
    p.add_argument("--questions", type=Path, default=DEV_SET, help="queries to send (default: %(default)s)")
    p.add_argument("--clients", default="1,8,32", help="concurrent clients per row (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=10, help="duration of each row (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="server worker processes (default: %(default)s)")
    p.add_argument("--rates", default="80%", help="open-loop rows: requests/s offered by the most clients, or a "
                   "share of the best closed-loop req/s such as 80%% (default: %(default)s)")
    p.add_argument("--encoder-batches", metavar="MODEL[,MODEL]",
                   help="instead: what encoding 1, 2, 4 and 8 questions in one call costs, per model")
    p.add_argument("--reranker", type=Path, help="measure the final path (rerank=true) with this second stage "
                   "beside the as-you-type one")
    p.add_argument("--synthetic", metavar="N[,N]", help="instead: FAISS exact vs IVF on N synthetic vectors")
    p.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    p.set_defaults(func=cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    from .adapt.cli import add_command as add_adapt_command  # qa adapt
    from .training.cli import add_commands as add_training_commands  # qa model …, qa train

    s = get_settings()
    parser = argparse.ArgumentParser(prog="qa", description="helpdesk-qa: multilingual help-article search")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_flow_commands(sub, s)
    _add_rules_commands(sub, s)
    _add_ops_commands(sub, s)
    _add_quality_commands(sub, s)
    add_training_commands(sub)
    add_adapt_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except QAError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
