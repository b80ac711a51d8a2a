"""Views of batches: many predict jobs in one request (``jobs.batches`` makes and cancels them), listed and shown
with their report."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from sqlalchemy import select

from api.access import principal, submits
from api.problems import Problem
from api.schemas import BatchRequest
from api.views.common import app_state, bp, json_body, notified, on_key_race, reuse_param, usable_upload, with_backend
from jobs import batches, service, webhooks
from jobs.auth import visible
from jobs.db import session_scope
from jobs.metrics import JOBS_SUBMITTED
from jobs.models import Batch, rfc3339
from jobs.params import PredictParams, new_params, webhook_of
from jobs.states import JobKind
from jobs.urls import UnsafeURL, check_url


@bp.post("/batches")
@submits
def submit_batch() -> Response:
    """Many predict jobs in one request, all or none: every item is checked (URL rules, the caller's usable
    uploads, the model) before anything is created. Each item becomes a predict job; the batch reports on them."""
    state = app_state()
    body = json_body(BatchRequest)
    if len(body.items) > state.settings.max_batch_jobs:
        raise Problem(413, "too-many-items", "Too many items",
                      f"a batch holds at most {state.settings.max_batch_jobs} videos; send several batches")
    for index, item in enumerate(body.items):
        if item.video_url is not None:
            try:
                check_url(item.video_url, state.settings.url_allowlist)
            except UnsafeURL as exc:
                raise UnsafeURL(f"item {index}: {exc}") from None  # which item, for the problem's detail
    common = {**reuse_param(None if body.reuse else "false")}
    digest = service.fingerprint("batch", body.model_dump())
    return on_key_race(lambda key: _create_batch(body, common, key, digest))


def _create_batch(body: BatchRequest, common: dict[str, Any], key: str | None, digest: str) -> Response:
    """The batch and its jobs in one transaction (202), or the batch this Idempotency-Key made before (200)."""
    state = app_state()
    with session_scope(state.sessions) as session:
        if (existing := service.find_batch(session, key, digest)) is not None:
            return _batch_response(batches.batch_view(session, existing), 200)
        values = notified(lambda s: {"model_id": service.resolve_model(s, body.model_id, principal()),
                                     "options": with_backend(s, body.options.model_dump())},
                          body.webhook_url)(session)
        held = {item.upload_id: usable_upload(session, item.upload_id) for item in body.items if item.upload_id}
        if len(held) != sum(item.upload_id is not None for item in body.items):
            raise Problem(422, "upload-repeated", "Upload repeated", "each upload can be used by one item only")
        job_values = {"model_id": values["model_id"], "options": values["options"], **common}
        items = [service.BatchItem(new_params(PredictParams, **job_values,
                                              item=item.name or item.video_url or f"upload {item.upload_id}",
                                              **({"label": item.label} if item.label else {})),
                                   video_url=item.video_url, upload=held.get(item.upload_id))
                 for item in body.items]
        batch = service.create_batch(session, state.storage, principal().owner, body.name, values, items, key,
                                     digest)
        view = batches.batch_view(session, batch)
    state.publisher.publish(JobKind.PREDICT, batch.id)  # wakes the dispatcher (jobs.dispatch)
    JOBS_SUBMITTED.labels(kind=JobKind.PREDICT.value).inc(len(body.items))
    return _batch_response(view, 202)


def _batch_response(view: dict[str, Any], status: int) -> Response:
    response = jsonify(view)
    response.status_code = status
    response.headers["Location"] = f"/batches/{view['id']}"
    return response


@bp.post("/batches/<batch_id>/cancel")
def cancel_batch(batch_id: str) -> Response:
    """Cancel every job of the batch that has not ended (``jobs.service.cancel_batch``)."""
    state = app_state()
    with session_scope(state.sessions) as session:
        batch, stopped = service.cancel_batch(session, batch_id, principal())
        view = batches.batch_view(session, batch)
    for job_id in stopped:
        state.celery.control.revoke(job_id, terminate=False)
    state.publisher.publish(JobKind.PREDICT, batch_id)  # their places are free for the next jobs in turn
    return jsonify(view)


@bp.get("/batches")
def index_batches() -> Response:
    state = app_state()
    with session_scope(state.sessions) as session:
        rows = session.scalars(visible(select(Batch), Batch, principal()).order_by(Batch.created_at.desc())
                               .limit(100)).all()
        return jsonify({"items": [{"id": b.id, "name": b.name, "total": b.total, "owner": b.owner,
                                   "status": "finished" if b.finished_at else "running",
                                   "created_at": rfc3339(b.created_at), "finished_at": rfc3339(b.finished_at)}
                                  for b in rows]})


@bp.get("/batches/<batch_id>")
def show_batch(batch_id: str) -> Response:
    """The batch: counts by status, each job's verdict, with labels the detection report, and the deliveries
    of its webhook."""
    state = app_state()
    with session_scope(state.sessions) as session:
        batch = service.get(session, Batch, batch_id, "batch", principal())
        view = batches.batch_view(session, batch)
        hook = webhook_of(batch.params)
        if hook:
            view["webhook"] = {"url": hook["url"], "deliveries": [
                webhooks.delivery_view(d) for d in webhooks.deliveries_of(session, batch_id=batch_id)]}
        return jsonify(view)
