"""Real servers started by the tests themselves (integration tests): S3 (moto server mode), PostgreSQL."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def s3_server() -> Iterator[str]:
    """An S3-compatible HTTP server on a free local port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


POSTGRES_BIN = Path("/usr/lib/postgresql")


def _postgres_bin() -> Path:
    versions = sorted(POSTGRES_BIN.glob("*/bin/initdb"))
    if not versions:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql); `make test` installs it as root")
    return versions[-1].parent


def _as_postgres(argv: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root; CI runs as root, so run them as the postgres user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster (initdb in a temp dir) on a free port; yields a SQLAlchemy URL."""
    with PostgresCluster() as cluster:
        yield cluster.url


@contextmanager
def redis_server() -> Iterator[str]:
    """A real redis-server on a free port, without persistence; yields its URL."""
    with RedisProcess() as server:
        yield server.url


def wait_for_port(port: int, process: subprocess.Popen | None, seconds: float = 20, log: Path | None = None) -> None:
    """Until something listens on the loopback ``port``; the server's exit (or the time out) raises, with the end
    of its ``log`` when given."""
    from tests.images import tail

    def log_end() -> str:
        return f":\n{tail(log)}" if log else ""

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}{log_end()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {seconds:.0f} s{log_end()}")


@contextmanager
def celery_worker(env: dict[str, str], queues: str = "predict,train,webhooks",
                  concurrency: int = 1) -> Iterator[subprocess.Popen]:
    """A real Celery worker process (``celery -A worker worker``) with the given FTCN_* environment."""
    import sys

    log = tempfile.NamedTemporaryFile(prefix="ftcn-worker-", suffix=".log", delete=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker", "worker", "-Q", queues, "--concurrency", str(concurrency),
         "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--hostname", f"test-{free_port()}@%h"],
        env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1],
        start_new_session=True,  # its own process group, so a test can SIGKILL the worker and its children
    )
    process.log_path = log.name  # type: ignore[attr-defined]
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def _serving(server) -> Iterator[str]:
    """Run a socketserver-style server in a daemon thread; yields its base URL, shuts it down after."""
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@contextmanager
def http_app(app) -> Iterator[str]:
    """Serve a WSGI app over real HTTP on a free port (werkzeug, threaded); yields the base URL."""
    from werkzeug.serving import make_server

    with _serving(make_server("127.0.0.1", 0, app, threaded=True)) as base:
        yield base


@contextmanager
def http_server(routes: dict[str, tuple[int, dict[str, str], bytes]]) -> Iterator[str]:
    """A tiny real HTTP server answering fixed routes: path -> (status, headers, body)."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            status, headers, body = routes.get(self.path, (404, {}, b""))
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with _serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as base:
        yield base


class RedisProcess:
    """A redis-server on a fixed port that a test can kill and start again (empty: no persistence)."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server); "
                               "`make test` installs it as root")
        self.port = free_port()
        self.folder = tempfile.mkdtemp(prefix="ftcn-redis-")
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no", "--dir", self.folder],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.process)

    def kill(self) -> None:
        """SIGKILL: everything Redis held (queued and unacknowledged messages) is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> "RedisProcess":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


class PostgresCluster:
    """A throwaway PostgreSQL cluster that a test can stop and start again on the same port and data."""

    def __init__(self) -> None:
        self.binaries = _postgres_bin()
        self.folder = Path(tempfile.mkdtemp(prefix="ftcn-pg-"))
        self.data = self.folder / "data"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.url = f"postgresql+psycopg://ftcn@127.0.0.1:{self.port}/ftcn"

    def start(self) -> None:
        self.process = subprocess.Popen(_as_postgres([str(self.binaries / "postgres"), "-D", str(self.data), "-p",
                                                      str(self.port), "-k", str(self.folder), "-h", "127.0.0.1",
                                                      "-F"]),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while subprocess.run([str(self.binaries / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("PostgreSQL did not start")
            time.sleep(0.2)

    def stop(self) -> None:
        """Fast shutdown (what a restart does): open connections are cut."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def __enter__(self) -> "PostgresCluster":
        subprocess.run(_as_postgres([str(self.binaries / "initdb"), "-D", str(self.data), "-U", "ftcn",
                                     "--auth=trust", "-E", "UTF8"]), check=True, capture_output=True)
        self.start()
        subprocess.run([str(self.binaries / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "ftcn",
                        "ftcn"], check=True, capture_output=True)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class FaultyProxy:
    """An HTTP reverse proxy in front of a server (the S3 protocol server) that can be told to fail.

    mode "pass" forwards everything; "fail-writes" answers PUT/POST with 500 InternalError (an S3 outage for
    writes); "down" refuses to serve (closes the connection). ``writes_refused`` counts the failed writes, which
    shows the client's retries.
    """

    def __init__(self, upstream: str) -> None:
        import http.server
        from urllib.parse import urlparse

        self.upstream = urlparse(upstream)
        self.mode = "pass"
        self.writes_refused = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                import http.client

                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy.mode == "down":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if proxy.mode == "fail-writes" and self.command in ("PUT", "POST"):
                    proxy.writes_refused += 1
                    error = b"<Error><Code>InternalError</Code><Message>injected fault</Message></Error>"
                    self.send_response(500)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(error)))
                    self.end_headers()
                    self.wfile.write(error)
                    return
                connection = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                payload = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                connection.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FaultyProxy":
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()


class WebhookReceiver:
    """A real HTTP receiver of webhooks on a fixed port: records every POST (headers, body) and answers with the
    next status of ``answers`` (the last one repeats); an answer of None holds the request open without ever
    answering (a receiver that is slow while the sender dies). ``start``/``stop`` bring it up and down."""

    def __init__(self, answers: list[int | None] | None = None, port: int | None = None) -> None:
        import threading

        self.port = port or free_port()
        self.answers = list(answers or [200])
        self.received: list[tuple[dict[str, str], bytes, int | None]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def answered(self, status: int = 200) -> list[tuple[dict[str, str], bytes, int | None]]:
        with self.lock:
            return [entry for entry in self.received if entry[2] == status]

    def start(self) -> "WebhookReceiver":
        import http.server
        import threading

        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    status = receiver.answers[min(len(receiver.received), len(receiver.answers) - 1)]
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
                if status is None:
                    receiver.release.wait(60)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
