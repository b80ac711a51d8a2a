"""Run by tests/api/test_import_contract.py in a fresh interpreter: the ML stack is blocked before anything is
imported, every module of api/ and jobs/ is imported, then every route of the app is driven. Prints one JSON line:
the imports that were refused, and the routes that answered 5xx."""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from pathlib import Path

#: What the API image does not install (numpy and everything built on it), and the model code.
BLOCKED = ("torch", "numpy", "cv2", "av", "dlib", "openvino", "onnxruntime", "onnx", "matplotlib", "ftcn.models",
           "ftcn.faces.backends", "ftcn.video", "ftcn.training.train")
refused: list[str] = []


class Blocker:
    """A meta-path finder that refuses the blocked modules and remembers each attempt."""

    def find_spec(self, name, path=None, target=None):
        if any(name == blocked or name.startswith(blocked + ".") for blocked in BLOCKED):
            refused.append(name)
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: the API image does not have it)")
        return None


def main(work: Path, redis_url: str, video: Path) -> None:
    sys.meta_path.insert(0, Blocker())
    import api
    import jobs

    for package in (api, jobs):
        for module in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            if module.name not in ("api.client",):  # the command-line client runs on users' machines
                importlib.import_module(module.name)

    from api import create_app
    from jobs.admin import make_token
    from jobs.db import session_scope
    from jobs.models import Batch, Job, Model, new_id, utcnow
    from jobs.settings import Settings

    settings = Settings(database_url=f"sqlite:///{work / 'db.sqlite3'}", storage_url=(work / "store").as_uri(),
                        redis_url=redis_url, predict_wait_s=0.5, url_allowlist=("localhost",))
    app = create_app(settings)
    state = app.extensions["ftcn"]
    token = make_token(settings, "contract", "contract", admin=True, train=True)
    auth = {"Authorization": f"Bearer {token}"}
    batch_id, job_ids = new_id(), [new_id(), new_id()]
    with session_scope(state.sessions) as session:
        # a registered default model, so that predict and batch submissions go all the way (reuse key, enqueue)
        session.add(Model(id="m", name="contract", threshold=0.5, storage_key="models/m/model.pt", config={},
                          is_default=True, sha256="0" * 64))
        session.add(Batch(id=batch_id, name="labelled", owner="contract", total=2, params={}, created_at=utcnow()))
        for job_id, label, score in zip(job_ids, ("real", "fake"), (0.2, 0.9)):
            verdict = "FAKE" if score > 0.5 else "REAL"
            session.add(Job(id=job_id, kind="predict", status="succeeded", owner="contract", batch_id=batch_id,
                            params={"label": label, "item": f"{label}.mp4", "model_id": "m"},
                            result={"verdict": verdict, "score": score, "threshold": 0.5, "faces": 1, "tracks": []},
                            created_at=utcnow(), finished_at=utcnow()))
    client = app.test_client()
    upload = client.post("/uploads", json={"filename": "clip.mp4"}, headers=auth).get_json() or {}
    values = {"job_id": job_ids[1], "batch_id": batch_id, "key": upload.get("key", "uploads/x/clip.mp4"),
              "filename": "app.css"}
    bodies = {
        "/jobs/predict": {"data": {"video": (open(video, "rb"), "clip.mp4")}},
        "/predict": {"json": {"file_path": "http://localhost:1/clip.mp4"}},
        "/uploads": {"json": {"filename": "clip.mp4"}},
        "/jobs/preprocess": {"json": {"s3_prefix": "s3://bucket/prefix/"}},
        "/jobs/train": {"json": {"dataset_id": "none"}},
        "/batches": {"json": {"items": [{"video_url": "http://localhost:1/a.mp4"}]}},
        "/me/webhook-secret": {"json": {}},
    }
    failures, driven = [], []
    for rule in app.url_map.iter_rules():
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<{name}>", values[name]).replace(f"<path:{name}>", values[name])
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            answer = client.open(path, method=method, headers=auth, **bodies.get(rule.rule, {}))
            driven.append(f"{method} {rule.rule} {answer.status_code}")
            if answer.status_code >= 500 and not (rule.rule == "/readyz" and answer.status_code == 503):
                failures.append(f"{method} {rule.rule}: {answer.status_code} {answer.get_data(as_text=True)[:300]}")
    shown = client.get(f"/batches/{batch_id}", headers=auth)
    assert shown.status_code == 200, shown.get_data(as_text=True)
    report = shown.get_json()["report"]
    print(json.dumps({"refused": sorted(set(refused)), "failures": failures, "driven": driven,
                      "report_auc": report and report.get("auc"),
                      "loaded": sorted(m for m in BLOCKED if m in sys.modules)}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
