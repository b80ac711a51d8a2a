"""Face backends in the service: which one a job uses, and with which registered weights.

``dlib`` is always there (its weights ship inside a package). ``retinaface`` (the detector FTCN+TT was trained
with) needs the official weight files, registered by an operator (``ftcn-admin register-detector``) and stored like
models. A job's backend is decided at submission, in one place (:func:`resolve_backend`): the one asked for, or
RetinaFace when its weights are registered and dlib otherwise; the job records the detector's id, so every worker
runs the same weights and ``result.json`` says which.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs.models import Detector, rfc3339

DLIB = "dlib"
RETINAFACE = "retinaface"
BACKENDS = (DLIB, RETINAFACE)
#: The files a RetinaFace detector holds: role -> file name in storage.
RETINAFACE_FILES = {"retinaface": "mobilenet0.25_Final.pth", "landmarks": "mobilenet_224_model_best_gdconv.pth.tar"}
DLIB_VIEW = {"id": DLIB, "name": "dlib HOG detector + 68-point shape predictor (offline, face-recognition-models)",
             "backend": DLIB, "default": False, "files": {}, "created_at": None}


class UnknownBackend(ValueError):
    """The backend asked for is not one the service has (or its weights are not registered)."""


def _registered(session: Session, backend: str) -> Detector | None:
    """The default detector of this backend, else the newest one."""
    return session.scalars(select(Detector).where(Detector.backend == backend)
                           .order_by(Detector.is_default.desc(), Detector.created_at.desc())).first()


def resolve_backend(session: Session, requested: str | None, detector_id: str | None = None) -> dict[str, Any]:
    """``{"backend": name, "detector_id": id or None}`` for a job; raises :class:`UnknownBackend`."""
    if detector_id:
        detector = session.get(Detector, detector_id)
        if detector is None or (requested and requested != detector.backend):
            raise UnknownBackend(f"no {requested or 'registered'} detector has the id {detector_id!r}")
        return {"backend": detector.backend, "detector_id": detector.id}
    if requested not in (None, *BACKENDS):
        raise UnknownBackend(f"unknown face backend {requested!r}; choose one of {', '.join(BACKENDS)}")
    if requested == DLIB:
        return {"backend": DLIB, "detector_id": None}
    detector = _registered(session, RETINAFACE)
    if detector is None:
        if requested == RETINAFACE:
            raise UnknownBackend("no RetinaFace weights are registered on this service (an operator registers them "
                                 "with ftcn-admin register-detector); use backend dlib")
        return {"backend": DLIB, "detector_id": None}
    return {"backend": RETINAFACE, "detector_id": detector.id}


def detector_view(detector: Detector) -> dict[str, Any]:
    return {"id": detector.id, "name": detector.name, "backend": detector.backend, "default": detector.is_default,
            "files": {role: {"sha256": f["sha256"], "bytes": f["bytes"]} for role, f in detector.files.items()},
            "created_at": rfc3339(detector.created_at)}


def list_detectors(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(Detector).order_by(Detector.created_at.desc())).all()
    default = resolve_backend(session, None)
    views = [DLIB_VIEW | {"default": default["backend"] == DLIB}]
    return views + [detector_view(row) | {"default": row.id == default["detector_id"]} for row in rows]
