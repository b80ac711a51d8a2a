"""Webhooks: which URLs may receive them, who signs them, and the rules of delivery, shared by API and worker.

A job submitted with ``webhook_url`` gets one delivery row per terminal event (``job.succeeded``, ``job.failed``,
``job.canceled``), written by ``jobs.moves.move_job`` in the transaction that finishes the job: the outbox. Nothing is
sent from inside that transaction. Every worker's dispatcher (``worker.webhooks``) leases due rows and queues them
on the ``webhooks`` queue; the delivering task leases the row again for the length of one attempt, POSTs, and
records the attempt. So delivery is at least once: a message lost with Redis, or a worker killed mid-delivery,
only delays the event until its lease runs out. Every retry carries the same ``webhook-id`` (the row's id), so a
receiver that saw an event already can drop the copy.

Signatures follow the Standard Webhooks specification (https://www.standardwebhooks.com): HMAC-SHA256 over
``{id}.{timestamp}.{body}`` with the secret of the token that submitted the job (``FTCN_WEBHOOK_SECRET`` when
``FTCN_AUTH=open``), sent as ``webhook-signature: v1,<base64>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from jobs.models import Job, Token, WebhookDelivery, aware, rfc3339, utcnow
from jobs.params import webhook_of
from jobs.settings import Settings
from jobs.states import DELIVERY, DeliveryStatus, JobStatus
from jobs.urls import UnsafeURL, check_url

SECRET_PREFIX = "whsec_"
#: Seconds one attempt may take (connect + answer); a receiver should answer at once and work afterwards.
ATTEMPT_TIMEOUT_S = 10.0
#: How long a queued delivery is held before a dispatcher queues it again (its message may have been lost).
QUEUED_LEASE_S = 60.0
#: Answers after which an event is not retried: the receiver says it will never take it.
GIVE_UP_STATUSES = {410}


class WebhookRefused(ValueError):
    """A webhook that cannot be accepted (no signing secret for the caller), with the reason."""


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_webhook_url(url: str, settings: Settings) -> str:
    """The URL if it may receive webhooks: https (plain http only for allow-listed hosts) and the video URLs'
    SSRF rules (``jobs.urls``); checked at submission and again, on the address connected to, at delivery."""
    parsed = urlparse(url)
    if parsed.scheme != "https" and not (parsed.scheme == "http" and parsed.hostname in settings.url_allowlist):
        raise UnsafeURL("webhook URLs must be https (plain http only for hosts in FTCN_URL_ALLOWLIST)")
    return check_url(url, settings.url_allowlist)


def signing_secret(session: Session, token_id: str | None, settings: Settings) -> str | None:
    """The secret that signs deliveries for this token (or the open mode's ``FTCN_WEBHOOK_SECRET``)."""
    if token_id is None:
        return settings.webhook_secret or None
    token = session.get(Token, token_id)
    if token is None or token.revoked_at is not None:
        return None
    return token.webhook_secret


def webhook_params(session: Session, url: str, token_id: str | None, settings: Settings) -> dict[str, Any]:
    """What a job records of its webhook (``params["webhook"]``), once the URL and a signing secret are there."""
    check_webhook_url(url, settings)
    if signing_secret(session, token_id, settings) is None:
        raise WebhookRefused("this token has no webhook secret yet: make one with POST /me/webhook-secret"
                             if token_id else "webhooks need FTCN_WEBHOOK_SECRET when FTCN_AUTH=open")
    return {"url": url, "token_id": token_id}


def rotate_secret(session: Session, token_id: str) -> str:
    """A new signing secret for the token, returned once; deliveries from now on are signed with it."""
    token = session.get(Token, token_id)
    token.webhook_secret = new_secret()
    return token.webhook_secret


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value (Standard Webhooks, version 1)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def backoff_s(settings: Settings) -> tuple[float, ...]:
    """Seconds to wait before each retry (Standard Webhooks' schedule by default)."""
    return tuple(float(part) for part in settings.webhook_backoff_s)


ATTEMPTING = "attempting"
PENDING = DeliveryStatus.PENDING.value


def _in_flight(delivery: WebhookDelivery) -> bool:
    """Whether the last attempt was begun and not recorded (its task is at it, or died at it)."""
    return bool(delivery.attempts) and delivery.attempts[-1].get("status") == ATTEMPTING


def _swap(session: Session, delivery: WebhookDelivery, **values: Any) -> bool:
    """Change the row only if nobody changed its lease since it was read (compare-and-set on ``lease_version``)."""
    won = session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == delivery.id, WebhookDelivery.status == PENDING,
                                      WebhookDelivery.lease_version == delivery.lease_version)
        .values(lease_version=delivery.lease_version + 1, **values)
        .execution_options(synchronize_session=False)).rowcount == 1
    if won:
        session.expire(delivery)
    return won


def due(session: Session, now: datetime | None = None, limit: int = 100) -> list[str]:
    """Ids of pending deliveries whose time has come and which nobody holds, leased to the caller for queueing.
    An attempt whose task died (its lease ran out before it was recorded) is written down as lost."""
    now = now or utcnow()
    rows = session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= now,
                                      or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now))
        .order_by(WebhookDelivery.next_attempt_at).limit(limit)).all()
    taken = []
    for delivery in rows:
        attempts = list(delivery.attempts)
        if _in_flight(delivery):
            attempts[-1] = {"at": attempts[-1]["at"], "status_code": None, "duration_ms": None,
                            "error": "the delivering worker stopped before the attempt ended"}
        if _swap(session, delivery, leased_until=now + timedelta(seconds=QUEUED_LEASE_S), attempts=attempts):
            taken.append(delivery.id)
    return taken


def take_for_attempt(session: Session, delivery_id: str, now: datetime | None = None) -> WebhookDelivery | None:
    """The delivery, held for one attempt, if it is still pending and no other task is attempting it; None for a
    duplicate message (delivered, given up, or being attempted right now)."""
    now = now or utcnow()
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status != PENDING:
        return None
    held = aware(delivery.leased_until)
    if _in_flight(delivery) and held is not None and held > now:
        return None
    attempts = [*delivery.attempts[:-1]] if _in_flight(delivery) else list(delivery.attempts)
    if not _swap(session, delivery, leased_until=now + timedelta(seconds=ATTEMPT_TIMEOUT_S + 5),
                 attempts=[*attempts, {"at": rfc3339(now), "status": ATTEMPTING}]):
        return None
    return session.get(WebhookDelivery, delivery_id)


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: the receiver's HTTP status, or the error that stopped it."""

    status_code: int | None
    error: str | None
    duration_ms: float
    permanent: bool = False  # never retry (the URL is refused now, the receiver answered 410, the token is gone)

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def record_attempt(session: Session, delivery: WebhookDelivery, outcome: Outcome, settings: Settings,
                   now: datetime | None = None) -> str:
    """Write the attempt and decide what follows: delivered, retried after the next backoff, or failed (given
    up, or no retry left inside ``FTCN_WEBHOOK_RETRY_HOURS``). Returns the delivery's status."""
    now = now or utcnow()
    attempt = {"at": delivery.attempts[-1]["at"] if delivery.attempts else rfc3339(now),
               "status_code": outcome.status_code, "error": outcome.error,
               "duration_ms": round(outcome.duration_ms, 1)}
    attempts = [a for a in delivery.attempts if a.get("status") != ATTEMPTING] + [attempt]
    delivery.attempts, delivery.leased_until = attempts, None
    delivery.lease_version += 1
    schedule = backoff_s(settings)  # the wait before retry n is schedule[n - 1]; past its end, no retry
    retry_at = now + timedelta(seconds=schedule[len(attempts) - 1]) if len(attempts) <= len(schedule) else None
    deadline = aware(delivery.created_at) + timedelta(hours=settings.webhook_retry_hours)
    if outcome.delivered or outcome.permanent or retry_at is None or retry_at > deadline:
        ended = DeliveryStatus.DELIVERED if outcome.delivered else DeliveryStatus.FAILED
        delivery.status = DELIVERY.check(delivery.status, ended).value
        delivery.finished_at, delivery.next_attempt_at = now, None
    else:
        delivery.next_attempt_at = retry_at
    return delivery.status


def payload(event: str, job_view: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """The body of a delivery (Standard Webhooks' shape: type, timestamp, data = the job's public view)."""
    return {"type": event, "timestamp": rfc3339(now or utcnow()), "data": job_view}


def delivery_view(delivery: WebhookDelivery) -> dict[str, Any]:
    return {"id": delivery.id, "event": delivery.event, "status": delivery.status,
            "attempts": [a for a in delivery.attempts if a.get("status") != ATTEMPTING],
            "next_attempt_at": rfc3339(delivery.next_attempt_at) if delivery.status == PENDING else None,
            "created_at": rfc3339(delivery.created_at), "finished_at": rfc3339(delivery.finished_at)}


def deliveries_of(session: Session, job_id: str | None = None, batch_id: str | None = None) -> list[WebhookDelivery]:
    """The deliveries of one job's events, or of one batch's."""
    which = WebhookDelivery.job_id == job_id if batch_id is None else WebhookDelivery.batch_id == batch_id
    return list(session.scalars(select(WebhookDelivery).where(which).order_by(WebhookDelivery.created_at)))


def record_job_event(session: Session, job: Job, status: JobStatus) -> None:
    """A job submitted with a webhook gets its event in the same transaction that finishes it (the outbox, delivered
    by ``worker.webhooks``): the event exists exactly when the finished status does."""
    hook = webhook_of(job.params)
    if hook:
        session.add(WebhookDelivery(job_id=job.id, event=f"job.{status.value}", url=hook["url"],
                                    token_id=hook.get("token_id"), next_attempt_at=utcnow()))
