"""Prometheus metrics from the real processes: the API under gunicorn with two worker processes (multiprocess mode:
a scrape of either adds up both) and a Celery worker's own endpoint, after real jobs ran; the Grafana dashboard
only asks for metrics that exist; /metrics refuses anonymous and non-admin callers."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests
import torch
from prometheus_client.parser import text_string_to_metric_families

from ftcn.checkpoints import save_checkpoint
from ftcn.models import build_model, tiny_config
from jobs.admin import make_token, register_model
from jobs.settings import Settings
from tests.media import TALKING_FACE
from tests.servers import WebhookReceiver, free_port

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "demo"))
from local_stack import start_stack  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]
JOBS = 2
PROBES = 25


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, from a Prometheus text exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(scrape: dict, name: str, **labels: str) -> float:
    """The sum of a sample over every label set that has ``labels``."""
    return sum(value for (sample, have), value in scrape.items()
               if sample == name and set(labels.items()) <= set(have))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("metrics")
    metrics_port = free_port()
    checkpoint = home.parent / f"{home.name}-tiny.pt"
    torch.manual_seed(0)  # plumbing only: the verdicts of this untrained model are not under test
    save_checkpoint(checkpoint, build_model(tiny_config()), metadata={"purpose": "test"})

    def register(env: dict[str, str]) -> None:
        settings = Settings.from_env({k: v for k, v in env.items() if k.startswith("FTCN_")})
        register_model(settings, checkpoint, "tiny-test", default=True)

    with ExitStack() as stack:
        receiver = WebhookReceiver().start()
        stack.callback(receiver.stop)
        local = start_stack(stack, home / "stack", api_workers=2, api_threads=2,
                            settings={"FTCN_WORKER_METRICS_PORT": str(metrics_port), "FTCN_LOG_FORMAT": "json",
                                      "FTCN_URL_ALLOWLIST": "127.0.0.1", "FTCN_WEBHOOK_POLL_S": "0.3"},
                            before_api=register)
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {local.token}"
        job_ids = []
        for index in range(JOBS):  # the first calls a webhook back
            form = {"options": '{"max_frames": 48}', "reuse": "false",  # every job runs the model
                    **({"webhook_url": receiver.url} if index == 0 else {})}
            answer = http.post(local.base + "/jobs/predict", data=form,
                               files={"video": ("talking.mp4", TALKING_FACE.read_bytes())}, timeout=30)
            assert answer.status_code == 202, answer.text
            job_ids.append(answer.json()["id"])
        deadline = time.monotonic() + 240
        for job_id in job_ids:
            while (job := http.get(f"{local.base}/jobs/{job_id}", timeout=10).json())["status"] in ("queued",
                                                                                                   "running"):
                assert time.monotonic() < deadline, (local.logs / "worker.log").read_text()[-3000:]
                time.sleep(0.5)
            assert job["status"] == "succeeded", job
        while not receiver.answered():
            assert time.monotonic() < deadline, (local.logs / "worker.log").read_text()[-3000:]
            time.sleep(0.2)
        for _ in range(PROBES):
            assert requests.get(local.base + "/healthcheck", timeout=10).status_code == 200
        env = {k: v for k, v in local.env.items() if k.startswith("FTCN_")}
        yield {"local": local, "http": http, "job_ids": job_ids, "settings": Settings.from_env(env),
               "worker_metrics": f"http://127.0.0.1:{metrics_port}/metrics"}


def test_api_metrics_add_up_every_process(service: dict[str, Any]) -> None:
    answer = service["http"].get(service["local"].base + "/metrics", timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    scrape = samples(answer.text)
    # 25 probes spread over two gunicorn processes: only a sum over both processes' files gives 25
    assert total(scrape, "ftcn_http_requests_total", route="/healthcheck", status="200") == PROBES
    assert total(scrape, "ftcn_jobs_submitted_total", kind="predict") == JOBS
    assert total(scrape, "ftcn_jobs", kind="predict", status="succeeded") == JOBS
    assert total(scrape, "ftcn_http_request_duration_seconds_count", route="/jobs/<job_id>") >= JOBS
    assert {labels for (name, labels) in scrape if name == "ftcn_queue_depth"} == {
        (("queue", q),) for q in ("predict", "train", "webhooks")}
    assert total(scrape, "ftcn_queue_depth") == 0  # everything was taken


def test_worker_metrics_count_jobs_durations_and_stages(service: dict[str, Any]) -> None:
    scrape = samples(requests.get(service["worker_metrics"], timeout=10).text)
    assert total(scrape, "ftcn_jobs_finished_total", kind="predict", status="succeeded") == JOBS
    assert total(scrape, "ftcn_job_duration_seconds_count", kind="predict", status="succeeded") == JOBS
    assert total(scrape, "ftcn_job_duration_seconds_sum", kind="predict") > 0
    assert total(scrape, "ftcn_job_queue_wait_seconds_count", kind="predict") == JOBS
    assert total(scrape, "ftcn_webhook_deliveries_total", outcome="delivered") == 1
    for stage in ("model", "encode"):
        assert total(scrape, "ftcn_stage_seconds_count", stage=stage) == JOBS, stage
        assert total(scrape, "ftcn_stage_seconds_sum", stage=stage) > 0, stage


def test_grafana_dashboard_asks_only_for_metrics_that_exist(service: dict[str, Any]) -> None:
    api = service["http"].get(service["local"].base + "/metrics", timeout=10).text
    worker = requests.get(service["worker_metrics"], timeout=10).text
    exposed = {name for name, _ in samples(api)} | {name for name, _ in samples(worker)}
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "ftcn-dashboard.json").read_text())
    wanted = {name for panel in dashboard["panels"] for target in panel["targets"]
              for name in re.findall(r"\bftcn_\w+", target["expr"])}
    assert len(wanted) >= 10
    assert wanted <= exposed, sorted(wanted - exposed)


def test_metrics_are_for_admins_only(service: dict[str, Any]) -> None:
    base = service["local"].base
    anonymous = requests.get(base + "/metrics", timeout=10)
    assert anonymous.status_code == 401 and anonymous.headers["Content-Type"] == "application/problem+json"
    user = requests.get(base + "/metrics", timeout=10,
                        headers={"Authorization": f"Bearer {make_token(service['settings'], 'viewer')}"})
    assert user.status_code == 403 and "ftcn_" not in user.text


def test_worker_log_lines_are_json_with_the_job_id(service: dict[str, Any]) -> None:
    lines = [json.loads(line) for line in (service["local"].logs / "worker.log").read_text().splitlines()
             if line.startswith("{")]
    for job_id in service["job_ids"]:
        mine = [line for line in lines if line.get("job_id") == job_id]
        assert any("started" in line["message"] for line in mine), job_id
        assert any("succeeded" in line["message"] for line in mine), job_id
        assert all(line["role"] == "worker" and line["time"].endswith("Z") for line in mine)
