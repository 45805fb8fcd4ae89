"""Interpolate a trained model folder with its base in weight space:
base + share * (trained - base). share 1.0 is the trained model, 0.0 the base.

    python scripts/interpolate_model.py models/e5-small models/e5-help-… --share 0.5

Writes `<trained>-mix<share>` beside the trained folder, with its own version, so
an index built with it is a different model. An experiment for forgetting (see
docs/quality-training.md); `qa train` does not do this.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from qa.encoder.version import write_version

WEIGHTS = "model.safetensors"


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("base", type=Path)
    p.add_argument("trained", type=Path)
    p.add_argument("--share", type=float, default=0.5, help="how much of the training to keep (default: 0.5)")
    args = p.parse_args()
    from safetensors.torch import load_file, save_file

    for folder in (args.base, args.trained):
        if not (folder / WEIGHTS).is_file():
            print(f"error: {folder}: no {WEIGHTS}", file=sys.stderr)
            return 1
    base, trained = load_file(args.base / WEIGHTS), load_file(args.trained / WEIGHTS)
    if base.keys() != trained.keys():
        print(f"error: {args.base} and {args.trained} are not the same architecture", file=sys.stderr)
        return 1
    out = args.trained.with_name(f"{args.trained.name}-mix{round(args.share * 100)}")
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(args.trained, out)
    mixed = {k: (base[k] + args.share * (trained[k] - base[k])).contiguous() for k in trained}
    save_file(mixed, out / WEIGHTS, metadata={"format": "pt"})
    write_version(out, interpolated_from=[str(args.base), str(args.trained)], share=args.share)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
