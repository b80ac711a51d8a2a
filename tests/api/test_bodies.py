"""What clients send, bounded: a corpus of hostile JSON against every JSON entry point (always a 4xx problem,
never a 5xx, nothing created), the JSON size limit, and timestamps as RFC 3339 with their zone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import torch

from api import create_app
from api.bodies import MAX_JSON_DEPTH
from ftcn.checkpoints import save_checkpoint
from ftcn.models import build_model, tiny_config
from jobs.admin import make_token, register_model
from jobs.settings import Settings
from tests.servers import redis_server

pytestmark = [pytest.mark.integration]
VIDEO_URL = "http://localhost:9/clip.mp4"  # allow-listed below; no worker fetches it


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("bodies")
    with redis_server() as redis_url:
        settings = Settings.from_env({
            "FTCN_DATABASE_URL": f"sqlite:///{root / 'db.sqlite3'}", "FTCN_REDIS_URL": redis_url,
            "FTCN_STORAGE_URL": (root / "storage").as_uri(), "FTCN_URL_ALLOWLIST": "localhost",
            "FTCN_RATE_LIMIT": "100000/minute", "FTCN_SUBMIT_RATE_LIMIT": "100000/minute", "FTCN_MAX_JSON_KB": "256"})
        app = create_app(settings)  # migrates the database
        torch.manual_seed(0)
        checkpoint = save_checkpoint(root / "tiny.pt", build_model(tiny_config()), metadata={"purpose": "test"})
        register_model(settings, checkpoint, "shared", default=True)
        token = make_token(settings, "ops", admin=True, train=True)
        yield {"client": app.test_client(), "settings": settings,
               "headers": {"Authorization": f"Bearer {token}"}}


def _nested(depth: int) -> str:
    return '{"video_url": "%s", "options": %s}' % (VIDEO_URL, '{"a": ' * (depth - 1) + "1" + "}" * (depth - 1))


def hostile_bodies(limit_bytes: int) -> dict[str, tuple[bytes, int]]:
    """name -> (body, expected status)."""
    url = json.dumps(VIDEO_URL)
    return {
        "20k nested brackets": (b"[" * 20_000 + b"]" * 20_000, 400),
        "20k nested objects": (b'{"a":' * 20_000 + b"1" + b"}" * 20_000, 400),
        "parseable but too deep": (_nested(MAX_JSON_DEPTH + 5).encode(), 400),
        "over the size limit": (json.dumps({"video_url": VIDEO_URL, "pad": "x" * limit_bytes}).encode(), 413),
        "huge string under the limit": (json.dumps({"video_url": "http://localhost:9/" + "a" * (limit_bytes // 2)}
                                                   ).encode(), 422),
        "huge integer": (b'{"video_url": %s, "options": {"stride": %s}}' % (url.encode(), b"9" * 5000), 400),
        "huge float": (b'{"video_url": %s, "options": {"stride": 1e999}}' % url.encode(), 400),
        "NaN": (b'{"video_url": %s, "options": {"stride": NaN}}' % url.encode(), 400),
        "-Infinity": (b'{"video_url": %s, "options": {"stride": -Infinity}}' % url.encode(), 400),
        "duplicate keys": (b'{"video_url": %s, "video_url": %s}' % (url.encode(), url.encode()), 400),
        "invalid UTF-8": (b'{"video_url": "http://localhost:9/\xff\xfe.mp4"}', 400),
        "lone surrogate": (b'{"video_url": "http://localhost:9/\\ud800.mp4"}', 422),
        "not an object": (b"[1, 2, 3]", 400),
        "empty": (b"", 400),
        "truncated": (b'{"video_url": ', 400),
    }


ENDPOINTS = ("/jobs/predict", "/jobs/preprocess", "/jobs/train")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_hostile_json_is_always_a_4xx_problem_and_creates_nothing(stack: dict, endpoint: str) -> None:
    client, headers = stack["client"], stack["headers"]
    before = client.get("/jobs", headers=headers).get_json()["total"]
    for name, (body, status) in hostile_bodies(stack["settings"].max_json_kb * 1024).items():
        answer = client.post(endpoint, data=body, headers={**headers, "Content-Type": "application/json"})
        assert 400 <= answer.status_code < 500, (name, answer.status_code, answer.get_data(as_text=True)[:300])
        assert answer.headers["Content-Type"] == "application/problem+json", name
        if endpoint == "/jobs/predict" or status in (400, 413):  # other endpoints may refuse the shape first (422)
            assert answer.status_code == status, (name, answer.get_json())
    assert client.get("/jobs", headers=headers).get_json()["total"] == before


def test_a_declared_length_over_the_limit_is_refused_before_reading(stack: dict) -> None:
    class Unread:
        """A body that fails the test if the server reads it."""

        def read(self, *args) -> bytes:
            raise AssertionError("the body was read")

        def tell(self) -> int:
            return 0

        def seek(self, *args) -> int:
            return 0

    client, headers = stack["client"], stack["headers"]
    limit = stack["settings"].max_json_kb * 1024
    answer = client.post("/jobs/predict", input_stream=Unread(), headers={**headers, "Content-Type": "application/json"},
                         environ_overrides={"CONTENT_LENGTH": str(limit + 1)})
    assert answer.status_code == 413 and answer.get_json()["type"].endswith("/too-large")


@pytest.mark.parametrize("options, slug", [
    ('{"a":' * 20_000 + "1" + "}" * 20_000, "too-deeply-nested"),
    ('{"stride": NaN}', "malformed-json"),
    ('{"stride": 2, "stride": 3}', "malformed-json"),
    ("[]", "malformed-json"),
])
def test_the_multipart_options_field_follows_the_same_rules(stack: dict, options: str, slug: str) -> None:
    from io import BytesIO

    answer = stack["client"].post("/jobs/predict", headers=stack["headers"], content_type="multipart/form-data",
                                  data={"video": (BytesIO(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64), "clip.mp4"),
                                        "options": options})
    assert answer.status_code == 400 and answer.get_json()["type"].endswith("/" + slug), answer.get_json()


def test_timestamps_are_rfc3339_utc_with_their_zone(stack: dict) -> None:
    client, headers = stack["client"], stack["headers"]
    created = client.post("/jobs/predict", json={"video_url": VIDEO_URL}, headers=headers)
    assert created.status_code == 202, created.get_json()
    job = client.get(created.headers["Location"], headers=headers).get_json()
    stamp = job["created_at"]
    assert stamp.endswith("Z")
    moment = datetime.fromisoformat(stamp)
    assert moment.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - moment) < timedelta(minutes=5)
    for model in client.get("/models", headers=headers).get_json()["items"]:
        assert model["created_at"].endswith("Z")
    document = client.get("/openapi.json").get_json()
    assert document["components"]["schemas"]["Job"]["properties"]["created_at"]["format"] == "date-time"


def test_hostile_corpus_covers_the_rules_it_claims(tmp_path: Path) -> None:
    """The corpus itself: each body really is what its name says (so a passing test above means something)."""
    bodies = hostile_bodies(1024)
    assert len(bodies["over the size limit"][0]) > 1024
    with pytest.raises(RecursionError):
        json.loads(bodies["20k nested brackets"][0])
    assert json.loads(bodies["huge float"][0])["options"]["stride"] == float("inf")
