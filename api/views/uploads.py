"""Views of files: direct-upload targets, the signed local PUT that receives them, and signed local downloads."""

from __future__ import annotations

from pathlib import PurePosixPath

from flask import Response, jsonify, request, send_file

from api.access import principal, public
from api.problems import Problem
from api.schemas import UploadRequest
from api.views.common import VIDEO_SUFFIXES, app_state, bp, json_body, local_signed
from jobs import uploads
from jobs.db import session_scope


@bp.post("/uploads")
def create_upload() -> Response:
    """A signed PUT target for one big video, so its bytes never pass through the API's request body."""
    body = json_body(UploadRequest)
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


@bp.put("/uploads/<path:key>")
@public
def receive_upload(key: str) -> Response:
    """The embedded mode's PUT target (S3 takes the PUT itself): the signature is the credential; the body is
    streamed to storage, refused past the upload limit."""
    storage, expires, signature = local_signed(key, "uploads go to the object store's presigned URL",
                                                "no such upload")
    if not key.startswith("uploads/") or not storage.verify_upload(key, expires, signature):
        raise Problem(403, "bad-signature", "Upload link invalid or expired", "ask POST /uploads for a new one")
    limit = app_state().settings.max_upload_mb * 1024 * 1024
    if request.content_length is None or request.content_length > limit:
        raise Problem(413 if request.content_length else 411, "too-large" if request.content_length else
                      "length-required", "Upload refused", f"send Content-Length, at most {limit} bytes")
    storage.put_stream(key, request.stream, "application/octet-stream")
    return Response(status=204)


@bp.get("/files/<path:key>")
@public
def download(key: str) -> Response:
    """Local-storage artifacts, only through a valid, unexpired signed link."""
    storage, expires, signature = local_signed(key, "artifacts are served by the object store", "no such file")
    if not storage.verify(key, expires, signature) or not storage.exists(key):
        raise Problem(403, "bad-signature", "Link invalid or expired", "ask the job again for fresh links")
    return send_file(storage.root / key, conditional=True)
