"""Request bodies (unknown fields rejected) and the OpenAPI document built from them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictOptions(Strict):
    stride: int | None = Field(default=None, ge=1, le=64)
    backend: Literal["dlib"] = "dlib"
    max_frames: int | None = Field(default=None, ge=1)


class PredictRequest(Strict):
    video_url: str = Field(max_length=2048)
    model_id: str | None = None
    options: PredictOptions = PredictOptions()


class PreprocessOptions(Strict):
    max_clips: int = Field(default=8, ge=1, le=64)
    max_frames: int = Field(default=300, ge=8, le=10_000)
    face_thres: float = Field(default=0.5, ge=0, le=1)
    min_face_size: int = Field(default=40, ge=1)
    clip_len: int = Field(default=8, ge=2, le=64)
    size: int = Field(default=64, ge=16, le=448)
    val: float = Field(default=0.25, ge=0, lt=1)
    test: float = Field(default=0.0, ge=0, lt=1)
    seed: int = 0


class PreprocessRequest(Strict):
    s3_prefix: str = Field(pattern=r"^s3://[^/]+/.*$", max_length=1024)
    options: PreprocessOptions = PreprocessOptions()


class TrainRequest(Strict):
    dataset_id: str
    freeze: bool = False
    init_model_id: str | None = None
    epochs: int = Field(default=10, ge=1, le=500)
    batch_size: int = Field(default=8, ge=1, le=256)
    lr: float = Field(default=1e-3, gt=0, le=1)
    model_size: Literal["tiny", "small", "full"] = "tiny"
    name: str | None = Field(default=None, max_length=200)
    make_default: bool = False


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 from the pydantic schemas: every JSON body is documented from the same classes that parse it."""
    schemas = {cls.__name__: cls.model_json_schema(ref_template="#/components/schemas/{model}")
               for cls in (PredictRequest, PreprocessRequest, TrainRequest)}
    components: dict[str, Any] = {}
    for name, schema in schemas.items():
        components.update(schema.pop("$defs", {}))
        components[name] = schema
    problem = {"content": {"application/problem+json": {"schema": {"type": "object"}}}, "description": "error"}

    def post(schema: str, multipart: dict[str, Any] | None = None) -> dict[str, Any]:
        content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
        if multipart:
            content["multipart/form-data"] = {"schema": {"type": "object", "properties": multipart}}
        return {"post": {"requestBody": {"required": True, "content": content},
                         "parameters": [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}],
                         "responses": {"202": {"description": "job accepted"}, "4XX": problem}}}

    binary = {"type": "string", "format": "binary"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "FTCN deepfake detection service", "version": "1.0"},
        "paths": {
            "/jobs/predict": post("PredictRequest", {"video": binary, "model_id": {"type": "string"},
                                                     "options": {"type": "string"}}),
            "/jobs/preprocess": post("PreprocessRequest", {"archive": binary, "options": {"type": "string"}}),
            "/jobs/train": post("TrainRequest"),
            "/jobs": {"get": {"responses": {"200": {"description": "jobs, newest first"}}}},
            "/jobs/{id}": {"get": {"responses": {"200": {"description": "a job"}, "404": problem}}},
            "/jobs/{id}/cancel": {"post": {"responses": {"200": {"description": "canceled"}, "409": problem}}},
            "/models": {"get": {"responses": {"200": {"description": "registered models"}}}},
            "/datasets": {"get": {"responses": {"200": {"description": "preprocessed datasets"}}}},
            "/healthcheck": {"get": {"responses": {"200": {"description": "alive"}}}},
        },
        "components": {"schemas": components},
    }
