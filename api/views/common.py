"""What every view shares: the one blueprint (with authentication and rate limits before every request), the
app's state, body parsing, uploads, and job submission with its Idempotency-Key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.access import authenticate_request, limit_request, principal
from api.bodies import parse_json, read_json_body
from api.problems import Problem
from jobs import reuse, service, uploads, webhooks
from jobs.db import session_scope
from jobs.detectors import resolve_backend
from jobs.metrics import JOBS_SUBMITTED
from jobs.params import PredictParams, read_params
from jobs.states import JobKind
from jobs.storage import LocalStorage, check_key


bp = Blueprint("api", __name__)
T = TypeVar("T")
bp.before_request(authenticate_request)
bp.before_request(limit_request)
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
MAX_OFFSET = 1_000_000_000  # beyond any real listing, and inside every database's integer range


def app_state() -> Any:
    """The extensions built by the app factory (settings, sessions, storage, Celery)."""
    return current_app.extensions["ftcn"]


def json_payload() -> dict[str, Any]:
    if not request.is_json:
        raise Problem(415, "unsupported-media-type", "Unsupported media type",
                      "send JSON (application/json) or a multipart upload")
    payload = read_json_body(request, app_state().settings.max_json_kb * 1024)
    if not isinstance(payload, dict):
        raise Problem(400, "malformed-json", "Malformed JSON", "the request body must be a JSON object")
    return payload


def json_body(schema: type[BaseModel]) -> BaseModel:
    return schema.model_validate(json_payload())


def form_options(schema: type[BaseModel]) -> BaseModel:
    raw = request.form.get("options")
    options = parse_json(raw, "the options field") if raw else {}
    if not isinstance(options, dict):
        raise Problem(400, "malformed-json", "Malformed JSON", "the options field must be a JSON object")
    return schema.model_validate(options)


def uploaded_file(field: str, allowed: tuple[str, ...] | set[str],
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


def accept(kind: JobKind, params: dict[str, Any] | Callable[[Session], dict[str, Any]],
            upload: tuple[Any, str] | None = None, upload_id: str | None = None,
            webhook_url: str | None = None) -> Response:
    """Create (or find) the job and answer 202 + Location (200 for a job found by its Idempotency-Key)."""
    view, created = submit(kind, params, upload, upload_id, webhook_url)
    return accepted(view, 202 if created else 200)


def notified(params: dict[str, Any] | Callable[[Session], dict[str, Any]],
              webhook_url: str | None) -> Callable[[Session], dict[str, Any]]:
    """``params`` as a function of the session, with the job's webhook (checked URL, whose secret signs it)."""
    def values(session: Session) -> dict[str, Any]:
        plain = params(session) if callable(params) else params
        if webhook_url is None:
            return plain
        hook = webhooks.webhook_params(session, webhook_url, principal().token_id, app_state().settings)
        return {**plain, "webhook": hook}

    return values


def submit(kind: JobKind, params: dict[str, Any] | Callable[[Session], dict[str, Any]],
            upload: tuple[Any, str] | None = None, upload_id: str | None = None,
            webhook_url: str | None = None) -> tuple[dict[str, Any], bool]:
    """Create (or find, by Idempotency-Key) the job with its uploaded input (``jobs.service``), enqueue it; return
    its view and whether it is new. ``params`` may be a function of the session (validated in the same
    transaction that creates the job). ``upload_id``: a direct upload, checked and moved under the job.
    ``webhook_url``: called when the job ends (``jobs.webhooks``)."""
    params = notified(params, webhook_url)
    return on_key_race(lambda key: _create_or_find(kind, params, key, upload, upload_id))


def _create_or_find(kind: JobKind, params: Callable[[Session], dict[str, Any]], key: str | None,
                    upload: tuple[Any, str] | None, upload_id: str | None) -> tuple[dict[str, Any], bool]:
    state = app_state()
    with session_scope(state.sessions) as session:
        values = params(session)
        existing = service.find_idempotent(session, key, kind.value, values)
        if existing is not None:
            return service.job_view(existing, state.storage, state.settings.link_ttl_s), False
        if (answered := _answered_now(session, kind, values, key)) is not None:
            view = service.job_view(answered, state.storage, state.settings.link_ttl_s)
            JOBS_SUBMITTED.labels(kind=kind.value).inc()
            return view, True
        if upload_id is not None:
            job = service.create_job_from_upload(session, state.storage, kind, values,
                                                 usable_upload(session, upload_id), key,
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
    state.publisher.publish(kind, view["id"])
    JOBS_SUBMITTED.labels(kind=kind.value).inc()
    return view, True


def on_key_race(create: Callable[[str | None], T]) -> T:
    """``create(key)`` with the request's (owner-scoped) Idempotency-Key, run again once when a concurrent request
    with the same key inserted first: the second run finds what that request made."""
    key = service.scoped_key(request.headers.get("Idempotency-Key"), principal())
    try:
        return create(key)
    except IntegrityError:
        if key is None:
            raise
        return create(key)


def _answered_now(session: Session, kind: JobKind, values: dict[str, Any], key: str | None) -> Any:
    """A predict job whose upload was digested on arrival, answered from a finished job with the same content,
    model weights and options (``jobs.reuse``): created succeeded, its input not stored. None: it must run."""
    if kind is not JobKind.PREDICT:
        return None
    params = read_params(PredictParams, values)
    if params.sha256 is None or not reuse.wanted(params):
        return None
    settings = app_state().settings
    reuse_key = reuse.key_for(session, params, params.sha256)
    source = reuse.find_source(session, reuse_key, principal().owner, settings)
    if source is None:
        return None
    job = service.create_job(session, kind, values, key, owner=principal().owner)
    return reuse.answer_from(session, job.id, source, reuse_key)


def usable_upload(session: Session, upload_id: str) -> Any:
    state = app_state()
    return uploads.usable_upload(session, state.storage, upload_id, principal(), state.settings)


def accepted(view: dict[str, Any], status: int) -> Response:
    response = jsonify(view)
    response.status_code = status
    response.headers["Location"] = f"/jobs/{view['id']}"
    return response


def reuse_param(given: str | None) -> dict[str, Any]:
    """``{"reuse": False}`` when the client asked for a fresh run (jobs.reuse); nothing otherwise."""
    if given is None or given.lower() in ("", "true", "1"):
        return {}
    if given.lower() in ("false", "0"):
        return {"reuse": False}
    raise Problem(400, "bad-field", "Bad field", "reuse must be true or false")


def local_signed(key: str, elsewhere: str, missing: str) -> tuple[LocalStorage, int, str]:
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


def with_backend(session: Session, options: dict[str, Any]) -> dict[str, Any]:
    """The options with the face backend (and detector weights) decided now, so every worker runs the same."""
    return {**options, **resolve_backend(session, options.get("backend"), options.get("detector_id"))}
