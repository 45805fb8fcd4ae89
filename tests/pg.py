"""A throwaway PostgreSQL server for tests: Debian's postgresql 15 binaries, a cluster in
a temporary folder, a unix socket there and a free port; stopped and removed at the end.
As root the server runs as the `postgres` user (PostgreSQL refuses to run as root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .conftest import free_port

PG_BIN = Path(os.environ.get("HELPDESK_QA_PG_BIN", "/usr/lib/postgresql/15/bin"))


@contextmanager
def postgres_server():
    """Yields a postgresql:// URL."""
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"PostgreSQL binaries not found in {PG_BIN}: .ci/run installs Debian's postgresql")
    folder = Path(tempfile.mkdtemp(prefix="qa-pg-"))
    as_postgres = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()

    def run(*args):
        subprocess.run(as_postgres + [str(a) for a in args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=120)

    try:
        run(PG_BIN / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale", "C", "--no-sync")
        run(PG_BIN / "pg_ctl", "-D", data, "-l", folder / "server.log", "-w", "-t", "60", "start", "-o",
            f"-p {port} -k {folder} -c listen_addresses='' -c fsync=off -c shared_buffers=16MB")
        try:
            yield f"postgresql://postgres@/postgres?host={folder}&port={port}"
        finally:
            run(PG_BIN / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
