#!/usr/bin/env python
"""Answer-quality evaluation: same as `qa eval` (see `--help`)."""
import sys

from qa.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval", *sys.argv[1:]]))
