"""`qa deploy up`: nginx in front of N `qa serve` replicas on one machine.

A small process manager, beside the serving flow (it only starts processes and
talks HTTP to them):
- renders deploy/nginx.conf.template into a run folder and runs Debian's nginx on
  it as a child (`nginx -p <run folder> -c nginx.conf`, not daemonised); nginx
  balances, retries, rate-limits and adds the headers;
- starts N `qa serve` replicas on their own ports, all on one shared index folder
  (each picks a new build up within `reload_interval`), and restarts a replica
  that dies (nginx routes around it meanwhile);
- SIGHUP: rolling restart, one replica at a time: SIGTERM (uvicorn closes its port
  first, so nginx routes new requests to the others, and lets in-flight requests
  finish), a new one starts, and rejoins once ready;
- SIGUSR1 / SIGUSR2: add a replica on the next port (joins once ready) / remove
  the last one; both rewrite the upstream and reload nginx;
- SIGTERM / Ctrl-C: nginx stops first (graceful: finishes in-flight requests),
  then the replicas; everything is gone when the command returns;
- nginx's error log goes to its stderr, a pipe read here: every query string and
  request path is cut before a line reaches run/logs/error.log (nginx cannot
  reformat its error lines, and a `limit_req` line quotes the raw request line).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from ..config import ROOT
from ..errors import MissingDependency, StartupError

TEMPLATE = ROOT / "deploy" / "nginx.conf.template"
# nginx's limit on /v1/* per client address: requests/s, and the burst above it before 429
# (`qa deploy`'s defaults; deploy/compose.yaml and deploy/nginx/Containerfile repeat them).
RATE = 20
BURST = 40
FAIL_TIMEOUT = 2.0  # seconds nginx skips a replica after a failed attempt
# nginx compares that in whole seconds (`now - checked <= fail_timeout`, ngx_time()),
# so a replica that failed at 10.9 s is skipped until 13.0 s, and one that failed at
# 10.0 s until 13.0 s too: up to FAIL_TIMEOUT + 1 s after its last failure.
NGINX_SKIP_AT_MOST = FAIL_TIMEOUT + 1.0
# Who may reach /metrics, /docs and /openapi.json through nginx: addresses or CIDR
# networks, separated by spaces or commas. Everyone else gets 403.
OPS_NETWORKS_ENV = "HELPDESK_QA_OPS_NETWORKS"
DEFAULT_OPS_NETWORKS = "127.0.0.1 ::1"
log = logging.getLogger("qa.deploy")

# The service's paths, named as the access log names them (the `map $uri $qa_route` in
# deploy/nginx.conf.template; tests/test_no_personal_data.py keeps the two equal and
# checks that every route of the app is here). Any other path is "[other]": a path can
# carry what a member typed ("/v1/Mitgliedsnummer 48151699").
ROUTES = frozenset({
    "/", "/agent", "/insights", "/widget.js", "/favicon.svg", "/favicon.ico", "/healthz", "/readyz", "/metrics",
    "/docs", "/docs/oauth2-redirect", "/openapi.json", "/v1/ask", "/v1/meta", "/v1/phrasing", "/v1/suggest",
    "/v1/feedback", "/v1/feedback/opened", "/v1/insights", "/v1/insights/gaps",
})
ROUTE_PREFIXES = {"/v1/articles/": "/v1/articles/{id}", "/static-offline-docs/": "/static-offline-docs/…"}

# In an nginx error line: a quoted request line or URL, or any query string.
_QUOTED_REQUEST = re.compile(r'(request|referrer|upstream): "([A-Z]+ )?([^"?\s]*)[^"]*"')
_ORIGIN = re.compile(r"[a-z][a-z0-9+.\-]*://[^/\s\"]*", re.IGNORECASE)
_QUERY = re.compile(r"\?[^\s\",]*")
_NETWORK = re.compile(r"[0-9A-Fa-f:.]+(/\d{1,3})?|unix:")


def route(path: str) -> str:
    """`path` as a route of the service (decoded, slashes merged, as nginx's $uri), else "[other]"."""
    path = re.sub(r"/{2,}", "/", unquote(path))
    if path in ROUTES:
        return path
    return next((name for prefix, name in ROUTE_PREFIXES.items() if path.startswith(prefix)), "[other]")


def scrub_error_line(line: str) -> str:
    """An nginx error-log line without what a member typed: a quoted request line keeps
    its method and route, an upstream URL its origin and route, a referrer its origin
    only (a portal's page address can carry text, too); every query string goes."""
    def request(m: re.Match) -> str:
        what, method, target = m.group(1), m.group(2) or "", m.group(3)
        origin = _ORIGIN.match(target)
        if what == "referrer":
            return f'referrer: "{origin.group(0) if origin else "[other]"}"'
        if origin:
            path = route(target[origin.end():] or "/")
            return f'{what}: "{method}{origin.group(0)}{path if path.startswith("/") else " " + path}"'
        return f'{what}: "{method}{route(target)}"'

    return _QUERY.sub("?[removed]", _QUOTED_REQUEST.sub(request, line))


def ops_allow_rules(networks: str | None = None) -> str:
    """nginx `allow …; deny all;` for the operators' networks (HELPDESK_QA_OPS_NETWORKS)."""
    text = networks if networks is not None else os.environ.get(OPS_NETWORKS_ENV, DEFAULT_OPS_NETWORKS)
    entries = [n for n in re.split(r"[\s,]+", text) if n]
    bad = [n for n in entries if not _NETWORK.fullmatch(n)]
    if bad:
        raise StartupError(f"{OPS_NETWORKS_ENV}: not an address or network: {', '.join(bad)}")
    return "\n".join([f"            allow {n};" for n in entries] + ["            deny all;"])


def find_nginx() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None
    )


def inline_script_hashes() -> list[str]:
    """CSP hashes of the inline scripts of the pages as the replicas serve them, so
    the policy can forbid every other inline script."""
    from ..api.pages import PAGES, page_html

    hashes = []
    for name in [*PAGES.values(), "insights.html"]:
        for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", page_html(name), re.S):
            if "src=" not in attrs:
                hashes.append("'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'")
    return hashes


def content_security_policy() -> str:
    # style-src allows inline styles: the widget builds its Shadow DOM <style> at run
    # time; styles cannot run script. Everything else: this origin only.
    return "; ".join([
        "default-src 'self'",
        "script-src 'self' " + " ".join(inline_script_hashes()),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def render_nginx(listen: int | str, ports: list[int], down: set[int] = frozenset(), rate: float = RATE,
                 burst: int = BURST, upstreams: list[str] | None = None, template: Path | None = None) -> str:
    """The nginx configuration for replicas on `ports` (those in `down` marked down).

    `listen` is a port on 127.0.0.1, or an nginx listen address such as `0.0.0.0:8080`.
    `upstreams` (host:port, e.g. Compose service names) replaces the local ports: the
    same template then serves Compose and Kubernetes (deploy/nginx/entrypoint.sh)."""
    addresses = upstreams if upstreams is not None else [f"127.0.0.1:{p}" for p in ports]
    marked = {f"127.0.0.1:{p}" for p in down}
    servers = "\n".join(
        f"        server {a} max_fails=1 fail_timeout={FAIL_TIMEOUT:g}s{' down' if a in marked else ''};"
        for a in addresses
    )
    # As root, nginx would switch its workers to `nobody`, who cannot read a private
    # run folder; the workers run as the user who runs `qa deploy`.
    user = "user root;" if os.geteuid() == 0 else ""
    values = {
        "user": user,
        "servers": servers,
        "listen": listen if isinstance(listen, str) else f"127.0.0.1:{listen}",
        # nginx takes whole requests per second or per minute.
        "rate": f"{int(rate)}r/s" if rate >= 1 and rate == int(rate) else f"{max(1, round(rate * 60))}r/m",
        "burst": str(burst),
        "csp": content_security_policy(),
        "ops_allow": ops_allow_rules(),
    }
    text = (template or TEMPLATE).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def readyz(port: int, timeout: float = 1.0) -> tuple[int, dict] | None:
    """(status code, body) of a replica's /readyz; None when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
    except (OSError, ValueError):
        return None


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when `qa deploy` dies, even by kill -9, so no
    replica or nginx outlives its manager (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


def _children(pid: int) -> set[int]:
    try:
        return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


@dataclass
class Replica:
    number: int
    port: int
    proc: subprocess.Popen | None = None
    down: bool = False  # out of the upstream (being restarted)
    restarts: int = 0
    started_at: float = field(default=0.0)


class Deployment:
    def __init__(self, run_dir: Path, listen: int, ports: list[int], rate: float = RATE, burst: int = BURST,
                 nginx: str | None = None, ready_timeout: float = 120):
        self.run_dir = Path(run_dir).resolve()
        self.listen = listen
        self.replicas = [Replica(n, p) for n, p in enumerate(ports, 1)]
        self.rate, self.burst = rate, burst
        self.nginx_bin = nginx or find_nginx()
        if not self.nginx_bin:
            raise MissingDependency("nginx not found: install Debian's package (apt-get install -y nginx)")
        self.ready_timeout = ready_timeout
        self.nginx: subprocess.Popen | None = None
        self._stop = False
        self._rolling = False
        self._scale = 0  # replicas to add (>0) or remove (<0), from SIGUSR1 / SIGUSR2

    # -- replicas ------------------------------------------------------------------
    def start_replica(self, r: Replica) -> None:
        cmd = [sys.executable, "-m", "qa.cli", "serve", "--host", "127.0.0.1", "--port", str(r.port),
               "--workers", "1", "--no-access-log"]
        env = dict(os.environ, OMP_NUM_THREADS="1", MALLOC_ARENA_MAX="2")
        logfile = open(self.run_dir / "logs" / f"replica-{r.number}.log", "a")
        r.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=logfile, stderr=subprocess.STDOUT,
                                  preexec_fn=_die_with_parent)
        logfile.close()
        r.started_at = time.time()
        log.info("replica %d: started on port %d (pid %d)", r.number, r.port, r.proc.pid)

    def wait_ready(self, r: Replica) -> bool:
        """Until the replica answers /readyz with 200 ("ready" or "degraded"); a replica
        without any index answers 503 and is waited for only until the timeout."""
        deadline = time.time() + self.ready_timeout
        while time.time() < deadline and not self._stop:
            if r.proc is not None and r.proc.poll() is not None:
                return False
            answer = readyz(r.port)
            if answer is not None and answer[0] == 200:
                log.info("replica %d: %s (%s)", r.number, answer[1].get("status"), answer[1].get("build"))
                return True
            time.sleep(0.2)
        return False

    def stop_replica(self, r: Replica, timeout: float = 30) -> None:
        if r.proc is None or r.proc.poll() is not None:
            return
        r.proc.send_signal(signal.SIGTERM)  # uvicorn: stop accepting, finish in-flight requests
        try:
            r.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("replica %d: did not stop within %g s, killed", r.number, timeout)
            r.proc.kill()
            r.proc.wait()

    # -- nginx ---------------------------------------------------------------------
    def write_config(self) -> Path:
        down = {r.port for r in self.replicas if r.down}
        text = render_nginx(self.listen, [r.port for r in self.replicas], down, self.rate, self.burst)
        path = self.run_dir / "nginx.conf"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        check = subprocess.run([self.nginx_bin, "-t", "-q", "-p", f"{self.run_dir}/", "-e", "stderr",
                                "-c", str(tmp)], capture_output=True, text=True)
        if check.returncode != 0:
            raise StartupError(f"nginx rejects the rendered configuration {tmp}: "
                               f"{scrub_error_line(check.stderr.strip())}")
        os.replace(tmp, path)
        return path

    def _copy_error_log(self, stream) -> None:
        """nginx's stderr (its error log) into run/logs/error.log, line by line, scrubbed."""
        with open(self.run_dir / "logs" / "error.log", "a", encoding="utf-8") as out:
            for raw in iter(stream.readline, b""):
                out.write(scrub_error_line(raw.decode("utf-8", "replace").rstrip("\n")) + "\n")
                out.flush()
        stream.close()

    def start_nginx(self) -> None:
        config = self.write_config()
        self.nginx = subprocess.Popen(
            [self.nginx_bin, "-p", f"{self.run_dir}/", "-e", "stderr", "-c", str(config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_die_with_parent,
        )
        threading.Thread(target=self._copy_error_log, args=(self.nginx.stderr,), name="nginx-error-log",
                         daemon=True).start()
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.nginx.poll() is not None:
                raise StartupError(f"nginx exited with {self.nginx.returncode}: see {self.run_dir}/logs/error.log")
            if _children(self.nginx.pid):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{self.listen}/healthz", timeout=1).close()
                    break
                except urllib.error.HTTPError:
                    break
                except OSError:
                    pass
            time.sleep(0.1)
        log.info("nginx: listening on http://127.0.0.1:%d (pid %d)", self.listen, self.nginx.pid)

    def reload_nginx(self, timeout: float = 30) -> None:
        """Apply the upstream as it is now, and return once the old nginx workers have
        finished their requests and exited: no request is then on its way to a
        replica that was marked down."""
        self.write_config()
        old = _children(self.nginx.pid)
        self.nginx.send_signal(signal.SIGHUP)
        deadline = time.time() + timeout
        while time.time() < deadline:
            now = _children(self.nginx.pid)
            if now and not (now & old):
                return
            time.sleep(0.05)
        log.warning("nginx: old workers still running %g s after reload", timeout)

    # -- the whole -----------------------------------------------------------------
    def up(self) -> None:
        for sub in ("logs", "tmp"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        (self.run_dir / "deploy.pid").write_text(str(os.getpid()))
        for r in self.replicas:
            self.start_replica(r)
        for r in self.replicas:
            if not self.wait_ready(r):
                log.warning("replica %d: not ready after %g s, see %s/logs/replica-%d.log",
                            r.number, self.ready_timeout, self.run_dir, r.number)
        self.start_nginx()

    def rolling_restart(self) -> None:
        """One replica at a time. Without an nginx reload: SIGTERM makes uvicorn close
        the listening socket first, so nginx gets "connection refused" for it, sends
        the request to another replica (nothing was sent, so whatever the method) and
        skips it for fail_timeout, while its in-flight requests finish. (A reload would
        close idle client keep-alive connections, which a client can see as an error.)"""
        for r in self.replicas:
            self.stop_replica(r)
            self.start_replica(r)
            self.wait_ready(r)
            # nginx retries it after fail_timeout; until then it counts as failed, and
            # with every replica failed nginx would answer 502 ("no live upstreams").
            # Its last failed try can come just before it turned ready, so wait out
            # nginx's whole skip from then, plus a margin for the ready poll.
            time.sleep(NGINX_SKIP_AT_MOST + 0.5)
            log.info("replica %d: restarted and back in the upstream", r.number)

    def add_replica(self) -> None:
        """One more replica on the next port; it joins the upstream once ready."""
        r = Replica(len(self.replicas) + 1, max(r.port for r in self.replicas) + 1, down=True)
        self.replicas.append(r)
        self.start_replica(r)
        self.wait_ready(r)
        r.down = False
        self.reload_nginx()
        log.info("replica %d: added on port %d", r.number, r.port)

    def remove_replica(self) -> None:
        """The last replica stops (leaving the upstream as in a rolling restart), then
        the upstream is rewritten without it."""
        if len(self.replicas) <= 1:
            log.warning("not removing the last replica")
            return
        r = self.replicas.pop()
        self.stop_replica(r)
        self.reload_nginx()
        log.info("replica %d: removed", r.number)

    def supervise(self) -> None:
        """Restart replicas that exit (at most once a second each) until asked to stop."""
        while not self._stop:
            if self._rolling:
                self._rolling = False
                self.rolling_restart()
            while self._scale > 0 and not self._stop:
                self._scale -= 1
                self.add_replica()
            while self._scale < 0 and not self._stop:
                self._scale += 1
                self.remove_replica()
            for r in self.replicas:
                if r.proc is not None and r.proc.poll() is not None and time.time() - r.started_at > 1:
                    log.warning("replica %d: exited with %s, restarting", r.number, r.proc.returncode)
                    r.restarts += 1
                    self.start_replica(r)
            if self.nginx is not None and self.nginx.poll() is not None:
                log.error("nginx exited with %s, restarting it", self.nginx.returncode)
                self.start_nginx()
            time.sleep(0.2)

    def down(self) -> None:
        """nginx first (it finishes in-flight requests, takes no new ones), then the replicas."""
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)
            try:
                self.nginx.wait(30)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait()
        for r in self.replicas:
            self.stop_replica(r)
        (self.run_dir / "deploy.pid").unlink(missing_ok=True)
        log.info("stopped")

    def request_stop(self, *_) -> None:
        self._stop = True

    def request_rolling_restart(self, *_) -> None:
        self._rolling = True

    def request_scale(self, signum, _frame) -> None:
        self._scale += 1 if signum == signal.SIGUSR1 else -1

    def run(self) -> None:
        signal.signal(signal.SIGUSR1, self.request_scale)
        signal.signal(signal.SIGUSR2, self.request_scale)
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_rolling_restart)
        try:
            self.up()
            if not self._stop:
                log.info("up: http://127.0.0.1:%d  (to pid %d: SIGHUP rolling restart, SIGUSR1 add a replica, "
                         "SIGUSR2 remove one, SIGTERM/Ctrl-C stop)", self.listen, os.getpid())
                self.supervise()
        finally:
            self.down()
