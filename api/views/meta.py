"""Views about the service itself: models, detectors, datasets, the caller, metrics, the OpenAPI document and
health."""

from __future__ import annotations


from flask import Response, jsonify, request

from api.access import principal, public
from api.problems import Problem
from api.schemas import openapi_document
from api.views.common import app_state, bp
from jobs import service, webhooks
from jobs.db import session_scope
from jobs.detectors import list_detectors
from jobs.metrics import CONTENT_TYPE, exposition
from jobs.models import Dataset, Model


@bp.get("/models")
def index_models() -> Response:
    state = app_state()
    with session_scope(state.sessions) as session:
        return jsonify({"items": [service.model_view(m) for m in service.list_rows(session, Model, principal())]})


@bp.get("/detectors")
def index_detectors() -> Response:
    """Face backends this service can run: mtcnn and dlib always, RetinaFace once its weights are registered."""
    with session_scope(app_state().sessions) as session:
        return jsonify({"items": list_detectors(session)})


@bp.get("/datasets")
def index_datasets() -> Response:
    state = app_state()
    with session_scope(state.sessions) as session:
        return jsonify({"items": [service.dataset_view(d) for d in service.list_rows(session, Dataset, principal())]})


@bp.get("/me")
def whoami() -> Response:
    """The caller as the API sees it (clients and the web page check a token with this)."""
    who = principal()
    return jsonify({"owner": who.owner, "admin": who.admin, "train": who.can_train, "auth": app_state().settings.auth,
                    "max_upload_mb": app_state().settings.max_upload_mb,
                    "direct_upload_mb": app_state().settings.direct_upload_mb})


@bp.post("/me/webhook-secret")
def new_webhook_secret() -> Response:
    """A new secret for this token's webhooks, shown this once (the old one stops signing at once)."""
    who = principal()
    if who.token_id is None:
        raise Problem(409, "no-token", "No token", "with FTCN_AUTH=open, webhooks are signed with "
                                                   "FTCN_WEBHOOK_SECRET, set by the operator")
    with session_scope(app_state().sessions) as session:
        secret = webhooks.rotate_secret(session, who.token_id)
    response = jsonify({"webhook_secret": secret})
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics, for admin tokens (Prometheus scrapes with a bearer token): this API's processes, and
    the service-wide figures read now (jobs by kind and status, queue depths)."""
    if not principal().admin:
        raise Problem(403, "forbidden", "Admins only", "metrics are served to admin tokens")
    return Response(exposition(app_state().service_collector()), mimetype="text/plain",
                    headers={"Content-Type": CONTENT_TYPE})


@bp.get("/openapi.json")
@public
def openapi() -> Response:
    return jsonify(openapi_document())


@bp.get("/healthcheck")
@bp.get("/readyz")
@public
def healthcheck() -> Response:
    deep = request.path == "/readyz" or request.args.get("deep") in ("1", "true")
    if not deep:
        return jsonify({"status": "ok", "healthy": True})  # "healthy": the reference server's answer
    checks = app_state().readiness()
    # ?workers=optional: the API pod's own readiness (its database, Redis and storage), for an orchestrator that
    # scales workers from zero on queue length: an API waiting for workers would never queue the first job
    optional = {"workers"} if request.args.get("workers") == "optional" else set()
    healthy = all(c["ok"] for name, c in checks.items() if name not in optional)
    response = jsonify({"status": "ok" if healthy else "degraded", "healthy": healthy, "checks": checks})
    response.status_code = 200 if healthy else 503
    return response
