"""The embedded service on one machine, as real processes: Redis, a migrated SQLite database, the API under
gunicorn and a Celery worker, each in its own process group and stopped when the ``ExitStack`` unwinds.

Used by ``make demo`` (run_demo.py), the load benchmark (bench/load_api.py) and the browser test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with code {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not start listening on port {port}")


@contextmanager
def supervised(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A child process in its own group, stopped (TERM, then KILL) when the block ends, however it ends."""
    with open(log, "ab") as handle:
        process = subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT,
                                   start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def admin(env: dict[str, str], *args: str) -> str:
    """Run ``ftcn-admin`` with the stack's settings; its standard output."""
    return subprocess.run([str(BIN / "ftcn-admin"), *args], env=env, check=True, cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()


@dataclass
class LocalStack:
    base: str
    env: dict[str, str]
    token: str  # an admin token with the train permission, made for this stack
    logs: Path
    api: subprocess.Popen
    worker: subprocess.Popen | None


def start_stack(stack: ExitStack, home: Path, *, port: int = 0, api_workers: int = 2, api_threads: int = 1,
                worker_concurrency: int | None = 1, worker_threads: int | None = None,
                settings: dict[str, str] | None = None, before_api=None) -> LocalStack:
    """Start everything under ``stack`` (fresh ``home``); returns once the API answers /readyz (or /healthcheck
    without a worker). ``before_api(env)`` runs after migration, e.g. to register a model. ``worker_threads``
    caps the worker's torch/OpenMP threads (leaving cores to the API on a shared machine)."""
    redis_binary = shutil.which("redis-server")
    if redis_binary is None:
        raise SystemExit("redis-server is missing: apt-get install redis-server (make demo does it when root)")
    shutil.rmtree(home, ignore_errors=True)
    logs = home / "logs"
    logs.mkdir(parents=True)
    redis_port, api_port = free_port(), port or free_port()
    env = {**os.environ, "FTCN_DATABASE_URL": f"sqlite:///{home / 'ftcn.sqlite3'}",
           "FTCN_STORAGE_URL": (home / "storage").as_uri(), "FTCN_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "FTCN_SECRET_KEY": os.urandom(16).hex(), **(settings or {})}
    env.pop("FTCN_TT_WEIGHTS", None)
    redis = stack.enter_context(supervised([redis_binary, "--port", str(redis_port), "--bind", "127.0.0.1",
                                            "--save", "", "--appendonly", "no", "--dir", str(home)],
                                           env, logs / "redis.log"))
    wait_for_port(redis_port, redis, "redis-server")
    admin(env, "migrate")
    token = admin(env, "token", "create", "--owner", "local", "--name", "local stack", "--admin", "--train")
    if before_api:
        before_api(env)
    api = stack.enter_context(supervised([str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{api_port}", "--workers",
                                          str(api_workers), "--threads", str(api_threads), "--timeout", "120",
                                          "-c", "python:api.gunicorn_conf", "api:create_app()"], env, logs / "api.log"))
    worker = None
    if worker_concurrency:
        worker_env = {**env, **({"OMP_NUM_THREADS": str(worker_threads)} if worker_threads else {})}
        argv = [str(BIN / "celery"), "-A", "worker", "worker", "-Q", "predict,train,webhooks",
                "--concurrency", str(worker_concurrency), "--loglevel", "INFO"]
        worker = stack.enter_context(supervised(argv, worker_env, logs / "worker.log"))
    wait_for_port(api_port, api, "the API")
    base = f"http://127.0.0.1:{api_port}"
    probe = "/readyz" if worker else "/healthcheck"
    deadline = time.monotonic() + 120
    while requests.get(base + probe, timeout=10).status_code != 200:
        if (worker and worker.poll() is not None) or time.monotonic() > deadline:
            raise SystemExit(f"the worker did not come up; see {logs / 'worker.log'}")
        time.sleep(1)
    return LocalStack(base, env, token, logs, api, worker)
