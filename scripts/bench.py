#!/usr/bin/env python
"""Speed benchmarks: same as `qa bench` (see `--help`)."""
import sys

from qa.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
