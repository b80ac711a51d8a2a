"""The web page: server-rendered shells (Jinja templates) plus a little JavaScript that calls the same REST
endpoints as every other client, with the token the person pasted (kept in sessionStorage only). No build step,
no CDN: every asset is served from ``api/static``.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, redirect, render_template, url_for

ui = Blueprint("ui", __name__, template_folder="templates", static_folder="static", static_url_path="/ui/static")

#: No inline script or style, nothing from elsewhere but media and images (S3 presigned links live on the store's
#: origin); the page cannot be framed.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: "
                           "http: https:; media-src 'self' http: https:; connect-src 'self'; object-src 'none'; "
                           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def _page(template: str, **context) -> Response:
    settings = current_app.extensions["ftcn"].settings
    response = Response(render_template(template, auth=settings.auth, max_upload_mb=settings.max_upload_mb,
                                        **context))
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
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


@ui.get("/ui/models")
def models() -> Response:
    return _page("models.html", page="models")
