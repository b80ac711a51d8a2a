"""Delivering webhooks: the dispatcher that queues due events, and the task that makes one attempt.

The rules (outbox, leases, signature, backoff) are in ``jobs.webhooks``; this module does the I/O around them.
Every worker's main process runs a dispatcher thread (beside the reconciler): each ``FTCN_WEBHOOK_POLL_S`` it
leases the deliveries that are due and queues them on the ``webhooks`` queue, which workers serve alongside
(or apart from) their job queues.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from jobs import batches, service, webhooks
from jobs.db import unit_of_work
from jobs.logs import job_context
from jobs.models import Batch, Job, WebhookDelivery
from jobs.queue import enqueue_webhooks
from jobs.settings import Settings
from jobs.urls import FetchFailed, Unresolvable, UnsafeURL, post_json

if TYPE_CHECKING:
    from worker.state import WorkerState

log = logging.getLogger(__name__)


def attempt(delivery_id: str, url: str, event: str, secret: str | None, view: dict[str, Any] | None,
            settings: Settings) -> webhooks.Outcome:
    """One signed POST of the event; what came of it (never raises)."""
    started = time.perf_counter()

    def took() -> float:
        return (time.perf_counter() - started) * 1000

    if secret is None:
        return webhooks.Outcome(None, "the token that submitted the job was revoked: nothing can sign the event",
                                0.0, permanent=True)
    if view is None:
        return webhooks.Outcome(None, "the job no longer exists", 0.0, permanent=True)
    body = json.dumps(webhooks.payload(event, view), separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {"webhook-id": delivery_id, "webhook-timestamp": str(timestamp),
               "webhook-signature": webhooks.sign(secret, delivery_id, timestamp, body)}
    try:
        code = post_json(url, body, headers, timeout_s=webhooks.ATTEMPT_TIMEOUT_S, allowlist=settings.url_allowlist)
    except Unresolvable as exc:
        return webhooks.Outcome(None, str(exc), took())
    except UnsafeURL as exc:  # the name now points somewhere private: never sent there
        return webhooks.Outcome(None, f"refused: {exc}", took(), permanent=True)
    except FetchFailed as exc:
        return webhooks.Outcome(None, str(exc), took())
    error = None if 200 <= code < 300 else f"the receiver answered HTTP {code}"
    return webhooks.Outcome(code, error, took(), permanent=code in webhooks.GIVE_UP_STATUSES)


def deliver(state: WorkerState, delivery_id: str) -> str | None:
    """Attempt one delivery if it is still pending and nobody else is at it; its status after, or None."""
    settings = state.settings

    def take(session):
        delivery = webhooks.take_for_attempt(session, delivery_id)
        if delivery is None:
            return None
        if delivery.batch_id is not None:
            batch = session.get(Batch, delivery.batch_id)
            view = batches.batch_view(session, batch) if batch is not None else None
        else:
            job = session.get(Job, delivery.job_id)
            view = service.job_view(job, state.storage, settings.link_ttl_s) if job is not None else None
        return (delivery.url, delivery.event, webhooks.signing_secret(session, delivery.token_id, settings),
                view, delivery.job_id or delivery.batch_id)

    taken = unit_of_work(state.sessions, take)
    if taken is None:
        return None
    url, event, secret, view, job_id = taken
    with job_context(job_id):  # every line of the attempt carries the job's id
        outcome = attempt(delivery_id, url, event, secret, view, settings)
        status = unit_of_work(state.sessions, lambda session: webhooks.record_attempt(
            session, session.get(WebhookDelivery, delivery_id), outcome, settings))
        from jobs.metrics import WEBHOOK_ATTEMPTS

        result = "delivered" if outcome.delivered else ("failed" if status == "failed" else "retry")
        WEBHOOK_ATTEMPTS.labels(outcome=result).inc()
        log.info("webhook %s (%s) for job %s: %s%s", delivery_id, event, job_id, result,
                 f" ({outcome.error})" if outcome.error else "")
    return status


def dispatch_once(state: WorkerState) -> int:
    """Queue every due delivery; how many were queued."""
    ids = unit_of_work(state.sessions, webhooks.due)
    if ids:
        enqueue_webhooks(state.celery, ids)
    return len(ids)


def _dispatch_forever(state: WorkerState) -> None:
    while True:
        try:
            dispatch_once(state)
        except Exception:  # noqa: BLE001 - the database or Redis may be down: the next round tries again
            log.warning("webhook dispatch failed", exc_info=True)
        time.sleep(state.settings.webhook_poll_s)


def start_dispatcher(state: WorkerState) -> threading.Thread:
    thread = threading.Thread(target=_dispatch_forever, args=(state,), daemon=True, name="webhook-dispatcher")
    thread.start()
    return thread
