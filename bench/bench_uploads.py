"""API memory under large uploads: two concurrent 400 MB uploads against a real gunicorn API, per storage mode.

The API runs as its own process (gunicorn, one worker with 4 threads, as deployed), with a real Redis and either
local storage or an S3 protocol server (moto); two clients stream multipart uploads of ``--mb`` MB each at the same
time. The figure is the API worker's peak RSS (the kernel's high-water mark, VmHWM) during the uploads minus its
RSS before them (after one small warm-up upload). The issue's bound: less than 64 MB.

    python bench/bench_uploads.py              # both modes, 2 x 400 MB
    python bench/bench_uploads.py --mb 100 --modes local
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers import free_port, redis_server, s3_server  # noqa: E402

CHUNK = 1 << 20


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def upload(port: int, megabytes: int, name: str = "clip.mp4") -> int:
    """Stream a multipart upload of ``megabytes`` MB (an MP4 signature, then zeros); returns the HTTP status."""
    boundary = "ftcnbench" + os.urandom(8).hex()
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"{name}\"\r\n"
            "Content-Type: video/mp4\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    body_size = megabytes * CHUNK
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.putrequest("POST", "/jobs/predict")
    connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    connection.putheader("Content-Length", str(len(head) + body_size + len(tail)))
    connection.endheaders()
    connection.send(head)
    block = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * (CHUNK - 12)
    zeros = b"\x00" * CHUNK
    for index in range(megabytes):
        connection.send(block if index == 0 else zeros)
    connection.send(tail)
    status = connection.getresponse().status
    connection.close()
    return status


@contextmanager
def api_process(env: dict[str, str]) -> Iterator[tuple[int, int]]:
    """gunicorn serving the API; yields (port, the worker's pid)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "4", "--worker-class", "gthread",
         "--bind", f"127.0.0.1:{port}", "--timeout", "600", "-c", "python:api.gunicorn_conf", "api:create_app()"],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/healthcheck")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.3)
        workers = _children(process.pid)
        assert len(workers) == 1, workers
        yield port, workers[0]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def measure(mode: str, megabytes: int, clients: int) -> dict:
    import torch

    from ftcn.checkpoints import save_checkpoint
    from ftcn.models import build_model, tiny_config
    from jobs.admin import register_model
    from jobs.db import upgrade
    from jobs.settings import Settings

    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ftcn-bench-uploads-")))
        env = {"FTCN_DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
               "FTCN_REDIS_URL": stack.enter_context(redis_server()), "FTCN_AUTH": "open",
               "FTCN_MAX_UPLOAD_MB": str(megabytes + 64), "FTCN_SUBMIT_RATE_LIMIT": "1000/minute"}
        if mode == "local":
            env["FTCN_STORAGE_URL"] = (folder / "storage").as_uri()
        else:
            import boto3

            endpoint = stack.enter_context(s3_server())
            credentials = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                           "AWS_DEFAULT_REGION": "us-east-1"}
            os.environ.update(credentials)
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="ftcn")
            env.update(FTCN_STORAGE_URL="s3://ftcn/bench", FTCN_S3_ENDPOINT_URL=endpoint, **credentials)
        settings = Settings.from_env(env)
        upgrade(settings.database_url)
        torch.manual_seed(0)
        register_model(settings, save_checkpoint(folder / "tiny.pt", build_model(tiny_config())), "tiny",
                       default=True)
        port, worker = stack.enter_context(api_process(env))
        assert upload(port, 1) == 202  # warm-up: imports, first request, storage client
        before = _kib(worker, "VmRSS")
        statuses: list[int] = []
        started = time.perf_counter()
        threads = [threading.Thread(target=lambda: statuses.append(upload(port, megabytes))) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        peak = _kib(worker, "VmHWM")
    return {"mode": mode, "clients": clients, "mb_each": megabytes, "statuses": statuses, "seconds": round(seconds, 1),
            "rss_before_mb": round(before / 1024, 1), "peak_rss_mb": round(peak / 1024, 1),
            "peak_increase_mb": round((peak - before) / 1024, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=400, help="size of each upload")
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--modes", default="local,s3")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = []
    for mode in args.modes.split(","):
        row = measure(mode, args.mb, args.clients)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0 if all(set(r["statuses"]) == {202} for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
