"""Submit latency under a fixed request rate, against the embedded stack running as real processes (loopback).

Starts Redis, the API under gunicorn (gthread) and one Celery worker (demo/local_stack.py), registers a tiny
model, serves a 16-frame clip from a local HTTP server (allow-listed for the worker) and then submits
``POST /jobs/predict`` (JSON, video URL) open-loop at ``--rate`` requests/s for ``--seconds``: each request is
scheduled at its own time whether or not earlier ones have answered, so a slow server shows up as latency
instead of a lower rate. Bounded in count and time; stops by itself.

Prints submit latency p50/p95/p99/max, errors (anything but 202), the achieved rate and jobs completed per minute
by the worker during the run. Target on this machine: p99 < 50 ms at 100 requests/s with 0 errors.

    .venv/bin/python bench/load_api.py --rate 100 --seconds 30
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "demo"))

from local_stack import admin, start_stack  # noqa: E402


def serve_file(stack: ExitStack, data: bytes) -> str:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path != "/clip.mp4":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stack.callback(server.shutdown)
    return f"http://127.0.0.1:{server.server_address[1]}/clip.mp4"


def group_cpu_s(group: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of a process group (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # fields after the command: state, ppid, pgrp, ..., utime (11), stime (12)
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the submission phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--api-threads", type=int, default=8)
    parser.add_argument("--no-worker", action="store_true", help="measure the API alone")
    parser.add_argument("--cheap-jobs", action="store_true",
                        help="jobs fail at once in the worker (their URL answers 404): bookkeeping without model work")
    parser.add_argument("--worker-threads", type=int, default=1,
                        help="torch threads of the worker (1 leaves the other core to the API on 2 cores)")
    parser.add_argument("--postgres", action="store_true",
                        help="a throwaway PostgreSQL cluster instead of SQLite (needs the server binaries)")
    args = parser.parse_args(argv)
    total = int(args.rate * args.seconds)
    if not 0 < total <= 100_000:
        raise SystemExit("rate x seconds must be between 1 and 100000 requests")

    import torch

    from ftcn.checkpoints import save_checkpoint
    from ftcn.models import build_model, tiny_config
    from tests.media import TALKING_FACE

    with ExitStack() as stack:
        home = Path(tempfile.mkdtemp(prefix="ftcn-load-"))
        torch.manual_seed(0)  # a tiny model with random weights: the benchmark measures plumbing, not verdicts
        checkpoint = save_checkpoint(home.parent / f"{home.name}-tiny.pt", build_model(tiny_config()))
        limits = {"FTCN_SUBMIT_RATE_LIMIT": "1000000/minute", "FTCN_RATE_LIMIT": "1000000/minute",
                  "FTCN_URL_ALLOWLIST": "127.0.0.1"}
        if args.postgres:
            from tests.servers import PostgresCluster

            limits["FTCN_DATABASE_URL"] = stack.enter_context(PostgresCluster()).url
        service = start_stack(stack, home, api_workers=args.api_workers, api_threads=args.api_threads,
                              worker_concurrency=None if args.no_worker else 1, worker_threads=args.worker_threads,
                              settings=limits,
                              before_api=lambda env: admin(env, "register-model", str(checkpoint), "--name", "tiny",
                                                           "--default"))
        url = serve_file(stack, TALKING_FACE.read_bytes())
        if args.cheap_jobs:
            url = url.replace("/clip.mp4", "/missing.mp4")
        # reuse off: every job runs the model (the same clip is sent thousands of times; reuse would answer them)
        body = json.dumps({"video_url": url, "options": {"max_frames": 16}, "reuse": False})
        headers = {"Authorization": f"Bearer {service.token}", "Content-Type": "application/json"}
        local = threading.local()

        host, port = service.base.removeprefix("http://").split(":")
        payload = body.encode()
        request_headers = {**headers, "Content-Length": str(len(payload))}

        def submit(due: float) -> tuple[float, int, float]:
            # http.client with one kept-alive connection per client thread: a load generator that costs little
            # CPU, so that on two cores it measures the server rather than itself
            connection = getattr(local, "connection", None)
            if connection is None:
                connection = local.connection = http.client.HTTPConnection(host, int(port), timeout=30)
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            started = time.perf_counter()
            try:
                connection.request("POST", "/jobs/predict", body=payload, headers=request_headers)
                answer = connection.getresponse()
                answer.read()
                status = answer.status
            except (OSError, http.client.HTTPException):
                local.connection = None
                status = 0
            return time.perf_counter() - started, status, started - due

        def completed() -> int:
            totals = [requests.get(f"{service.base}/jobs?status={status}&limit=1", headers=headers,
                                   timeout=30).json()["total"] for status in ("succeeded", "failed")]
            return sum(totals)

        print(f"stack up at {service.base}; submitting {total} jobs at {args.rate:.0f}/s for {args.seconds:.0f} s",
              flush=True)
        with ThreadPoolExecutor(max_workers=64) as pool:
            def run(count: int) -> tuple[list[tuple[float, int, float]], float]:
                start = time.perf_counter() + 0.2
                futures = [pool.submit(submit, start + i / args.rate) for i in range(count)]
                return [f.result() for f in futures], time.perf_counter() - start

            # warm-up, not counted: every client thread opens its connection, every server thread and process
            # makes its first connections to Redis and the database and fills its caches
            run(int(args.rate * args.warmup))
            done_before = completed()
            cpu_before, api_before = time.process_time(), group_cpu_s(service.api.pid)
            results, wall = run(total)
            client_cpu = time.process_time() - cpu_before
            api_cpu = group_cpu_s(service.api.pid) - api_before
            done_after = completed()

    latencies = [r[0] * 1000 for r in results]
    errors = sum(1 for r in results if r[1] != 202)
    late = [r[2] * 1000 for r in results]
    statuses = sorted({r[1] for r in results})
    print(json.dumps({
        "requests": total, "warmup_requests": int(args.rate * args.warmup), "target_rate": args.rate,
        "achieved_rate": round(total / wall, 1), "errors": errors,
        "status_counts": {str(s): sum(1 for r in results if r[1] == s) for s in statuses},
        "latency_ms": {"p50": round(statistics.median(latencies), 1), "p95": round(percentile(latencies, 95), 1),
                       "p99": round(percentile(latencies, 99), 1), "max": round(max(latencies), 1)},
        "client_start_lag_ms_p99": round(percentile(late, 99), 1),
        "client_cpu_ms_per_request": round(client_cpu / total * 1000, 2),
        "api_cpu_ms_per_request": round(api_cpu / total * 1000, 2),
        "jobs_finished_per_min": round((done_after - done_before) / wall * 60, 1),
        "api": f"gunicorn {args.api_workers} workers x {args.api_threads} threads",
        "database": "postgresql" if args.postgres else "sqlite",
        "worker": "none" if args.no_worker else f"1 Celery process, {args.worker_threads} torch thread(s)",
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
