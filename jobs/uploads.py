"""Direct uploads: big files go straight to storage, never through the API's request body.

``POST /uploads`` creates an :class:`~jobs.models.Upload` and hands out a signed PUT target (S3 presigned, or the
API's own signed ``PUT /uploads/<key>`` in the embedded mode); the client PUTs the file there and submits
``{"upload_id": ...}``. Before a job takes the upload, the stored object is checked: it belongs to the caller, has
not been used or expired, its size is within the limit, and its first bytes are a video container (a still image
is refused with its own code). The job then moves the object under its own key, so erasure and retention treat it
like any input. Uploads nobody used are deleted by the workers' sweep once expired.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs.auth import Principal
from jobs.keys import job_input_key, upload_key, upload_prefix
from jobs.models import Upload, aware, new_id, rfc3339, utcnow
from jobs.settings import Settings
from jobs.storage import Storage

#: How long a client has to PUT its file and submit the job.
UPLOAD_TTL_S = 3600
#: Bytes read to recognise the container.
SNIFF_BYTES = 512


class UploadRefused(ValueError):
    """The upload cannot be used: ``status`` and ``slug`` say how the API answers."""

    def __init__(self, status: int, slug: str, message: str) -> None:
        super().__init__(message)
        self.status, self.slug = status, slug


#: File signatures of still-image formats: an upload that starts with one is a photo, whatever its name says.
#: (GIF and WebP are left to the worker: they may be animated.)
STILL_IMAGE_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"BM": "BMP", b"II*\x00": "TIFF",
                          b"MM\x00*": "TIFF"}


def still_image_kind(head: bytes) -> str | None:
    """The still-image format an upload's first bytes show, if any."""
    return next((kind for signature, kind in STILL_IMAGE_SIGNATURES.items() if head.startswith(signature)), None)


def container_kind(head: bytes) -> str | None:
    """The video container the first bytes show: MP4/MOV (an ``ftyp``, ``moov``, ``mdat``, ``free`` or ``wide``
    box first), Matroska/WebM, AVI, MPEG program or transport stream, or animated GIF/WebP; None for anything
    else."""
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "MP4/QuickTime"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "Matroska/WebM"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "AVI"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WebP"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "MPEG program stream"
    if head[:1] == b"\x47" and (len(head) < 189 or head[188:189] == b"\x47"):
        return "MPEG transport stream"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    return None


def create_upload(session: Session, storage: Storage, principal: Principal, filename: str,
                  now: datetime | None = None) -> dict[str, Any]:
    """A new upload target for one video file; what the client needs to PUT it."""
    name = f"video{PurePosixPath(filename).suffix.lower()}"
    upload_id = new_id()
    now = now or utcnow()
    row = Upload(id=upload_id, owner=principal.owner, storage_key=upload_key(upload_id, name),
                 filename=PurePosixPath(filename.replace("\\", "/")).name[:255], created_at=now,
                 expires_at=now + timedelta(seconds=UPLOAD_TTL_S))
    session.add(row)
    session.flush()
    return {"upload_id": upload_id, "method": "PUT", "url": storage.upload_url(row.storage_key, UPLOAD_TTL_S,
                                                                               "application/octet-stream"),
            "headers": {"Content-Type": "application/octet-stream"}, "expires_at": rfc3339(row.expires_at)}


def owned_upload(session: Session, upload_id: str, principal: Principal) -> Upload:
    """The caller's upload (another owner's is answered as missing, like every row the caller may not see)."""
    row = session.get(Upload, upload_id)
    if row is None or row.owner != principal.owner:
        raise UploadRefused(404, "not-found", f"no upload with id {upload_id!r}")
    return row


def usable_upload(session: Session, storage: Storage, upload_id: str, principal: Principal,
                  settings: Settings, now: datetime | None = None) -> Upload:
    """The caller's unused, unexpired upload, its object checked (size, container); UploadRefused otherwise."""
    row = owned_upload(session, upload_id, principal)
    if row.job_id is not None:
        raise UploadRefused(409, "upload-used", f"upload {upload_id} was already used by job {row.job_id}")
    if aware(row.expires_at) < (now or utcnow()):
        raise UploadRefused(410, "upload-expired", f"upload {upload_id} expired; ask for a new one")
    size = storage.size(row.storage_key)
    if not size:
        raise UploadRefused(409, "upload-missing", f"nothing was uploaded for {upload_id} yet (PUT the file first)")
    if size > settings.max_upload_mb * 1024 * 1024:
        raise UploadRefused(413, "too-large", f"the upload holds {size} bytes, more than the {settings.max_upload_mb} MB "
                                             "limit")
    head = storage.head(row.storage_key, SNIFF_BYTES)
    if kind := still_image_kind(head):
        raise UploadRefused(422, "not-a-video", f"the upload is a still image ({kind}), not a video: FTCN judges how "
                                                "a face moves over time, and nothing moves in a photo")
    if container_kind(head) is None:
        raise UploadRefused(415, "unsupported-file", "the upload is not in a video container this service reads "
                                                     "(MP4/MOV, Matroska/WebM, AVI, MPEG)")
    return row


def hand_to_job(session: Session, storage: Storage, row: Upload, job_id: str) -> str:
    """Move the upload's object under the job's input key and mark it used; returns that key."""
    key = job_input_key(job_id, PurePosixPath(row.storage_key).name)
    storage.move(row.storage_key, key)
    row.job_id = job_id
    session.flush()
    return key


def sweep_unused(session: Session, storage: Storage, now: datetime | None = None) -> int:
    """Delete uploads nobody used before they expired (their objects and rows)."""
    now = now or utcnow()
    stale = list(session.scalars(select(Upload).where(Upload.job_id.is_(None), Upload.expires_at < now)))
    for row in stale:
        storage.delete_prefix(upload_prefix(row.id))
        session.delete(row)
    session.flush()
    return len(stale)
