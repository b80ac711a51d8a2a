"""The web page: server-rendered shells (Jinja templates) plus a little JavaScript that calls the same REST
endpoints as every other client, with the token the person pasted (kept in sessionStorage only). No build step,
no CDN: every asset is served from ``api/static``.
"""

from __future__ import annotations

from urllib.parse import urlparse

from flask import Blueprint, Response, current_app, redirect, render_template, url_for

from jobs.settings import Settings

ui = Blueprint("ui", __name__, template_folder="templates", static_folder="static", static_url_path="/ui/static")

#: No inline script or style, nothing from elsewhere but media and images (S3 presigned links live on the store's
#: origin) and, with S3 storage, direct-upload PUTs to the store; the page cannot be framed.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: "
                           "http: https:; media-src 'self' http: https:; connect-src {connect}; object-src 'none'; "
                           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def connect_sources(settings: Settings) -> str:
    """'self', plus the object store's origin when direct uploads PUT there (the bucket needs CORS for it)."""
    if not settings.storage_url.startswith("s3://"):
        return "'self'"
    if settings.s3_endpoint_url:
        parsed = urlparse(settings.s3_endpoint_url)
        return f"'self' {parsed.scheme}://{parsed.netloc}"
    return "'self' https://*.amazonaws.com"


def _page(template: str, **context) -> Response:
    settings = current_app.extensions["ftcn"].settings
    response = Response(render_template(template, auth=settings.auth, max_upload_mb=settings.max_upload_mb,
                                        direct_upload_mb=settings.direct_upload_mb, **context))
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.format(connect=connect_sources(settings))
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@ui.get("/")
def home() -> Response:
    return redirect(url_for("ui.submit"))


@ui.get("/ui/")
def submit() -> Response:
    return _page("submit.html", page="submit")


@ui.get("/ui/jobs")
def history() -> Response:
    return _page("history.html", page="history")


@ui.get("/ui/jobs/<job_id>")
def job(job_id: str) -> Response:
    return _page("job.html", page="job", job_id=job_id)


@ui.get("/ui/batches/<batch_id>")
def batch(batch_id: str) -> Response:
    return _page("batch.html", page="history", batch_id=batch_id)


@ui.get("/ui/models")
def models() -> Response:
    return _page("models.html", page="models")
