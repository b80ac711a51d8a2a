"""Errors as ``application/problem+json`` (RFC 9457), mapped in one place from the exceptions raised below.

Views raise :class:`Problem` only for what they decide themselves about a request's form (a malformed body, a bad
query); every refusal that a rule of ``jobs`` makes arrives here as that rule's own exception and is answered
from :data:`REFUSALS`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, json
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from jobs.db import is_unavailable
from jobs.detectors import UnknownBackend
from jobs.service import BadIdempotencyKey, Conflict, NotFound
from jobs.storage import StorageError
from jobs.uploads import UploadRefused
from jobs.urls import UnsafeURL
from jobs.webhooks import WebhookRefused

PROBLEM_BASE = "https://ftcn.dev/problems/"


#: Seconds a client should wait before retrying when a backing service is down.
RETRY_UNAVAILABLE_S = 5


class Problem(Exception):
    def __init__(self, status: int, slug: str, title: str, detail: str, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail, self.extra = status, slug, title, detail, extra
        self.headers = headers or {}


def problem_response(problem: Problem) -> Response:
    body = {"type": PROBLEM_BASE + problem.slug, "title": problem.title, "status": problem.status,
            "detail": problem.detail, **problem.extra}
    response = Response(json.dumps(body), status=problem.status, mimetype="application/problem+json")
    response.headers.update(problem.headers)
    return response


def _unavailable(slug: str, title: str, detail: str) -> Problem:
    return Problem(503, slug, title, detail, headers={"Retry-After": str(RETRY_UNAVAILABLE_S)})


def _invalid_request(error: ValidationError) -> Problem:
    errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in error.errors()]
    return Problem(422, "invalid-request", "Invalid request", "the request body does not match the schema",
                   errors=errors)


def _http(error: HTTPException) -> Problem:
    slug = {413: "too-large", 404: "not-found", 405: "method-not-allowed", 400: "bad-request"}.get(
        error.code or 500, "http-error")
    return Problem(error.code or 500, slug, error.name, error.description or error.name)


#: Each exception a rule raises, and the problem that answers it (the first matching type wins).
REFUSALS: tuple[tuple[type[Exception], Callable[[Any], Problem]], ...] = (
    (Problem, lambda error: error),
    (NotFound, lambda error: Problem(404, "not-found", f"Unknown {error.what}", str(error))),
    (Conflict, lambda error: Problem(409, "conflict", "Conflict", str(error))),
    (BadIdempotencyKey, lambda error: Problem(400, "bad-idempotency-key", "Bad Idempotency-Key", str(error))),
    (UnsafeURL, lambda error: Problem(422, "unsafe-url", "URL refused", str(error))),
    (UploadRefused, lambda error: Problem(error.status, error.slug, "Upload refused", str(error))),
    (WebhookRefused, lambda error: Problem(409, "no-webhook-secret", "No webhook secret", str(error))),
    (UnknownBackend, lambda error: Problem(422, "unknown-backend", "Unknown face backend", str(error))),
    (ValidationError, _invalid_request),
    (StorageError, lambda error: _unavailable("storage-unavailable", "Storage unavailable",
                                              "the object store cannot be reached; nothing was changed, retry "
                                              "shortly")),
    (HTTPException, _http),
)


def _from_exception(error: Exception) -> Problem:
    if is_unavailable(error):
        return _unavailable("database-unavailable", "Database unavailable",
                            "the job database cannot be reached; nothing was changed, retry shortly")
    for kind, answer in REFUSALS:
        if isinstance(error, kind):
            return answer(error)
    return Problem(500, "internal", "Internal error", "the server failed; the error was logged")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(Exception)
    def handle(error: Exception) -> Response:
        problem = _from_exception(error)
        if problem.status >= 500:
            app.logger.exception("unhandled error", exc_info=error)
        return problem_response(problem)
