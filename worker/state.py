"""Everything a worker process holds, built by one factory: settings, database sessions, storage, the Celery app,
loaded models and face backends.

Built once per process by ``worker.app.worker_state`` (which reads the environment, as ``api.create_app()`` does)
and shared by the tasks and the reconciler; this module imports nothing from the rest of ``worker``. Connections are made
lazily: Celery builds the state in its main process and forks the pool children from it, and a database pool or
an S3 client inherited across a fork is not safe to use, so :meth:`WorkerState.after_fork` drops them and each
child makes its own on first use.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import Celery
from sqlalchemy.orm import sessionmaker

from jobs.db import make_engine
from jobs.settings import Settings
from jobs.storage import Storage, open_storage
from jobs.weights_cache import cached_copy

log = logging.getLogger(__name__)


@dataclass
class WorkerState:
    settings: Settings
    celery: Celery
    _sessions: sessionmaker | None = None
    _storage: Storage | None = None
    _models: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    _backends: dict[str, Any] = field(default_factory=dict)
    _detectors: dict[str, tuple[dict[str, str], dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _preparing: threading.RLock = field(default_factory=threading.RLock)

    @property
    def sessions(self) -> sessionmaker:
        with self._lock:
            if self._sessions is None:
                self._sessions = sessionmaker(make_engine(self.settings.database_url), expire_on_commit=False)
            return self._sessions

    @property
    def storage(self) -> Storage:
        with self._lock:
            if self._storage is None:
                self._storage = open_storage(self.settings)
            return self._storage

    @property
    def device(self) -> str:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def _local_copy(self, key: str, folder: str, sha256: str | None = None) -> Path:
        """A stored object copied to this machine's cache once (weights are immutable under their key), whole and
        matching the registry's digest (``jobs.weights_cache``)."""
        return cached_copy(lambda path: self.storage.download(key, path), Path(tempfile.gettempdir()) / folder / key,
                           sha256)

    def model(self, model_id: str, storage_key: str, sha256: str | None = None) -> tuple[Any, Any]:
        """(network, checkpoint) of a registered model, downloaded and loaded once per process, on the device. A
        job that asks while the warm-up prepares models waits for it instead of preparing the same one twice."""
        with self._preparing:
            if model_id not in self._models:
                from ftcn.checkpoints import load_model

                path = self._local_copy(storage_key, "ftcn-models", sha256)
                self._models[model_id] = load_model(path, self.device)
            return self._models[model_id]

    def warm_up(self) -> dict[str, Any]:
        """Prepare the shared default model and the face backend a job gets by default (``jobs.detectors``: the
        registered RetinaFace weights, else dlib) before any job asks, so that the first job of a worker process
        does not pay for them (the full model's engine: 24-26 s the first time a machine sees its weights, about
        3 s from the export cache). Returns what it prepared: ``model_id`` (None: no default model), ``backend``
        and ``detector_id``."""
        from ftcn.precision_check import engine_for_model
        from jobs.auth import OPEN
        from jobs.db import unit_of_work
        from jobs.detectors import resolve_backend
        from jobs.models import Model
        from jobs.service import default_model

        def defaults(session) -> dict[str, Any]:
            model_id = default_model(session, OPEN)
            row = session.get(Model, model_id) if model_id else None
            return {"model_id": model_id, "storage_key": row.storage_key if row else None,
                    "sha256": row.sha256 if row else None, **resolve_backend(session, None)}

        found = unit_of_work(self.sessions, defaults)
        storage_key, sha256 = found.pop("storage_key"), found.pop("sha256")
        with self._preparing:  # held throughout: a job then finds the engine made here
            self.backend(found["backend"], found["detector_id"])
            if found["model_id"]:
                network, checkpoint = self.model(found["model_id"], storage_key, sha256)
                # the engine jobs will run: the fastest precision the model's own check passed
                engine_for_model(network, checkpoint, self.settings.runtime, self.settings.precision)
        return found

    def backend(self, name: str, detector_id: str | None = None) -> Any:
        """A face backend, built once per process, on the worker's device; RetinaFace from registered weights."""
        key = f"{name}:{detector_id}"
        with self._preparing:
            if key not in self._backends:
                from ftcn.faces.backends import make_backend

                files, described = self._detector(detector_id) if detector_id else ({}, None)
                backend = make_backend(name, device=self.device, retinaface_weights=files.get("retinaface"),
                                       landmark_weights=files.get("landmarks"))
                if described:
                    backend.weights = described
                self._backends[key] = backend
            return self._backends[key]

    def detector_files(self, detector_id: str) -> dict[str, str]:
        """role -> local path of a registered detector's weight files."""
        return self._detector(detector_id)[0]

    def _detector(self, detector_id: str) -> tuple[dict[str, str], dict[str, Any]]:
        """(role -> local path, what result.json records) of a registered detector, looked up once per process."""
        if detector_id not in self._detectors:
            from jobs.db import unit_of_work
            from jobs.models import Detector

            def row(session) -> tuple[str, dict[str, Any]]:
                detector = session.get(Detector, detector_id)
                if detector is None:
                    from ftcn.errors import BackendUnavailable

                    raise BackendUnavailable(f"detector {detector_id} is no longer registered")
                return detector.name, detector.files

            name, files = unit_of_work(self.sessions, row)
            paths = {role: str(self._local_copy(entry["key"], "ftcn-detectors", entry.get("sha256")))
                     for role, entry in files.items()}
            described = {"detector_id": detector_id, "name": name,
                         "files": {role: {"sha256": entry["sha256"]} for role, entry in files.items()}}
            self._detectors[detector_id] = (paths, described)
        return self._detectors[detector_id]

    def after_fork(self) -> None:
        """In a freshly forked pool child: forget the parent's connections (models and backends stay: they hold
        no sockets, and copy-on-write shares their memory)."""
        if self._sessions is not None:
            self._sessions.kw["bind"].dispose(close=False)
        self._sessions, self._storage = None, None
