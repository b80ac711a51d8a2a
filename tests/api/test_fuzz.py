"""The API fuzzed from its own OpenAPI document (Schemathesis + Hypothesis, valid and invalid inputs, bounded):
no 5xx, every status documented, every body matching its schema. A real Redis takes the enqueued jobs."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api import create_app
from ftcn.checkpoints import save_checkpoint
from ftcn.models import build_model, tiny_config
from jobs.admin import make_token, register_model
from jobs.settings import Settings
from tests.servers import redis_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 100  # valid + invalid, 10 operations: up to 1,000 generated requests
SEEN: Counter = Counter()


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory) -> Iterator[tuple]:
    root: Path = tmp_path_factory.mktemp("fuzz")
    with redis_server() as redis_url:
        app_settings = Settings.from_env({
            "FTCN_DATABASE_URL": f"sqlite:///{root / 'db.sqlite3'}", "FTCN_REDIS_URL": redis_url,
            "FTCN_STORAGE_URL": (root / "storage").as_uri(), "FTCN_MAX_UPLOAD_MB": "2",
            "FTCN_RATE_LIMIT": "1000000/minute", "FTCN_SUBMIT_RATE_LIMIT": "1000000/minute",
            "FTCN_PREDICT_WAIT_S": "0.5"})  # no worker runs here: POST /predict answers 202 quickly
        app = create_app(app_settings)
        torch.manual_seed(0)
        register_model(app_settings, save_checkpoint(root / "tiny.pt", build_model(tiny_config())), "tiny",
                       default=True)
        token = make_token(app_settings, "fuzzer", train=True)
        yield app, token
    print("FUZZ-FIGURES " + json.dumps({"cases": sum(SEEN.values()), "status_counts": dict(sorted(SEEN.items())),
                                        "server_errors": sum(v for k, v in SEEN.items() if k >= 500)}))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_api_conforms_to_its_openapi_document(fuzz_target, mode: GenerationMode) -> None:
    """Every operation, generated cases by strategy (driven by Hypothesis directly: the pytest plugin of this
    Schemathesis release does not run under pytest 9)."""
    app, token = fuzz_target
    api = schemathesis.openapi.from_wsgi("/openapi.json", app)
    # /readyz is left out: it has no input, and its 503 (no worker runs in this test) is its documented purpose
    operations = [op for op in (result.ok() for result in api.get_all_operations()) if op.path != "/readyz"]
    assert len(operations) >= 10
    for operation in operations:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES_PER_OPERATION // 2, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case) -> None:
            response = case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
            SEEN[response.status_code] += 1
            assert response.status_code < 500, response.text

        try:
            check()
        except Unsatisfiable:  # nothing to make invalid: the operation takes no parameters or body
            assert mode is GenerationMode.NEGATIVE and not operation.body and not list(operation.iter_parameters())


JSON_ENDPOINTS = ("/jobs/predict", "/jobs/preprocess", "/jobs/train", "/uploads", "/predict")


def test_hostile_json_corpus_against_every_json_endpoint(fuzz_target) -> None:
    """The hand-made hostile JSON (deep nesting, huge strings and numbers, duplicate keys, invalid UTF-8, NaN;
    tests/api/test_bodies.py) next to the generated cases: every one answered 4xx with a problem body."""
    from tests.api.test_bodies import hostile_bodies

    app, token = fuzz_target
    client = app.test_client()
    limit = app.extensions["ftcn"].settings.max_json_kb * 1024
    for endpoint in JSON_ENDPOINTS:
        for name, (body, _) in hostile_bodies(limit).items():
            answer = client.post(endpoint, data=body, headers={"Authorization": f"Bearer {token}",
                                                               "Content-Type": "application/json"})
            SEEN[answer.status_code] += 1
            assert 400 <= answer.status_code < 500, (endpoint, name, answer.status_code)
            assert answer.headers["Content-Type"] == "application/problem+json", (endpoint, name)
