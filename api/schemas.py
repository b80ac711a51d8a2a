"""Request bodies (unknown fields rejected) and the OpenAPI document built from them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jobs.errors import ErrorCode
from jobs.params import PredictChoices, PreprocessChoices, TrainChoices
from jobs.states import JobKind, JobStatus


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Notified(Strict):
    """Any job submission may name a URL to call when the job ends (``jobs.webhooks``)."""

    webhook_url: str | None = Field(default=None, max_length=2048)


class VideoSource(Strict):
    """A video by URL (``video_url``) or by a direct upload (``upload_id``, from ``POST /uploads``): one of them."""

    video_url: str | None = Field(default=None, max_length=2048)
    upload_id: str | None = Field(default=None, max_length=36)

    @model_validator(mode="after")
    def one_source(self) -> "VideoSource":
        if (self.video_url is None) == (self.upload_id is None):
            raise ValueError("send exactly one of video_url and upload_id")
        return self


class PredictRequest(VideoSource, Notified):
    model_id: str | None = None
    options: PredictChoices = PredictChoices()
    #: false: run the model even when a finished job already answered the same content (jobs.reuse)
    reuse: bool = True


class BatchItem(VideoSource):
    """One video of a batch, with its label when known."""

    label: Literal["real", "fake"] | None = None
    name: str | None = Field(default=None, max_length=255)  # shown in the batch's listing (default: the URL)


class BatchRequest(Notified):
    """Many predict jobs in one request; ``webhook_url`` is called once, when the last of them ends."""

    items: list[BatchItem] = Field(min_length=1)
    name: str | None = Field(default=None, max_length=200)
    model_id: str | None = None
    options: PredictChoices = PredictChoices()
    reuse: bool = True


class UploadRequest(Strict):
    filename: str = Field(min_length=1, max_length=255)


class ReferencePredictRequest(BaseModel):
    """The FTCN reference server's ``POST /predict`` body (extra fields ignored, as that server did)."""

    file_path: str = Field(max_length=2048)
    max_frames: int | None = Field(default=None, ge=1)


class PreprocessRequest(Notified):
    s3_prefix: str = Field(pattern=r"^s3://[^/]+/.*$", max_length=1024)
    options: PreprocessChoices = PreprocessChoices()


class TrainRequest(TrainChoices, Notified):
    pass


NULLABLE_STRING = {"type": ["string", "null"]}
#: Moments are RFC 3339 in UTC with their zone ("...Z"), from jobs.models.rfc3339.
TIMESTAMP = {"type": "string", "format": "date-time", "pattern": "Z$"}
NULLABLE_TIMESTAMP = {"type": ["string", "null"], "format": "date-time", "pattern": "Z$"}
JOB_KINDS = [kind.value for kind in JobKind]
JOB_STATUSES = [status.value for status in JobStatus]
ERROR_CODES = [code.value for code in ErrorCode]
RESPONSE_SCHEMAS: dict[str, Any] = {
    "Problem": {"type": "object", "required": ["type", "title", "status", "detail"],
                "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                               "status": {"type": "integer"}, "detail": {"type": "string"},
                               "errors": {"type": "array", "items": {"type": "object"}}}},
    "Job": {"type": "object",
            "required": ["id", "kind", "status", "progress", "params", "result", "error", "attempts", "links",
                         "created_at"],
            "properties": {"id": {"type": "string"}, "kind": {"enum": JOB_KINDS}, "status": {"enum": JOB_STATUSES},
                           "progress": {"type": "number", "minimum": 0, "maximum": 100}, "stage": NULLABLE_STRING,
                           "params": {"type": "object"}, "result": {"type": ["object", "null"]},
                           "error": {"type": ["object", "null"], "properties": {"code": {"enum": ERROR_CODES},
                                                                                 "message": {"type": "string"}}},
                           "attempts": {"type": "integer", "minimum": 0}, "owner": NULLABLE_STRING,
                           "created_at": TIMESTAMP, "started_at": NULLABLE_TIMESTAMP,
                           "finished_at": NULLABLE_TIMESTAMP, "erased_at": NULLABLE_TIMESTAMP,
                           "erased_reason": {"enum": ["owner", "admin", "retention", "source-erased", None]},
                           "reused_from": {"type": ["string", "null"], "description": "the finished job whose "
                                           "result answered this one (same content, model weights and options)"},
                           "batch_id": NULLABLE_STRING,
                           "input_erased_at": NULLABLE_TIMESTAMP,
                           "links": {"type": "object", "additionalProperties": {"type": "string"}},
                           "webhook": {"type": "object", "description": "GET /jobs/{id} only: the deliveries of "
                                       "the job's events to its webhook_url, with every attempt",
                                       "properties": {"url": {"type": "string"}, "deliveries": {
                                           "type": "array", "items": {"$ref": "#/components/schemas/Delivery"}}}}}},
    "Delivery": {"type": "object", "required": ["id", "event", "status", "attempts"],
                 "properties": {"id": {"type": "string", "description": "the webhook-id header, the same on every "
                                                                        "retry"},
                                "event": {"enum": ["job.succeeded", "job.failed", "job.canceled",
                                                   "batch.finished"]},
                                "status": {"enum": ["pending", "delivered", "failed"]},
                                "attempts": {"type": "array", "items": {"type": "object", "properties": {
                                    "at": TIMESTAMP, "status_code": {"type": ["integer", "null"]},
                                    "error": NULLABLE_STRING, "duration_ms": {"type": ["number", "null"]}}}},
                                "next_attempt_at": NULLABLE_TIMESTAMP, "created_at": TIMESTAMP,
                                "finished_at": NULLABLE_TIMESTAMP}},
    "Batch": {"type": "object",
              "required": ["id", "status", "total", "counts", "jobs", "report", "created_at"],
              "properties": {"id": {"type": "string"}, "name": NULLABLE_STRING, "owner": NULLABLE_STRING,
                             "status": {"enum": ["running", "finished"]}, "total": {"type": "integer"},
                             "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                             "model_id": NULLABLE_STRING, "created_at": TIMESTAMP,
                             "finished_at": NULLABLE_TIMESTAMP,
                             "report": {"type": ["object", "null"], "description": "with labels: video-level "
                                        "AUC, EER, AP, accuracy and false-positive rate (as ftcn predict)"},
                             "jobs": {"type": "array", "items": {"type": "object", "required": ["id", "status"],
                                                                 "properties": {
                                 "id": {"type": "string"}, "item": {"type": "string"},
                                 "label": {"enum": ["real", "fake", None]}, "status": {"enum": JOB_STATUSES},
                                 "verdict": {"type": ["string", "null"]}, "score": {"type": ["number", "null"]},
                                 "reused_from": NULLABLE_STRING, "error": {"type": ["object", "null"]}}}}}},
    "BatchList": {"type": "object", "required": ["items"],
                  "properties": {"items": {"type": "array", "items": {"type": "object"}}}},
    "WebhookSecret": {"type": "object", "required": ["webhook_secret"],
                      "properties": {"webhook_secret": {"type": "string", "pattern": "^whsec_"}}},
    "JobList": {"type": "object", "required": ["items", "total", "limit", "offset"],
                "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
                               "total": {"type": "integer"}, "limit": {"type": "integer"},
                               "offset": {"type": "integer"}}},
    "ModelList": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {
        "type": "object", "required": ["id", "name", "threshold", "default"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "threshold": {"type": "number"},
                       "default": {"type": "boolean"}, "metrics": {"type": ["object", "null"]},
                       "owner": NULLABLE_STRING, "created_at": NULLABLE_TIMESTAMP}}}}},
    "DetectorList": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {
        "type": "object", "required": ["id", "name", "backend", "default"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "backend": {"enum": ["mtcnn", "dlib", "retinaface"]},
                       "default": {"type": "boolean"}, "files": {"type": "object"},
                       "created_at": NULLABLE_TIMESTAMP}}}}},
    "DatasetList": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {
        "type": "object", "required": ["id", "counts"],
        "properties": {"id": {"type": "string"}, "counts": {"type": "object"}, "owner": NULLABLE_STRING,
                       "created_at": NULLABLE_TIMESTAMP}}}}},
    "Me": {"type": "object", "required": ["owner", "admin", "train", "auth", "max_upload_mb"],
           "properties": {"owner": NULLABLE_STRING, "admin": {"type": "boolean"}, "train": {"type": "boolean"},
                          "auth": {"enum": ["tokens", "open"]}, "max_upload_mb": {"type": "integer"},
                          "direct_upload_mb": {"type": "integer"}}},
    "Health": {"type": "object", "required": ["status", "healthy"],
               "properties": {"status": {"enum": ["ok", "degraded"]}, "healthy": {"type": "boolean"},
                              "checks": {"type": "object"}}},
    "UploadTarget": {"type": "object", "required": ["upload_id", "method", "url", "headers", "expires_at"],
                     "properties": {"upload_id": {"type": "string"}, "method": {"enum": ["PUT"]},
                                    "url": {"type": "string"}, "headers": {"type": "object"},
                                    "expires_at": TIMESTAMP}},
    "ReferencePrediction": {"type": "object", "required": ["df_probability", "prediction", "job_id"],
                            "properties": {"df_probability": {"type": ["number", "null"]},
                                           "prediction": {"enum": ["FAKE", "REAL", "NO_FACE",
                                                                              "INCONCLUSIVE"]},
                                           "start_time": NULLABLE_TIMESTAMP, "end_time": NULLABLE_TIMESTAMP,
                                           "job_id": {"type": "string"}, "coverage": {"type": ["number", "null"]},
                                           "threshold": {"type": "number"}}},
}


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 from the pydantic schemas: every JSON body is documented from the same classes that parse it,
    and every response the API can give (including each problem status) is described, so a fuzzer can check
    responses against it."""
    schemas = {cls.__name__: cls.model_json_schema(ref_template="#/components/schemas/{model}")
               for cls in (PredictRequest, PreprocessRequest, TrainRequest, ReferencePredictRequest, UploadRequest,
                           BatchRequest)}
    components: dict[str, Any] = {}
    for name, schema in schemas.items():
        components.update(schema.pop("$defs", {}))
        components[name] = schema
    components.update(RESPONSE_SCHEMAS)

    def body(schema: str, description: str, media: str = "application/json") -> dict[str, Any]:
        return {"description": description, "content": {media: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}

    problems = {"4XX": body("Problem", "refused (problem+json)", "application/problem+json"),
                "503": body("Problem", "a backing service is down; retry after Retry-After",
                            "application/problem+json")}

    def get(schema: str, description: str, parameters: list | None = None) -> dict[str, Any]:
        return {"get": {"parameters": parameters or [], "responses": {"200": body(schema, description), **problems}}}

    def post(schema: str, multipart: dict[str, Any] | None = None) -> dict[str, Any]:
        content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
        if multipart:
            content["multipart/form-data"] = {"schema": {"type": "object", "properties": multipart}}
        job = body("Job", "the job (202: accepted now; 200: the same request again, by Idempotency-Key)")
        return {"post": {"requestBody": {"required": True, "content": content},
                         "parameters": [{"name": "Idempotency-Key", "in": "header",
                                         "schema": {"type": "string", "maxLength": 128}}],
                         "responses": {"200": job, "202": job, **problems}}}

    job_id = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    listing = [{"name": "kind", "in": "query", "schema": {"enum": JOB_KINDS}},
               {"name": "status", "in": "query", "schema": {"enum": JOB_STATUSES}},
               {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
               {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                                            "maximum": 1_000_000_000}}]
    binary = {"type": "string", "format": "binary"}
    public = {"security": []}
    health = {"200": body("Health", "alive (deep: every dependency ok)"), "503": body("Health", "degraded")}
    return {
        "openapi": "3.1.0",
        "info": {"title": "FTCN deepfake detection service", "version": "1.0"},
        "security": [{"bearer": []}],
        "paths": {
            "/predict": {"post": {
                "description": "The FTCN reference server's API: submit a predict job for a video URL and wait for "
                               "its verdict (up to FTCN_PREDICT_WAIT_S; then 202 with the job)",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ReferencePredictRequest"}}}},
                "responses": {"200": body("ReferencePrediction", "the verdict"),
                              "202": body("Job", "still running: follow the Location"), **problems}}},
            "/uploads": {"post": {
                "description": "a signed PUT target for one big video; then POST /jobs/predict {\"upload_id\"}",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/UploadRequest"}}}},
                "responses": {"201": body("UploadTarget", "where to PUT the file"), **problems}}},
            "/jobs/predict": post("PredictRequest", {"video": binary, "model_id": {"type": "string"},
                                                     "options": {"type": "string"}, "webhook_url": {"type": "string"},
                                                     "reuse": {"enum": ["true", "false"]}}),
            "/jobs/preprocess": post("PreprocessRequest", {"archive": binary, "options": {"type": "string"},
                                                           "webhook_url": {"type": "string"}}),
            "/jobs/train": post("TrainRequest"),
            "/batches": {"post": {
                "description": "many predict jobs at once (URLs or upload ids, optional labels); the webhook is "
                               "called when the last ends",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/BatchRequest"}}}},
                "parameters": [{"name": "Idempotency-Key", "in": "header",
                                "schema": {"type": "string", "maxLength": 128}}],
                "responses": {"202": body("Batch", "the batch, its jobs queued"),
                              "200": body("Batch", "the batch this Idempotency-Key made before"), **problems}},
                **get("BatchList", "this owner's batches, newest first")},
            "/batches/{id}": get("Batch", "a batch: counts by status, its jobs, and with labels the report",
                                 job_id),
            "/batches/{id}/cancel": {"post": {"parameters": job_id, "responses": {
                "200": body("Batch", "every job that had not ended is canceled"), **problems}}},
            "/jobs": get("JobList", "jobs, newest first", listing),
            "/jobs/{id}": {**get("Job", "a job", job_id), "delete": {"parameters": job_id, "responses": {
                "204": {"description": "the job's input and every artifact erased (the job stays listed, marked "
                                       "erased, with its verdict summary); repeating it is harmless"},
                **problems}}},
            "/jobs/{id}/result": {"get": {"parameters": job_id, "responses": {
                "200": {"description": "result.json of a succeeded predict job (ftcn/predict/result.schema.json)",
                        "content": {"application/json": {"schema": {"type": "object"}}}}, **problems}}},
            "/jobs/{id}/cancel": {"post": {"parameters": job_id, "responses": {
                "200": body("Job", "canceled"), **problems}}},
            "/models": get("ModelList", "registered models this token may use"),
            "/detectors": get("DetectorList", "face backends and registered detector weights; the default first"),
            "/datasets": get("DatasetList", "preprocessed datasets of this token's owner"),
            "/me": get("Me", "the caller"),
            "/me/webhook-secret": {"post": {
                "description": "a new secret signing this token's webhooks (Standard Webhooks); shown this once",
                "responses": {"201": body("WebhookSecret", "the new secret"), **problems}}},
            "/metrics": {"get": {
                "description": "Prometheus metrics (admin tokens only)",
                "responses": {"200": {"description": "the Prometheus text format",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}}, **problems}}},
            "/healthcheck": {"get": {**public, "responses": health}},
            "/readyz": {"get": {**public, "responses": health}},
        },
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "ftcn-admin token create"}}},
    }
