"""Webhooks end to end: a real API, a real Redis, real Celery workers and a real HTTP receiver started here.

Each delivery is checked the way a user's receiver checks it, with the ``standardwebhooks`` package. Most events
come from canceling a queued job (instant and deterministic): the workers of those tests serve only the
``webhooks`` queue, so the job waits until it is canceled.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import torch
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from api import create_app
from api.client import Client
from ftcn.checkpoints import save_checkpoint
from ftcn.models import build_model, tiny_config
from jobs.admin import make_token, make_token_secrets, register_model
from jobs.settings import Settings
from tests.media import TALKING_FACE
from tests.servers import WebhookReceiver, celery_worker, free_port, http_app, redis_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("webhooks")
    with redis_server() as redis_url:
        env = {"FTCN_DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}", "FTCN_REDIS_URL": redis_url,
               "FTCN_STORAGE_URL": (folder / "storage").as_uri(), "FTCN_URL_ALLOWLIST": "127.0.0.1",
               "FTCN_WEBHOOK_BACKOFF_S": "1,1,1,1,1,1,1,1,1,1", "FTCN_WEBHOOK_POLL_S": "0.3",
               "FTCN_HEARTBEAT_S": "1", "FTCN_RECONCILE_INTERVAL_S": "2",
               "FTCN_WORKER_METRICS_PORT": str(free_port())}
        settings = Settings.from_env(env)
        app = create_app(settings)
        torch.manual_seed(0)  # plumbing only: the verdict of this untrained model is not under test
        checkpoint = save_checkpoint(folder / "tiny.pt", build_model(tiny_config()), metadata={"purpose": "test"})
        register_model(settings, checkpoint, "tiny-test", default=True)
        token, secret = make_token_secrets(settings, "hooks")
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {token}"
        admin = requests.Session()
        admin.headers["Authorization"] = f"Bearer {make_token(settings, 'ops', admin=True)}"
        with http_app(app) as base:
            yield {"env": env, "settings": settings, "base": base, "http": http, "secret": secret, "admin": admin,
                   "token": token}


def _submit(stack: dict[str, Any], webhook_url: str, **form: str) -> requests.Response:
    return stack["http"].post(stack["base"] + "/jobs/predict", data={"webhook_url": webhook_url, **form},
                              files={"video": ("talking.mp4", TALKING_FACE.read_bytes())}, timeout=30)


def _canceled_job(stack: dict[str, Any], webhook_url: str) -> str:
    """A job submitted as ftcn-client does (--webhook-url), then canceled while it waits."""
    job_id = Client(stack["base"], stack["token"]).predict(str(TALKING_FACE), webhook_url=webhook_url)["id"]
    assert stack["http"].post(f"{stack['base']}/jobs/{job_id}/cancel", timeout=10).status_code == 200
    return job_id


def _deliveries(stack: dict[str, Any], job_id: str) -> list[dict[str, Any]]:
    return stack["http"].get(f"{stack['base']}/jobs/{job_id}", timeout=10).json()["webhook"]["deliveries"]


def _wait(condition, seconds: float, what: str, log: str | None = None) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}" + (
            f"\n{Path(log).read_text()[-3000:]}" if log else "")
        time.sleep(0.2)
    return value


def _verified(secret: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    return Webhook(secret).verify(body, {k: v for k, v in headers.items() if k.startswith("webhook-")})


def test_succeeded_job_calls_back_signed(stack: dict[str, Any]) -> None:
    """A predict job that runs to the end: its receiver gets job.succeeded with the job's public view, signed
    with the token's secret; a changed byte or another secret does not verify."""
    receiver = WebhookReceiver().start()
    try:
        with celery_worker(stack["env"]) as worker:
            answer = _submit(stack, receiver.url, options='{"max_frames": 48}')
            assert answer.status_code == 202, answer.text
            job_id = answer.json()["id"]
            assert answer.json()["params"]["webhook"]["url"] == receiver.url
            _wait(lambda: receiver.answered(), 180, "the webhook", worker.log_path)
        headers, body, _ = receiver.received[0]
        event = _verified(stack["secret"], headers, body)
        assert event["type"] == "job.succeeded"
        assert event["data"]["id"] == job_id and event["data"]["status"] == "succeeded"
        assert event["data"]["result"]["verdict"] in ("REAL", "FAKE", "INCONCLUSIVE", "NO_FACE")
        assert headers["webhook-id"].startswith("msg_")
        with pytest.raises(WebhookVerificationError):
            _verified(stack["secret"], headers, body.replace(b"succeeded", b"failed"))
        with pytest.raises(WebhookVerificationError):
            _verified(make_token_secrets(stack["settings"], "someone-else")[1], headers, body)
        delivery, = _deliveries(stack, job_id)
        assert delivery["id"] == headers["webhook-id"] and delivery["status"] == "delivered"
        assert [a["status_code"] for a in delivery["attempts"]] == [200]
    finally:
        receiver.stop()


def test_receiver_down_then_up_gets_the_event_once(stack: dict[str, Any]) -> None:
    receiver = WebhookReceiver()  # not listening yet
    with celery_worker(stack["env"], queues="webhooks") as worker:
        job_id = _canceled_job(stack, receiver.url)
        _wait(lambda: len(_deliveries(stack, job_id)[0]["attempts"]) >= 2, 60, "two failed attempts",
              worker.log_path)
        failed = _deliveries(stack, job_id)[0]
        assert failed["status"] == "pending" and all(a["status_code"] is None and a["error"]
                                                     for a in failed["attempts"])
        receiver.start()
        try:
            _wait(lambda: _deliveries(stack, job_id)[0]["status"] == "delivered", 60, "the delivery",
                  worker.log_path)
            time.sleep(2)  # time for a duplicate to arrive, if the dispatcher were to send one
        finally:
            receiver.stop()
    assert len(receiver.received) == 1
    headers, body, _ = receiver.received[0]
    assert _verified(stack["secret"], headers, body)["type"] == "job.canceled"
    delivery = _deliveries(stack, job_id)[0]
    assert headers["webhook-id"] == delivery["id"]
    assert delivery["attempts"][-1]["status_code"] == 200 and len(delivery["attempts"]) >= 3


def test_server_errors_are_retried_with_the_same_id(stack: dict[str, Any]) -> None:
    receiver = WebhookReceiver(answers=[500, 503, 200]).start()
    try:
        with celery_worker(stack["env"], queues="webhooks") as worker:
            job_id = _canceled_job(stack, receiver.url)
            _wait(lambda: _deliveries(stack, job_id)[0]["status"] == "delivered", 60, "the delivery",
                  worker.log_path)
    finally:
        receiver.stop()
    assert [status for _, _, status in receiver.received] == [500, 503, 200]
    assert len({headers["webhook-id"] for headers, _, _ in receiver.received}) == 1
    for headers, body, _ in receiver.received:  # every attempt is signed anew, and verifies
        _verified(stack["secret"], headers, body)
    assert [a["status_code"] for a in _deliveries(stack, job_id)[0]["attempts"]] == [500, 503, 200]


def test_killed_worker_mid_delivery_does_not_lose_the_event(stack: dict[str, Any]) -> None:
    """The receiver holds the first attempt open; the worker is SIGKILLed during it. The next worker takes the
    event again once the attempt's lease runs out, with the same webhook-id."""
    receiver = WebhookReceiver(answers=[None, 200]).start()
    try:
        with celery_worker(stack["env"], queues="webhooks") as first:
            job_id = _canceled_job(stack, receiver.url)
            _wait(lambda: receiver.received, 60, "the first attempt", first.log_path)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=30)
        receiver.release.set()
        assert _deliveries(stack, job_id)[0]["status"] == "pending"
        with celery_worker(stack["env"], queues="webhooks") as second:
            _wait(lambda: _deliveries(stack, job_id)[0]["status"] == "delivered", 90, "the redelivery",
                  second.log_path)
    finally:
        receiver.stop()
    assert len(receiver.answered()) == 1
    assert len({headers["webhook-id"] for headers, _, _ in receiver.received}) == 1
    attempts = _deliveries(stack, job_id)[0]["attempts"]
    assert "stopped" in attempts[0]["error"] and attempts[-1]["status_code"] == 200


def test_unsafe_webhook_urls_are_refused_at_submission(stack: dict[str, Any]) -> None:
    before = stack["admin"].get(stack["base"] + "/jobs", timeout=10).json()["total"]
    for url in ("https://10.1.2.3/hook", "https://169.254.169.254/latest", "http://example.com/hook",
                "ftp://127.0.0.1/hook", "https://user:pw@example.com/hook"):
        answer = _submit(stack, url)
        assert answer.status_code == 422, (url, answer.text)
        assert answer.headers["Content-Type"] == "application/problem+json"
    answer = stack["http"].post(stack["base"] + "/jobs/train", timeout=10,
                                json={"dataset_id": "x", "webhook_url": "https://[::1]/x"})
    assert answer.status_code in (403, 404, 422), answer.text  # never accepted
    assert stack["admin"].get(stack["base"] + "/jobs", timeout=10).json()["total"] == before


def test_delivery_to_an_address_turned_private_is_refused(stack: dict[str, Any]) -> None:
    """At delivery the address is checked again: a name that now resolves to a private address (the receiver
    here, without the allow-list) gets nothing, and the event is given up."""
    from worker.webhooks import attempt

    receiver = WebhookReceiver().start()
    try:
        strict = Settings.from_env({**stack["env"], "FTCN_URL_ALLOWLIST": ""})
        outcome = attempt("msg_test", receiver.url, "job.failed", stack["secret"], {"id": "x"}, strict)
    finally:
        receiver.stop()
    assert receiver.received == [] and outcome.permanent and not outcome.delivered
    assert "non-public" in outcome.error


def test_webhook_secret_rotation_and_tokens_without_one(stack: dict[str, Any]) -> None:
    from sqlalchemy.orm import sessionmaker

    from jobs.db import make_engine, session_scope
    from jobs.models import Token

    token = make_token(stack["settings"], "legacy")
    sessions = sessionmaker(make_engine(stack["settings"].database_url))
    with session_scope(sessions) as session:  # a token made before webhooks existed
        for row in session.query(Token).filter(Token.owner == "legacy"):
            row.webhook_secret = None
    legacy = requests.Session()
    legacy.headers["Authorization"] = f"Bearer {token}"
    refused = legacy.post(stack["base"] + "/jobs/predict", data={"webhook_url": "http://127.0.0.1:9/hook"},
                          files={"video": ("talking.mp4", TALKING_FACE.read_bytes())}, timeout=30)
    assert refused.status_code == 409 and "webhook-secret" in refused.json()["detail"]
    made = legacy.post(stack["base"] + "/me/webhook-secret", timeout=10)
    assert made.status_code == 201 and made.json()["webhook_secret"].startswith("whsec_")
    assert Webhook(made.json()["webhook_secret"])  # a secret the receiver's library takes
    again = legacy.post(stack["base"] + "/me/webhook-secret", timeout=10).json()["webhook_secret"]
    assert again != made.json()["webhook_secret"]
    assert json.dumps(legacy.get(stack["base"] + "/me", timeout=10).json()).find("whsec_") == -1
