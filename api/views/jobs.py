"""Views of jobs: submit predict, preprocess and train jobs (and the reference server's ``POST /predict``), show,
list, cancel and erase them."""

from __future__ import annotations

import time
from pathlib import PurePosixPath
from typing import Any

from flask import Response, jsonify, request
from sqlalchemy.orm import Session

from api.access import needs_train, principal, submits
from api.problems import Problem
from api.schemas import PredictRequest, PreprocessRequest, ReferencePredictRequest, TrainRequest
from api.views.common import (
    ARCHIVE_SUFFIXES, MAX_OFFSET, VIDEO_SUFFIXES, accept, accepted, form_options, json_body, json_payload,
    reuse_param, submit, uploaded_file, with_backend, app_state, bp,
)
from jobs import erasure, service, uploads, webhooks
from jobs.db import session_scope
from jobs.models import Dataset, Job, Model
from jobs.params import (
    PredictChoices, PredictParams, PreprocessChoices, PreprocessParams, TrainParams, new_params, webhook_of,
)
from jobs.states import JobKind, JobStatus
from jobs.urls import check_url


@bp.post("/predict")
def reference_predict() -> Response:
    """The FTCN reference server's API: ``{"file_path": URL}`` in, a verdict out, synchronously. Submits a predict
    job for the caller and waits up to ``FTCN_PREDICT_WAIT_S`` for it; past that, 202 with the job's Location."""
    state = app_state()
    body = ReferencePredictRequest.model_validate(json_payload())
    check_url(body.file_path, state.settings.url_allowlist)
    options = PredictChoices(max_frames=body.max_frames)
    view, _ = submit(JobKind.PREDICT, lambda session: new_params(
        PredictParams, model_id=service.resolve_model(session, None, principal()),
        options=with_backend(session, options.model_dump()), video_url=body.file_path))
    deadline = time.monotonic() + state.settings.predict_wait_s
    while not JobStatus(view["status"]).finished and time.monotonic() < deadline:
        time.sleep(0.25)
        with session_scope(state.sessions) as session:
            view = service.job_view(service.get(session, Job, view["id"], "job", principal()), state.storage,
                                    state.settings.link_ttl_s)
    if not JobStatus(view["status"]).finished:
        return accepted(view, 202)
    if view["status"] != JobStatus.SUCCEEDED.value:
        error = view["error"] or {"code": "canceled", "message": "the job was canceled"}
        raise Problem(422, "prediction-failed", "Prediction failed", error["message"], job_id=view["id"],
                      code=error["code"])
    result = view["result"]
    return jsonify({"df_probability": result["score"], "prediction": result["verdict"],
                    "start_time": view["started_at"], "end_time": view["finished_at"], "job_id": view["id"],
                    "coverage": (result.get("coverage") or {}).get("share"), "threshold": result["threshold"]})


@bp.post("/jobs/predict")
@submits
def submit_predict() -> Response:
    if request.files:
        options = form_options(PredictChoices)
        upload, name, digest = uploaded_file("video", VIDEO_SUFFIXES, refuse_still_images=True)
        model_id = request.form.get("model_id") or None
        webhook_url = request.form.get("webhook_url") or None
        extra: dict[str, Any] = {"filename": name, "sha256": digest, **reuse_param(request.form.get("reuse"))}
        stored, upload_id = (upload, f"video{PurePosixPath(name).suffix}"), None
    else:
        body = json_body(PredictRequest)
        options, model_id, stored, upload_id = body.options, body.model_id, None, body.upload_id
        webhook_url = body.webhook_url
        if upload_id is not None:
            extra = {"upload_id": body.upload_id}
        else:
            check_url(body.video_url, app_state().settings.url_allowlist)  # early answer; the worker checks again
            extra = {"video_url": body.video_url}
        extra.update(reuse_param("false" if not body.reuse else None))

    def params(session: Session) -> dict[str, Any]:
        if upload_id is not None:  # someone else's upload is refused before anything else is looked at
            uploads.owned_upload(session, upload_id, principal())
        return new_params(PredictParams, model_id=service.resolve_model(session, model_id, principal()),
                          options=with_backend(session, options.model_dump()), **extra)

    return accept(JobKind.PREDICT, params, stored, upload_id, webhook_url)


@bp.post("/jobs/preprocess")
@submits
@needs_train
def submit_preprocess() -> Response:
    if request.files:
        options = form_options(PreprocessChoices)
        upload, name, digest = uploaded_file("archive", ARCHIVE_SUFFIXES)
        stored_name = "dataset.zip" if name.endswith(".zip") else "dataset.tar"
        return accept(JobKind.PREPROCESS, lambda session: new_params(
            PreprocessParams, options=with_backend(session, options.model_dump()), filename=name, sha256=digest),
            (upload, stored_name), webhook_url=request.form.get("webhook_url") or None)
    body = json_body(PreprocessRequest)
    return accept(JobKind.PREPROCESS, lambda session: new_params(
        PreprocessParams, options=with_backend(session, body.options.model_dump()), s3_prefix=body.s3_prefix),
        webhook_url=body.webhook_url)


@bp.post("/jobs/train")
@submits
@needs_train
def submit_train() -> Response:
    state = app_state()
    body = json_body(TrainRequest)
    with session_scope(state.sessions) as session:
        dataset = service.get(session, Dataset, body.dataset_id, "dataset", principal())
        kind = (dataset.counts or {}).get("kind")
        if body.init_model_id:
            service.get(session, Model, body.init_model_id, "model", principal())
    if body.dataset and kind != body.dataset:
        found = f"was preprocessed from {kind}" if kind else "was not preprocessed as a standard dataset"
        raise Problem(422, "wrong-dataset", "Wrong dataset", f"dataset {body.dataset_id} {found}, not {body.dataset}")
    given = {"given": sorted(body.model_fields_set - {"recipe", "webhook_url"})} if body.recipe else {}
    # the worker applies the recipe to the fields the request did not set
    return accept(JobKind.TRAIN, new_params(TrainParams, **body.model_dump(exclude={"webhook_url"}), **given),
                  webhook_url=body.webhook_url)


@bp.get("/jobs/<job_id>")
def show_job(job_id: str) -> Response:
    """The job, and for one submitted with a webhook, every delivery of its events with each attempt."""
    state = app_state()
    with session_scope(state.sessions) as session:
        job = service.get(session, Job, job_id, "job", principal())
        view = service.job_view(job, state.storage, state.settings.link_ttl_s)
        hook = webhook_of(job.params)
        if hook:
            view["webhook"] = {"url": hook["url"], "deliveries": [
                webhooks.delivery_view(d) for d in webhooks.deliveries_of(session, job_id)]}
        return jsonify(view)


@bp.get("/jobs")
def index_jobs() -> Response:
    state = app_state()
    try:
        limit = min(max(int(request.args.get("limit", 20)), 1), 100)
        offset = max(int(request.args.get("offset", 0)), 0)
        if offset > MAX_OFFSET:
            raise ValueError("offset out of range")
        with session_scope(state.sessions) as session:
            items, total = service.list_jobs(session, principal(), request.args.get("kind"),
                                             request.args.get("status"), limit, offset)
            views = [service.job_view(j, state.storage, state.settings.link_ttl_s) for j in items]
    except ValueError:
        raise Problem(400, "bad-query", "Bad query", "kind, status, limit or offset has an invalid value") from None
    return jsonify({"items": views, "total": total, "limit": limit, "offset": offset})


@bp.get("/jobs/<job_id>/result")
def job_result(job_id: str) -> Response:
    """A finished predict job's full result document (result.json), through the API: same origin as the web
    page and checked against the caller's token, wherever the artifacts are stored."""
    state = app_state()
    with session_scope(state.sessions) as session:
        job = service.get(session, Job, job_id, "job", principal())
        key = ((job.result or {}).get("artifacts") or {}).get("result")
        if job.status != JobStatus.SUCCEEDED.value or not key:
            raise Problem(409, "no-result", "No result", f"job {job_id} is {job.status}; it has no result document")
    return Response(state.storage.get_bytes(key), mimetype="application/json")


@bp.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str) -> Response:
    state = app_state()
    with session_scope(state.sessions) as session:
        job = service.cancel(session, job_id, principal())
        view = service.job_view(job, state.storage, state.settings.link_ttl_s)
    state.celery.control.revoke(job_id, terminate=False)
    state.publisher.publish(JobKind(view["kind"]), job_id)  # its place is free for the next job in turn
    return jsonify(view)


@bp.delete("/jobs/<job_id>")
def erase_job(job_id: str) -> Response:
    """Erase a job's input and every artifact (its owner or an admin); the job stays listed, marked erased, with
    its verdict summary. Repeating it is harmless."""
    state = app_state()
    with session_scope(state.sessions) as session:
        job = service.get(session, Job, job_id, "job", principal())
        was_running = not JobStatus(job.status).finished
        erasure.erase_for(session, state.storage, job, principal())
    if was_running:
        state.celery.control.revoke(job_id, terminate=False)
    return Response(status=204)
