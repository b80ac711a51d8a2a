"""HTTP views: parse and validate, call ``jobs`` (service, batches, uploads, reuse, erasure, webhooks), shape the
response; errors become problems in ``api.problems``. Nothing heavy here (no ML stack: the import contract test).
Batch creation and cancellation still build their rows here; they belong in ``jobs`` (issue 37)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, send_file
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.access import authenticate_request, limit_request, principal, require_train
from api.bodies import parse_json, read_json_body
from api.problems import Problem
from api.schemas import (
    BatchRequest,
    PredictOptions,
    PredictRequest,
    PreprocessOptions,
    PreprocessRequest,
    ReferencePredictRequest,
    TrainRequest,
    UploadRequest,
    openapi_document,
)
from jobs import batches, erasure, reuse, service, uploads, webhooks
from jobs.db import session_scope
from jobs.detectors import UnknownBackend, list_detectors, resolve_backend
from jobs.metrics import CONTENT_TYPE, JOBS_SUBMITTED, exposition
from jobs.auth import visible
from jobs.models import Batch, Dataset, Job, Model, rfc3339
from jobs.moves import move_job
from jobs.states import JobKind, JobStatus
from jobs.storage import LocalStorage, check_key
from jobs.urls import UnsafeURL, check_url

bp = Blueprint("api", __name__)
bp.before_request(authenticate_request)
bp.before_request(limit_request)
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
MAX_OFFSET = 1_000_000_000  # beyond any real listing, and inside every database's integer range


def app_state() -> Any:
    """The extensions built by the app factory (settings, sessions, storage, Celery)."""
    return current_app.extensions["ftcn"]


def _json_payload() -> dict[str, Any]:
    if not request.is_json:
        raise Problem(415, "unsupported-media-type", "Unsupported media type",
                      "send JSON (application/json) or a multipart upload")
    payload = read_json_body(request, app_state().settings.max_json_kb * 1024)
    if not isinstance(payload, dict):
        raise Problem(400, "malformed-json", "Malformed JSON", "the request body must be a JSON object")
    return payload


def _json_body(schema: type[BaseModel]) -> BaseModel:
    return schema.model_validate(_json_payload())


def _form_options(schema: type[BaseModel]) -> BaseModel:
    raw = request.form.get("options")
    options = parse_json(raw, "the options field") if raw else {}
    if not isinstance(options, dict):
        raise Problem(400, "malformed-json", "Malformed JSON", "the options field must be a JSON object")
    return schema.model_validate(options)


def _upload(field: str, allowed: tuple[str, ...] | set[str],
            refuse_still_images: bool = False) -> tuple[Any, str, str]:
    """The uploaded file, its safe lower-case name and its SHA-256 (part of the idempotency fingerprint)."""
    upload = request.files.get(field)
    if upload is None or not upload.filename:
        raise Problem(400, "missing-upload", "Missing upload", f"send the file in the multipart field {field!r}")
    name = PurePosixPath(upload.filename.replace("\\", "/")).name.lower()
    if not any(name.endswith(s) for s in allowed):
        raise Problem(415, "unsupported-file", "Unsupported file type",
                      f"{field} must end with one of {', '.join(sorted(allowed))}")
    stream = upload.stream  # an api.bodies.DigestingFile: digest and size were computed while it was written
    if not stream.size:
        raise Problem(400, "empty-upload", "Empty upload", f"the uploaded {field} is empty")
    stream.seek(0)
    head = stream.read(uploads.SNIFF_BYTES)
    stream.seek(0)
    if refuse_still_images and (kind := uploads.still_image_kind(head)):
        raise Problem(422, "not-a-video", "Not a video",
                      f"the upload is a still image ({kind}), not a video: FTCN judges how a face moves over "
                      "time, and nothing moves in a photo")
    return upload, name, stream.sha256.hexdigest()


def _accept(kind: JobKind, params: dict[str, Any] | Callable[[Session], dict[str, Any]],
            upload: tuple[Any, str] | None = None, upload_id: str | None = None,
            webhook_url: str | None = None) -> Response:
    """Create (or find) the job and answer 202 + Location (200 for a job found by its Idempotency-Key)."""
    view, created = _submit(kind, params, upload, upload_id, webhook_url)
    return _accepted(view, 202 if created else 200)


def _notified(params: dict[str, Any] | Callable[[Session], dict[str, Any]],
              webhook_url: str | None) -> Callable[[Session], dict[str, Any]]:
    """``params`` as a function of the session, with the job's webhook (checked URL, whose secret signs it)."""
    def values(session: Session) -> dict[str, Any]:
        plain = params(session) if callable(params) else params
        if webhook_url is None:
            return plain
        try:
            hook = webhooks.webhook_params(session, webhook_url, principal().token_id, app_state().settings)
        except webhooks.WebhookRefused as exc:
            raise Problem(409, "no-webhook-secret", "No webhook secret", str(exc)) from None
        return {**plain, "webhook": hook}

    return values


def _submit(kind: JobKind, params: dict[str, Any] | Callable[[Session], dict[str, Any]],
            upload: tuple[Any, str] | None = None, upload_id: str | None = None,
            webhook_url: str | None = None) -> tuple[dict[str, Any], bool]:
    """Create (or find, by Idempotency-Key) the job with its uploaded input (``jobs.service``), enqueue it; return
    its view and whether it is new. ``params`` may be a function of the session (validated in the same
    transaction that creates the job). ``upload_id``: a direct upload, checked and moved under the job.
    ``webhook_url``: called when the job ends (``jobs.webhooks``)."""
    state = app_state()
    params = _notified(params, webhook_url)
    try:
        key = service.scoped_key(request.headers.get("Idempotency-Key"), principal())
    except ValueError as exc:
        raise Problem(400, "bad-idempotency-key", "Bad Idempotency-Key", str(exc)) from None
    for attempt in (1, 2):
        try:
            with session_scope(state.sessions) as session:
                values = params(session) if callable(params) else params
                existing = service.find_idempotent(session, key, kind.value, values)
                if existing is not None:
                    return service.job_view(existing, state.storage, state.settings.link_ttl_s), False
                if (answered := _answered_now(session, kind, values, key)) is not None:
                    view = service.job_view(answered, state.storage, state.settings.link_ttl_s)
                    JOBS_SUBMITTED.labels(kind=kind.value).inc()
                    return view, True
                if upload_id is not None:
                    job = service.create_job_from_upload(session, state.storage, kind, values,
                                                         _usable_upload(session, upload_id), key,
                                                         owner=principal().owner)
                elif upload is None:
                    job = service.create_job(session, kind, values, key, owner=principal().owner)
                else:
                    file, stored_name = upload
                    file.stream.seek(0)
                    job = service.create_job_with_input(
                        session, state.storage, kind, values, file.stream, stored_name,
                        file.mimetype or "application/octet-stream", key, owner=principal().owner)
                view = service.job_view(job, state.storage, state.settings.link_ttl_s)
            break
        except IntegrityError:
            # A concurrent request with the same Idempotency-Key inserted first: the second pass finds its job.
            if key is None or attempt == 2:
                raise
    state.publisher.publish(kind, view["id"])
    JOBS_SUBMITTED.labels(kind=kind.value).inc()
    return view, True


def _answered_now(session: Session, kind: JobKind, values: dict[str, Any], key: str | None) -> Any:
    """A predict job whose upload was digested on arrival, answered from a finished job with the same content,
    model weights and options (``jobs.reuse``): created succeeded, its input not stored. None: it must run."""
    if kind is not JobKind.PREDICT or "sha256" not in values or not reuse.wanted(values):
        return None
    settings = app_state().settings
    reuse_key = reuse.key_for(session, values, values["sha256"])
    source = reuse.find_source(session, reuse_key, principal().owner, settings)
    if source is None:
        return None
    job = service.create_job(session, kind, values, key, owner=principal().owner)
    return reuse.answer_from(session, job.id, source, reuse_key)


def _refused_as_problem(check: Callable[[], Any]) -> Any:
    try:
        return check()
    except uploads.UploadRefused as refused:
        raise Problem(refused.status, refused.slug, "Upload refused", str(refused)) from None


def _usable_upload(session: Session, upload_id: str) -> Any:
    state = app_state()
    return _refused_as_problem(lambda: uploads.usable_upload(session, state.storage, upload_id, principal(),
                                                             state.settings))


def _accepted(view: dict[str, Any], status: int) -> Response:
    response = jsonify(view)
    response.status_code = status
    response.headers["Location"] = f"/jobs/{view['id']}"
    return response


@bp.post("/predict")
def reference_predict() -> Response:
    """The FTCN reference server's API: ``{"file_path": URL}`` in, a verdict out, synchronously. Submits a predict
    job for the caller and waits up to ``FTCN_PREDICT_WAIT_S`` for it; past that, 202 with the job's Location."""
    state = app_state()
    body = ReferencePredictRequest.model_validate(_json_payload())
    check_url(body.file_path, state.settings.url_allowlist)
    options = PredictOptions(max_frames=body.max_frames)
    view, _ = _submit(JobKind.PREDICT, lambda session: {
        "model_id": service.resolve_model(session, None, principal()),
        "options": _with_backend(session, options.model_dump()), "video_url": body.file_path})
    deadline = time.monotonic() + state.settings.predict_wait_s
    while not JobStatus(view["status"]).finished and time.monotonic() < deadline:
        time.sleep(0.25)
        with session_scope(state.sessions) as session:
            view = service.job_view(service.get(session, Job, view["id"], "job", principal()), state.storage,
                                    state.settings.link_ttl_s)
    if not JobStatus(view["status"]).finished:
        return _accepted(view, 202)
    if view["status"] != JobStatus.SUCCEEDED.value:
        error = view["error"] or {"code": "canceled", "message": "the job was canceled"}
        raise Problem(422, "prediction-failed", "Prediction failed", error["message"], job_id=view["id"],
                      code=error["code"])
    result = view["result"]
    return jsonify({"df_probability": result["score"], "prediction": result["verdict"],
                    "start_time": view["started_at"], "end_time": view["finished_at"], "job_id": view["id"],
                    "coverage": (result.get("coverage") or {}).get("share"), "threshold": result["threshold"]})


@bp.post("/jobs/predict")
def submit_predict() -> Response:
    if request.files:
        options = _form_options(PredictOptions)
        upload, name, digest = _upload("video", VIDEO_SUFFIXES, refuse_still_images=True)
        model_id = request.form.get("model_id") or None
        webhook_url = request.form.get("webhook_url") or None
        extra: dict[str, Any] = {"filename": name, "sha256": digest, **_reuse_param(request.form.get("reuse"))}
        stored, upload_id = (upload, f"video{PurePosixPath(name).suffix}"), None
    else:
        body = _json_body(PredictRequest)
        options, model_id, stored, upload_id = body.options, body.model_id, None, body.upload_id
        webhook_url = body.webhook_url
        if upload_id is not None:
            extra = {"upload_id": body.upload_id}
        else:
            check_url(body.video_url, app_state().settings.url_allowlist)  # early answer; the worker checks again
            extra = {"video_url": body.video_url}
        extra.update(_reuse_param("false" if not body.reuse else None))

    def params(session: Session) -> dict[str, Any]:
        if upload_id is not None:  # someone else's upload is refused before anything else is looked at
            _refused_as_problem(lambda: uploads.owned_upload(session, upload_id, principal()))
        return {"model_id": service.resolve_model(session, model_id, principal()),
                "options": _with_backend(session, options.model_dump()), **extra}

    return _accept(JobKind.PREDICT, params, stored, upload_id, webhook_url)


def _reuse_param(given: str | None) -> dict[str, Any]:
    """``{"reuse": False}`` when the client asked for a fresh run (jobs.reuse); nothing otherwise."""
    if given is None or given.lower() in ("", "true", "1"):
        return {}
    if given.lower() in ("false", "0"):
        return {"reuse": False}
    raise Problem(400, "bad-field", "Bad field", "reuse must be true or false")


@bp.post("/uploads")
def create_upload() -> Response:
    """A signed PUT target for one big video, so its bytes never pass through the API's request body."""
    body = _json_body(UploadRequest)
    name = PurePosixPath(body.filename.replace("\\", "/")).name.lower()
    if not any(name.endswith(s) for s in VIDEO_SUFFIXES):
        raise Problem(415, "unsupported-file", "Unsupported file type",
                      f"filename must end with one of {', '.join(sorted(VIDEO_SUFFIXES))}")
    state = app_state()
    with session_scope(state.sessions) as session:
        target = uploads.create_upload(session, state.storage, principal(), name)
    response = jsonify(target)
    response.status_code = 201
    return response


def _local_signed(key: str, elsewhere: str, missing: str) -> tuple[LocalStorage, int, str]:
    """The local storage behind a signed-link endpoint and the link's (expires, signature); 404 with S3 (which
    serves its own links) and for a key or expiry that cannot be one of ours."""
    storage = app_state().storage
    if not isinstance(storage, LocalStorage):
        raise Problem(404, "not-found", "Not found", elsewhere)
    try:
        expires = int(request.args.get("expires", "0"))
        check_key(key)
    except (ValueError, RuntimeError):
        raise Problem(404, "not-found", "Not found", missing) from None
    return storage, expires, request.args.get("signature", "")


@bp.put("/uploads/<path:key>")
def receive_upload(key: str) -> Response:
    """The embedded mode's PUT target (S3 takes the PUT itself): the signature is the credential; the body is
    streamed to storage, refused past the upload limit."""
    storage, expires, signature = _local_signed(key, "uploads go to the object store's presigned URL",
                                                "no such upload")
    if not key.startswith("uploads/") or not storage.verify_upload(key, expires, signature):
        raise Problem(403, "bad-signature", "Upload link invalid or expired", "ask POST /uploads for a new one")
    limit = app_state().settings.max_upload_mb * 1024 * 1024
    if request.content_length is None or request.content_length > limit:
        raise Problem(413 if request.content_length else 411, "too-large" if request.content_length else
                      "length-required", "Upload refused", f"send Content-Length, at most {limit} bytes")
    storage.put_stream(key, request.stream, "application/octet-stream")
    return Response(status=204)


def _with_backend(session: Session, options: dict[str, Any]) -> dict[str, Any]:
    """The options with the face backend (and detector weights) decided now, so every worker runs the same."""
    try:
        return {**options, **resolve_backend(session, options.get("backend"), options.get("detector_id"))}
    except UnknownBackend as exc:
        raise Problem(422, "unknown-backend", "Unknown face backend", str(exc)) from None


@bp.post("/jobs/preprocess")
def submit_preprocess() -> Response:
    require_train()
    if request.files:
        options = _form_options(PreprocessOptions)
        upload, name, digest = _upload("archive", ARCHIVE_SUFFIXES)
        stored_name = "dataset.zip" if name.endswith(".zip") else "dataset.tar"
        return _accept(JobKind.PREPROCESS, lambda session: {
            "options": _with_backend(session, options.model_dump()), "filename": name, "sha256": digest},
            (upload, stored_name), webhook_url=request.form.get("webhook_url") or None)
    body = _json_body(PreprocessRequest)
    return _accept(JobKind.PREPROCESS, lambda session: {"options": _with_backend(session, body.options.model_dump()),
                                                        "s3_prefix": body.s3_prefix}, webhook_url=body.webhook_url)


@bp.post("/jobs/train")
def submit_train() -> Response:
    require_train()
    state = app_state()
    body = _json_body(TrainRequest)
    with session_scope(state.sessions) as session:
        dataset = service.get(session, Dataset, body.dataset_id, "dataset", principal())
        kind = (dataset.counts or {}).get("kind")
        if body.init_model_id:
            service.get(session, Model, body.init_model_id, "model", principal())
    if body.dataset and kind != body.dataset:
        found = f"was preprocessed from {kind}" if kind else "was not preprocessed as a standard dataset"
        raise Problem(422, "wrong-dataset", "Wrong dataset", f"dataset {body.dataset_id} {found}, not {body.dataset}")
    params = body.model_dump(exclude={"webhook_url"})
    if body.recipe:  # the worker applies the recipe to the fields the request did not set
        params["given"] = sorted(body.model_fields_set - {"recipe", "webhook_url"})
    return _accept(JobKind.TRAIN, params, webhook_url=body.webhook_url)


@bp.get("/jobs/<job_id>")
def show_job(job_id: str) -> Response:
    """The job, and for one submitted with a webhook, every delivery of its events with each attempt."""
    state = app_state()
    with session_scope(state.sessions) as session:
        job = service.get(session, Job, job_id, "job", principal())
        view = service.job_view(job, state.storage, state.settings.link_ttl_s)
        hook = (job.params or {}).get("webhook")
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


@bp.post("/batches")
def submit_batch() -> Response:
    """Many predict jobs in one request, all or none: every item is checked (URL rules, the caller's usable
    uploads, the model) before anything is created. Each item becomes a predict job; the batch reports on them."""
    state = app_state()
    body = _json_body(BatchRequest)
    if len(body.items) > state.settings.max_batch_jobs:
        raise Problem(413, "too-many-items", "Too many items",
                      f"a batch holds at most {state.settings.max_batch_jobs} videos; send several batches")
    for index, item in enumerate(body.items):
        if item.video_url is not None:
            try:
                check_url(item.video_url, state.settings.url_allowlist)
            except UnsafeURL as exc:
                raise Problem(422, "unsafe-url", "Unsafe URL", f"item {index}: {exc}") from None
    common = {**_reuse_param(None if body.reuse else "false")}
    try:
        key = service.scoped_key(request.headers.get("Idempotency-Key"), principal())
    except ValueError as exc:
        raise Problem(400, "bad-idempotency-key", "Bad Idempotency-Key", str(exc)) from None
    digest = service.fingerprint("batch", body.model_dump())
    try:
        return _create_batch(body, common, key, digest)
    except IntegrityError:  # a concurrent request with the same Idempotency-Key made it first
        if key is None:
            raise
        return _create_batch(body, common, key, digest)


def _create_batch(body: BatchRequest, common: dict[str, Any], key: str | None, digest: str) -> Response:
    """The batch and its jobs in one transaction (202), or the batch this Idempotency-Key made before (200)."""
    state = app_state()
    with session_scope(state.sessions) as session:
        existing = session.scalar(select(Batch).where(Batch.idempotency_key == key)) if key else None
        if existing is not None:
            if existing.request_hash != digest:
                raise Problem(409, "conflict", "Conflict", "this Idempotency-Key was already used with a different "
                                                           "request")
            response = jsonify(batches.batch_view(session, existing))
            response.headers["Location"] = f"/batches/{existing.id}"
            return response
        values = _notified(lambda s: {"model_id": service.resolve_model(s, body.model_id, principal()),
                                      "options": _with_backend(s, body.options.model_dump())},
                           body.webhook_url)(session)
        held = {item.upload_id: _usable_upload(session, item.upload_id) for item in body.items if item.upload_id}
        if len(held) != sum(item.upload_id is not None for item in body.items):
            raise Problem(422, "upload-repeated", "Upload repeated", "each upload can be used by one item only")
        batch = Batch(owner=principal().owner, name=body.name, total=len(body.items), params=values,
                      idempotency_key=key, request_hash=digest)
        session.add(batch)
        session.flush()
        job_values = {"model_id": values["model_id"], "options": values["options"], **common}
        for item in body.items:
            described = {**job_values, "item": item.name or item.video_url or f"upload {item.upload_id}",
                         **({"label": item.label} if item.label else {})}
            if item.upload_id is not None:
                service.create_job_from_upload(session, state.storage, JobKind.PREDICT, described,
                                               held[item.upload_id], owner=principal().owner, batch_id=batch.id)
            else:
                service.create_job(session, JobKind.PREDICT, {**described, "video_url": item.video_url},
                                   owner=principal().owner, batch_id=batch.id)
        view = batches.batch_view(session, batch)
    state.publisher.publish(JobKind.PREDICT, batch.id)  # wakes the dispatcher (jobs.dispatch)
    JOBS_SUBMITTED.labels(kind=JobKind.PREDICT.value).inc(len(body.items))
    response = jsonify(view)
    response.status_code = 202
    response.headers["Location"] = f"/batches/{batch.id}"
    return response


@bp.post("/batches/<batch_id>/cancel")
def cancel_batch(batch_id: str) -> Response:
    """Cancel every job of the batch that has not ended (the finished ones keep their results); the batch ends
    when its last job does, as always."""
    state = app_state()
    with session_scope(state.sessions) as session:
        batch = service.get(session, Batch, batch_id, "batch", principal())
        stopped = [job for job in batches.batch_jobs(session, batch.id) if not JobStatus(job.status).finished]
        for job in stopped:
            move_job(session, job, JobStatus.CANCELED)
        session.flush()
        view = batches.batch_view(session, batch)
    for job in stopped:
        state.celery.control.revoke(job.id, terminate=False)
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
        hook = (batch.params or {}).get("webhook")
        if hook:
            view["webhook"] = {"url": hook["url"], "deliveries": [
                webhooks.delivery_view(d) for d in webhooks.deliveries_of(session, batch_id=batch_id)]}
        return jsonify(view)


@bp.get("/models")
def index_models() -> Response:
    state = app_state()
    with session_scope(state.sessions) as session:
        return jsonify({"items": [service.model_view(m) for m in service.list_rows(session, Model, principal())]})


@bp.get("/detectors")
def index_detectors() -> Response:
    """Face backends this service can run: dlib always, RetinaFace once its weights are registered."""
    with session_scope(app_state().sessions) as session:
        return jsonify({"items": list_detectors(session)})


@bp.get("/datasets")
def index_datasets() -> Response:
    state = app_state()
    with session_scope(state.sessions) as session:
        return jsonify({"items": [service.dataset_view(d) for d in service.list_rows(session, Dataset, principal())]})


@bp.get("/me")
def whoami() -> Response:
    """The caller as the API sees it (clients and the web page check a token with this)."""
    who = principal()
    return jsonify({"owner": who.owner, "admin": who.admin, "train": who.can_train, "auth": app_state().settings.auth,
                    "max_upload_mb": app_state().settings.max_upload_mb,
                    "direct_upload_mb": app_state().settings.direct_upload_mb})


@bp.post("/me/webhook-secret")
def new_webhook_secret() -> Response:
    """A new secret for this token's webhooks, shown this once (the old one stops signing at once)."""
    who = principal()
    if who.token_id is None:
        raise Problem(409, "no-token", "No token", "with FTCN_AUTH=open, webhooks are signed with "
                                                   "FTCN_WEBHOOK_SECRET, set by the operator")
    with session_scope(app_state().sessions) as session:
        secret = webhooks.rotate_secret(session, who.token_id)
    response = jsonify({"webhook_secret": secret})
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics, for admin tokens (Prometheus scrapes with a bearer token): this API's processes, and
    the service-wide figures read now (jobs by kind and status, queue depths)."""
    if not principal().admin:
        raise Problem(403, "forbidden", "Admins only", "metrics are served to admin tokens")
    return Response(exposition(app_state().service_collector()), mimetype="text/plain",
                    headers={"Content-Type": CONTENT_TYPE})


@bp.get("/files/<path:key>")
def download(key: str) -> Response:
    """Local-storage artifacts, only through a valid, unexpired signed link."""
    storage, expires, signature = _local_signed(key, "artifacts are served by the object store", "no such file")
    if not storage.verify(key, expires, signature) or not storage.exists(key):
        raise Problem(403, "bad-signature", "Link invalid or expired", "ask the job again for fresh links")
    return send_file(storage.root / key, conditional=True)


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())


@bp.get("/healthcheck")
@bp.get("/readyz")
def healthcheck() -> Response:
    deep = request.path == "/readyz" or request.args.get("deep") in ("1", "true")
    if not deep:
        return jsonify({"status": "ok", "healthy": True})  # "healthy": the reference server's answer
    checks = app_state().readiness()
    # ?workers=optional: the API pod's own readiness (its database, Redis and storage), for an orchestrator that
    # scales workers from zero on queue length: an API waiting for workers would never queue the first job
    optional = {"workers"} if request.args.get("workers") == "optional" else set()
    healthy = all(c["ok"] for name, c in checks.items() if name not in optional)
    response = jsonify({"status": "ok" if healthy else "degraded", "healthy": healthy, "checks": checks})
    response.status_code = 200 if healthy else 503
    return response
