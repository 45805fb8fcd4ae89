#!/usr/bin/env python
"""Build the index: same as `qa ingest` (see `--help`)."""
import sys

from qa.cli import main

if __name__ == "__main__":
    sys.exit(main(["ingest", *sys.argv[1:]]))
