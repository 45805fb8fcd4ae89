"""`qa serve`'s background adaptation: start `qa adapt --background` beside the server.

The job is a separate process at the lowest priority (`nice -n 19`) with one thread
for torch, onnxruntime, OpenMP and BLAS, so the server keeps the other core and wins
every contended one. The server does not wait for it: it answers with the build it
has, and moves to the adapted build when the job makes it current (the service
watches CURRENT). The job is started at start-up and then every `adapt_interval`
seconds; it leaves at once when the corpus has not changed enough, or when another
replica's job holds the index folder's lock.

The job stays in the server's process group (Ctrl-C in a terminal stops both) but is
not killed with the server, so a rolling restart of replicas does not throw away a
training half done; the restarted replica finds the lock taken and leaves it running.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..config import Settings

log = logging.getLogger("qa.adapt")

# One thread everywhere, set before the job imports anything.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "HELPDESK_QA_ONNX_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def adapted_folder(settings: Settings) -> Path:
    """The index folder the background job adapts: the final build's when there is one
    (the adapted e5 costs too much per keystroke), else the only one."""
    return settings.final_index_dir or settings.index_dir


def command(settings: Settings) -> list[str]:
    cmd = [sys.executable, "-m", "qa.cli", "adapt", "--background", "--index", str(adapted_folder(settings)),
           "--corpus", str(settings.corpus_dir)]
    nice = shutil.which("nice")
    return [nice, "-n", "19", *cmd] if nice else cmd  # without nice(1): the job lowers itself


def start_background(settings: Settings) -> threading.Thread | None:
    """Start the adaptation loop for `qa serve`; None when it is off (and why, logged)."""
    if not settings.adapt:
        return None
    if settings.reload_interval <= 0:
        print("adapt: off: HELPDESK_QA_RELOAD_INTERVAL=0, this server would never serve an adapted build",
              file=sys.stderr)
        return None
    thread = threading.Thread(target=_loop, args=(settings,), name="adapt-launcher", daemon=True)
    thread.start()
    return thread


def job_env(settings: Settings) -> dict[str, str]:
    """The job's environment: one thread everywhere, and for a final folder its model,
    so that the gate compares with the build final questions are answered from."""
    env = dict(os.environ, **ONE_THREAD)
    if settings.final_index_dir is not None and settings.final_model:
        env["HELPDESK_QA_MODEL"] = settings.final_model
    return env


def _loop(settings: Settings) -> None:
    env = job_env(settings)
    while True:
        try:
            subprocess.run(command(settings), env=env, stdin=subprocess.DEVNULL, check=False)
        except OSError as e:
            print(f"adapt: could not start the background job: {e}", file=sys.stderr)
        if settings.adapt_interval <= 0:
            return
        time.sleep(settings.adapt_interval)
