"""Production deployment: `qa deploy up` (Debian's nginx in front of real `qa serve`
replicas) under bounded load on 127.0.0.1: rollout of a new build, kill -9 of a
replica, rate limit, rolling restart with an in-flight request, pages' headers in
Chromium; start-up on a bad build and draining on a single server."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from qa.ops.deploy import find_nginx
from qa.quality.bench import free_port_range

from .conftest import ROOT, Server, free_port, write_article

needs_nginx = pytest.mark.skipif(
    find_nginx() is None, reason="nginx is not installed (.ci/run installs it: apt-get install -y nginx)"
)
RELOAD_INTERVAL = 1.0  # the bound under test is 2x this
QUESTIONS = ["Passwort vergessen", "как сменить центр", "where is my parcel", "Lieferung Schweiz", "bank details"]


def write_corpus(folder: Path, extra: str = "") -> Path:
    write_article(
        folder,
        "de",
        "pw",
        "## Schritt für Schritt\n\n1. Anmeldeseite öffnen.\n2. Passwort vergessen klicken.\n",
        title="Passwort vergessen",
        category="account",
    )
    write_article(folder, "ru", "pw", "## Шаги\n\n1. Откройте страницу входа.\n2. Нажмите «Забыли пароль».\n",
                  title="Как восстановить пароль", category="account")
    write_article(folder, "en", "parcel", "## Tracking\n\n1. Open your orders.\n2. Click the tracking number.\n",
                  title="Where is my parcel", category="orders")
    if extra:
        write_article(folder, "en", extra, f"## Feeding {extra}s\n\n1. Bring hay.\n", title=f"{extra} care")
    return folder


def ingest_into(index_dir: Path, corpus: Path, encoder) -> Path:
    from qa.ingest import ingest

    return ingest(corpus, index_dir, encoder).folder


def get_json(url: str, timeout: float = 2) -> tuple[int, dict] | None:
    try:
        r = httpx.get(url, timeout=timeout)
        return r.status_code, r.json()
    except (httpx.HTTPError, ValueError):
        return None


class Deployment:
    """`python -m qa.cli deploy up` as a child process."""

    def __init__(self, run_dir: Path, index_dir: Path, replicas: int = 2, rate: float = 100000, burst: int = 100000):
        self.run_dir = run_dir
        self.port = free_port()
        base = free_port_range(replicas + 1)  # + 1: room for SIGUSR1's extra replica
        self.ports = [base + n for n in range(replicas)]
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, HELPDESK_QA_INDEX_DIR=str(index_dir), HELPDESK_QA_RELOAD_INTERVAL=str(RELOAD_INTERVAL))
        cmd = [sys.executable, "-m", "qa.cli", "deploy", "up", "--replicas", str(replicas), "--port", str(self.port),
               "--replica-port", str(base), "--rate", str(rate), "--burst", str(burst), "--run-dir", str(run_dir)]
        run_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = run_dir / "deploy.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_up()

    def wait_up(self, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"qa deploy exited with {self.proc.returncode}: {self.log_path.read_text()[-3000:]}")
            if " up: " in self.log_path.read_text():
                return
            time.sleep(0.2)
        raise RuntimeError(f"qa deploy not up in time: {self.log_path.read_text()[-3000:]}")

    def children(self) -> dict[str, int]:
        """'nginx' and each replica's port -> pid, from the runner's child processes."""
        out = {}
        pids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        for pid in pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            words = [w.decode() for w in cmdline]
            if "serve" in words:
                out[words[words.index("--port") + 1]] = int(pid)
            elif words and "nginx" in words[0]:
                out["nginx"] = int(pid)
        return out

    def replica_pid(self, port: int) -> int | None:
        return self.children().get(str(port))

    def readyz(self, port: int) -> tuple[int, dict] | None:
        return get_json(f"http://127.0.0.1:{port}/readyz")

    def access_log(self) -> list[str]:
        return (self.run_dir / "logs" / "access.log").read_text().splitlines()

    def error_log(self) -> list[str]:
        path = self.run_dir / "logs" / "error.log"
        return path.read_text().splitlines() if path.exists() else []

    def stop(self) -> list[int]:
        """SIGTERM the runner; the pids of its children, to check they are gone."""
        pids = list(self.children().values())
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        return pids


class Load:
    """GET /v1/ask through nginx from a few keep-alive clients until `stop()`, bounded
    by `seconds` and `max_requests` whatever happens."""

    def __init__(self, url: str, clients: int = 3, seconds: float = 90, max_requests: int = 30000, pause: float = 0.005,
                 retry_closed_keepalive: bool = False):
        self.url, self.seconds, self.max_requests, self.pause = url, seconds, max_requests, pause
        # What browsers do (RFC 9110 9.2.2): a GET on a reused keep-alive connection
        # that the server closed without answering is sent again, once.
        self.retry_closed_keepalive = retry_closed_keepalive
        self.retried = 0
        self.results: list[tuple[float, int | str]] = []  # (time, status or error)
        self._stop = threading.Event()
        self._count = itertools.count()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(clients)]
        for t in self.threads:
            t.start()

    def _client(self, n: int) -> None:
        deadline = time.time() + self.seconds
        questions = itertools.cycle(QUESTIONS[n % len(QUESTIONS):] + QUESTIONS[: n % len(QUESTIONS)])
        with httpx.Client(base_url=self.url, timeout=15) as client:
            while not self._stop.is_set() and time.time() < deadline and next(self._count) < self.max_requests:
                question = next(questions)
                try:
                    try:
                        outcome: int | str = client.get("/v1/ask", params={"q": question}).status_code
                    except httpx.RemoteProtocolError:
                        if not self.retry_closed_keepalive:
                            raise
                        with self._lock:
                            self.retried += 1
                        outcome = client.get("/v1/ask", params={"q": question}).status_code
                except httpx.HTTPError as e:
                    outcome = f"{type(e).__name__}: {e}"
                with self._lock:
                    self.results.append((time.time(), outcome))
                time.sleep(self.pause)

    def stop(self) -> list[tuple[float, int | str]]:
        self._stop.set()
        for t in self.threads:
            t.join(30)
        return self.results

    def failures(self) -> list:
        return [r for r in self.results if r[1] != 200]


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, encoder) -> Path:
    root = tmp_path_factory.mktemp("deploy")
    ingest_into(root / "index", write_corpus(root / "corpus"), encoder)
    return root / "index"


@pytest.fixture(scope="module")
def deployment(index_dir):
    if find_nginx() is None:
        pytest.skip("nginx is not installed (.ci/run installs it: apt-get install -y nginx)")
    d = Deployment(index_dir.parent / "run", index_dir)
    yield d
    pids = d.stop()
    time.sleep(0.5)
    alive = [p for p in pids if Path(f"/proc/{p}").exists() and "zombie" not in Path(f"/proc/{p}/status").read_text()]
    assert d.proc.returncode == 0 and not alive, d.log_path.read_text()[-3000:]


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024


@needs_nginx
def test_replicas_serve_without_torch(deployment):
    """Each replica with the bundled model: no libtorch mapped into the process."""
    for port in deployment.ports:
        pid = deployment.replica_pid(port)
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "libtorch" not in maps and "sentence_transformers" not in maps
        print(f"replica on {port}: RSS {_rss_mb(pid):.0f} MB")
        assert deployment.readyz(port)[1]["status"] == "ready"


@needs_nginx
def test_rollout_under_load(deployment, index_dir, encoder, tmp_path):
    """A new build published into the shared index folder under load: every response
    200, every replica on the new build within 2x reload_interval."""
    load = Load(deployment.url)
    try:
        time.sleep(1)
        folder = ingest_into(index_dir, write_corpus(tmp_path / "corpus", extra="zebra"), encoder)
        published = time.time()
        build_time = json.loads((folder / "manifest.json").read_text())["build_time"]
        converged = {}
        while len(converged) < len(deployment.ports) and time.time() - published < 10:
            for port in deployment.ports:
                answer = deployment.readyz(port)
                if port not in converged and answer and answer[1].get("build") == folder.name:
                    assert answer[1]["index"]["build_time"] == build_time
                    converged[port] = time.time() - published
            time.sleep(0.05)
        time.sleep(1)  # and keep serving on the new build
    finally:
        results = load.stop()
    print(f"rollout: {len(results)} requests, {len(load.failures())} failed; converged after {converged}")
    assert len(converged) == len(deployment.ports), converged
    assert max(converged.values()) <= 2 * RELOAD_INTERVAL, converged
    assert len(results) > 50 and not load.failures(), load.failures()[:5]
    body = httpx.get(deployment.url + "/v1/ask", params={"q": "how to feed a zebra"}).json()
    assert body["results"][0]["article_id"] == "zebra"


@needs_nginx
def test_failover_kill_9_one_replica_under_load(deployment):
    """kill -9 of a replica: no GET fails (nginx retries on the other), the runner
    restarts it, and nginx sends it traffic again. The one exception is a response
    the kill cut after its headers (`_cut_by_the_kill`): CI saw it once in 1,370."""
    victim_port = deployment.ports[0]
    victim = deployment.replica_pid(victim_port)
    errors_before = len(deployment.error_log())
    load = Load(deployment.url)
    try:
        time.sleep(1)
        os.kill(victim, signal.SIGKILL)
        killed = time.time()
        restarted = None
        while time.time() - killed < 90:
            pid = deployment.replica_pid(victim_port)
            answer = deployment.readyz(victim_port)
            if pid and pid != victim and answer and answer[0] == 200:
                restarted = time.time() - killed
                break
            time.sleep(0.1)
        assert restarted is not None, deployment.log_path.read_text()[-2000:]
        ready_at = time.time()
        # Passive checks: nginx tries the replica again after fail_timeout (2 s).
        rejoined = False
        while time.time() - ready_at < 15 and not rejoined:
            time.sleep(0.5)
            rejoined = any(f"upstream=127.0.0.1:{victim_port} " in line for line in deployment.access_log()[-200:])
    finally:
        results = load.stop()
    retried = sum(", " in line.split("upstream=")[1].split(" upstream_status")[0] for line in deployment.access_log())
    print(f"failover: {len(results)} requests, {len(load.failures())} failed, {retried} retried on another replica; "
          f"ready again {restarted:.1f} s after kill -9")
    assert rejoined, "the restarted replica got no request through nginx"
    errors = deployment.error_log()[errors_before:]
    cut = [r for r in load.failures() if _cut_by_the_kill(r, killed, errors)]
    assert len(results) > 50 and len(cut) <= 1 and len(load.failures()) == len(cut), (load.failures()[:5], errors[-20:])


def _cut_by_the_kill(failure: tuple[float, int | str], killed: float, errors: list[str]) -> bool:
    """The one failure no proxy can hide: kill -9 landed between the replica's response
    headers and its body. nginx has passed the headers on, so it may not retry
    (`proxy_next_upstream` retries only while nothing was sent to the client), and the
    client gets a cut body. It is accepted only at the kill and with nginx's own record
    of a replica that closed in the middle of a response."""
    at, outcome = failure
    truncated = isinstance(outcome, str) and outcome.startswith("RemoteProtocolError") and (
        "incomplete chunked read" in outcome or "complete message body" in outcome)
    closed_mid_body = any("upstream prematurely closed connection while reading upstream" in line for line in errors)
    return truncated and closed_mid_body and abs(at - killed) < 2


def _start_slow_request(port: int, question: str) -> tuple[socket.socket, bytes]:
    """A POST /v1/ask in flight at the replica, its body not sent yet. With `Expect:
    100-continue`, uvicorn answers "100 Continue" only once the app has taken the
    request and waits for its body: from then on the request is in flight there.
    (Sending the headers and sleeping is not enough: a replica that gets SIGTERM
    before it has read them drops the connection as idle.)"""
    body = json.dumps({"question": question}).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        f"POST /v1/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    )
    interim = b""
    while b"\r\n\r\n" not in interim:
        chunk = sock.recv(1)
        assert chunk, "the replica closed the connection before taking the request"
        interim += chunk
    assert interim.startswith(b"HTTP/1.1 100"), interim
    return sock, body


def _read_response(sock: socket.socket) -> tuple[int, dict]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, rest = data.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(head.split()[1]), json.loads(rest)


@needs_nginx
def test_rolling_restart_leaves_upstream_first_and_finishes_in_flight_requests(deployment):
    """SIGHUP: replica by replica, leave the upstream, SIGTERM, restart, rejoin. A
    request in flight at the replica when it gets SIGTERM completes with 200, and no
    request through nginx fails."""
    port = deployment.ports[0]
    old = {p: deployment.replica_pid(p) for p in deployment.ports}
    load = Load(deployment.url)
    try:
        time.sleep(0.5)
        sock, rest = _start_slow_request(port, "Passwort vergessen")
        os.kill(deployment.proc.pid, signal.SIGHUP)
        # The replica is shutting down once its port refuses new connections.
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                break
            time.sleep(0.05)
        else:
            pytest.fail("replica did not start shutting down")
        assert Path(f"/proc/{old[port]}").exists()  # still there: waiting for our request
        sock.sendall(rest)
        status, body = _read_response(sock)
        sock.close()
        assert status == 200 and body["results"][0]["article_id"] == "pw"
        # Wait for the whole rolling restart: new processes, all ready.
        deadline = time.time() + 120
        while time.time() < deadline:
            now = {p: deployment.replica_pid(p) for p in deployment.ports}
            if all(now[p] and now[p] != old[p] for p in now) and all(
                (deployment.readyz(p) or (0,))[0] == 200 for p in now
            ) and deployment.log_path.read_text().count("back in the upstream") >= len(deployment.ports):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"rolling restart did not finish: {deployment.log_path.read_text()[-2000:]}")
        time.sleep(1)
    finally:
        results = load.stop()
    print(f"rolling restart: {len(results)} requests, {len(load.failures())} failed")
    assert len(results) > 50 and not load.failures(), load.failures()[:5]


def _wait(what, condition, timeout: float, deployment: Deployment) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            pytest.fail(f"{what} not within {timeout} s: {deployment.log_path.read_text()[-2000:]}")
        time.sleep(0.1)


@needs_nginx
def test_add_and_remove_a_replica_under_load(deployment):
    """SIGUSR1: a replica on the next port joins once ready and gets traffic;
    SIGUSR2: it stops and leaves the upstream. Both reload nginx, which closes idle
    client keep-alive connections: a client that, like a browser, sends a GET again
    on such a connection sees no failure."""
    port = max(deployment.ports) + 1
    load = Load(deployment.url, retry_closed_keepalive=True)
    try:
        os.kill(deployment.proc.pid, signal.SIGUSR1)
        _wait("the new replica", lambda: f"added on port {port}" in deployment.log_path.read_text(), 90, deployment)
        _wait("traffic to it", lambda: any(f"upstream=127.0.0.1:{port} " in line
                                           for line in deployment.access_log()[-300:]), 15, deployment)
        os.kill(deployment.proc.pid, signal.SIGUSR2)
        _wait("its removal", lambda: "removed" in deployment.log_path.read_text()
              and deployment.replica_pid(port) is None, 60, deployment)
    finally:
        results = load.stop()
    print(f"add + remove a replica: {len(results)} requests, {len(load.failures())} failed, "
          f"{load.retried} sent again after nginx's reload closed the keep-alive connection")
    assert len(results) > 50 and not load.failures(), load.failures()[:5]


@needs_nginx
def test_headers_gzip_widget_cache_and_csp_pages_work_in_chromium(deployment):
    from qa.api.pages import widget_version

    page = httpx.get(deployment.url + "/")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    version = widget_version()
    assert f'"/widget.js?v={version}"' in page.text
    widget = httpx.get(deployment.url + f"/widget.js?v={version}", headers={"Accept-Encoding": "gzip"})
    assert widget.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert widget.headers["content-encoding"] == "gzip"
    assert httpx.get(deployment.url + "/widget.js").headers["cache-control"] == "no-cache"
    ask = httpx.get(deployment.url + "/v1/ask", params={"q": "Passwort vergessen", "limit": 5},
                    headers={"Accept-Encoding": "gzip"})
    assert ask.status_code == 200 and ask.headers["content-encoding"] == "gzip"

    # The pages still work under that policy: no violation, the widget and the
    # agent console search. In a thread of its own: Playwright's sync API refuses a
    # thread where another test's browser (tests/test_browser.py) already runs.
    violations, errors = [], []
    thread = threading.Thread(target=_pages_in_chromium, args=(deployment.url, violations, errors))
    thread.start()
    thread.join(180)
    assert not thread.is_alive() and not errors, errors
    assert not violations, violations


def _pages_in_chromium(url: str, violations: list, errors: list) -> None:
    from playwright.sync_api import sync_playwright

    from .test_browser import ARGS, CHROMIUM

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                tab = browser.new_page()
                tab.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
                tab.on("pageerror", lambda e: violations.append(str(e)))
                tab.goto(url + "/?lang=de")
                tab.locator("#helpdesk-qa-widget .launcher").click()
                tab.locator("#helpdesk-qa-widget input").type("Passwort vergessen", delay=20)
                tab.locator("#helpdesk-qa-widget li.result").first.wait_for()
                tab.goto(url + "/agent")
                tab.fill("#q", "Passwort vergessen")
                tab.locator("#results li").first.wait_for()
            finally:
                browser.close()
    except Exception as e:  # reported by the test in the main thread
        errors.append(f"{type(e).__name__}: {e}")


@needs_nginx
def test_rate_limit_answers_429_with_json_and_retry_after(index_dir, tmp_path):
    d = Deployment(tmp_path / "run", index_dir, replicas=1, rate=2, burst=3)
    try:
        with httpx.Client(base_url=d.url, timeout=10) as client:
            answers = [client.get("/v1/ask", params={"q": "Passwort"}) for _ in range(10)]
            statuses = [a.status_code for a in answers]
            assert statuses[:4] == [200] * 4 and 429 in statuses, statuses
            limited = next(a for a in answers if a.status_code == 429)
            assert limited.headers["retry-after"] == "1"
            assert limited.headers["content-type"] == "application/json"
            assert "too many requests" in limited.json()["detail"]
            assert client.get("/readyz").status_code == 200  # only /v1/* is limited
            time.sleep(1.5)
            assert client.get("/v1/ask", params={"q": "Passwort"}).status_code == 200
    finally:
        d.stop()


# -- a single server: start-up on a bad build, draining ----------------------------

def _corrupt(build: Path) -> None:
    with open(build / "vectors.faiss", "r+b") as f:
        f.seek(100)
        f.write(b"garbage")


def test_startup_on_a_corrupt_build_falls_back_to_the_newest_intact_one(tmp_path, encoder):
    root = tmp_path / "index"
    good = ingest_into(root, write_corpus(tmp_path / "a"), encoder)
    bad = ingest_into(root, write_corpus(tmp_path / "b", extra="zebra"), encoder)
    _corrupt(bad)
    server = Server(root)
    try:
        status, ready = get_json(server.url + "/readyz")
        assert status == 200 and ready["status"] == "degraded" and ready["build"] == good.name
        assert bad.name in ready["reason"] and "corrupt" in ready["reason"]
        body = httpx.get(server.url + "/v1/ask", params={"q": "Passwort vergessen"}).json()
        assert body["results"][0]["article_id"] == "pw"
        log = Path(server.log.name).read_text()
        assert f"falling back to build {good.name}" in log and bad.name in log

        # A good build published later is picked up, and the service is ready again.
        fixed = ingest_into(root, write_corpus(tmp_path / "c", extra="zebra"), encoder)
        deadline = time.time() + 20
        while time.time() < deadline and get_json(server.url + "/readyz")[1].get("build") != fixed.name:
            time.sleep(0.2)
        assert get_json(server.url + "/readyz") [1]["status"] == "ready"
    finally:
        server.stop()


def test_startup_with_no_intact_build_answers_503(tmp_path, encoder):
    root = tmp_path / "index"
    only = ingest_into(root, write_corpus(tmp_path / "a"), encoder)
    _corrupt(only)
    server = Server(root)
    try:
        status, ready = get_json(server.url + "/readyz")
        assert status == 503 and ready["status"] == "not ready" and "corrupt" in ready["detail"]
        assert httpx.get(server.url + "/v1/ask", params={"q": "Passwort"}).status_code == 503
    finally:
        server.stop()


def test_sigterm_drains_readyz_first_then_stops(index_dir):
    """With HELPDESK_QA_DRAIN_SECONDS, SIGTERM turns /readyz to 503 "draining" while
    the replica still answers, so a balancer with active checks takes it out first."""
    server = Server(index_dir, {"HELPDESK_QA_DRAIN_SECONDS": "2"})
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/readyz").status_code == 200
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            drained = client.get("/readyz")
            assert drained.status_code == 503 and drained.json()["status"] == "draining"
            assert client.get("/v1/ask", params={"q": "Passwort vergessen"}).status_code == 200
        # uvicorn re-raises the signal once its graceful shutdown is complete.
        assert server.proc.wait(30) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in Path(server.log.name).read_text()
    finally:
        server.stop()
