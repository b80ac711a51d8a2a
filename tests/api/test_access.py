"""Access control and rate limits through the real app (Flask test client), with a real Redis for the limiter
and the broker: tokens are required, stored hashed, scoped to their owner; admin sees all; training needs the
train permission; limits answer 429 with Retry-After."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from api import create_app
from ftcn.checkpoints import save_checkpoint
from ftcn.models import build_model, tiny_config
from jobs.admin import main as admin_main
from jobs.admin import make_token, register_model
from jobs.settings import Settings
from tests.servers import redis_server

pytestmark = [pytest.mark.integration]
URL_BODY = {"video_url": "http://localhost:9/clip.mp4"}  # allow-listed below; no worker fetches it


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("access")
    with redis_server() as redis_url:
        env = {"FTCN_DATABASE_URL": f"sqlite:///{root / 'db.sqlite3'}", "FTCN_REDIS_URL": redis_url,
               "FTCN_STORAGE_URL": (root / "storage").as_uri(), "FTCN_SUBMIT_RATE_LIMIT": "5/minute",
               "FTCN_URL_ALLOWLIST": "localhost"}
        settings = Settings.from_env(env)
        app = create_app(settings)
        torch.manual_seed(0)
        checkpoint = save_checkpoint(root / "tiny.pt", build_model(tiny_config()), metadata={"purpose": "test"})
        shared = register_model(settings, checkpoint, "shared", default=True)
        private = register_model(settings, checkpoint, "alice-only", default=False, owner="alice")
        tokens = {"alice": make_token(settings, "alice"), "bob": make_token(settings, "bob"),
                  "trainer": make_token(settings, "carol", train=True),
                  "admin": make_token(settings, "ops", admin=True)}
        yield {"app": app, "client": app.test_client(), "settings": settings, "env": env, "root": root,
               "tokens": tokens, "shared": shared, "private": private}


def auth(stack: dict, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack['tokens'][who]}"}


def assert_problem(answer, status: int, slug: str) -> dict:
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert answer.headers["Content-Type"] == "application/problem+json"
    body = answer.get_json()
    assert body["type"].endswith("/" + slug) and body["detail"]
    return body


def test_a_token_is_required_and_checked(stack: dict) -> None:
    client = stack["client"]
    answer = client.get("/jobs")
    assert_problem(answer, 401, "unauthenticated")
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert_problem(client.get("/jobs", headers={"Authorization": "Bearer ftcn_not-a-real-token"}), 401, "bad-token")
    assert_problem(client.get("/jobs", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401, "unauthenticated")
    assert client.get("/jobs", headers=auth(stack, "alice")).status_code == 200
    for public in ("/healthcheck", "/openapi.json"):
        assert client.get(public).status_code == 200


def test_tokens_are_stored_hashed(stack: dict) -> None:
    database = stack["settings"].database_url[len("sqlite:///"):]
    with sqlite3.connect(database) as connection:
        stored = [row[0] for row in connection.execute("SELECT secret_hash FROM tokens")]
    assert len(stored) >= 4
    for secret in stack["tokens"].values():
        assert secret not in stored and all(secret not in value for value in stored)
    assert all(secret.encode() not in Path(database).read_bytes() for secret in stack["tokens"].values())


def test_owners_see_only_their_own(stack: dict) -> None:
    client = stack["client"]
    created = client.post("/jobs/predict", json=URL_BODY, headers=auth(stack, "alice"))
    assert created.status_code == 202, created.get_data(as_text=True)
    job_id = created.get_json()["id"]
    assert created.get_json()["owner"] == "alice"
    assert client.get(f"/jobs/{job_id}", headers=auth(stack, "alice")).status_code == 200
    assert_problem(client.get(f"/jobs/{job_id}", headers=auth(stack, "bob")), 404, "not-found")
    assert_problem(client.post(f"/jobs/{job_id}/cancel", headers=auth(stack, "bob")), 404, "not-found")
    assert job_id not in [j["id"] for j in client.get("/jobs", headers=auth(stack, "bob")).get_json()["items"]]
    assert job_id in [j["id"] for j in client.get("/jobs", headers=auth(stack, "admin")).get_json()["items"]]
    assert client.get(f"/jobs/{job_id}", headers=auth(stack, "admin")).status_code == 200

    # models: shared ones are visible to all, an owner's only to them (and admins)
    bob_models = {m["id"] for m in client.get("/models", headers=auth(stack, "bob")).get_json()["items"]}
    alice_models = {m["id"] for m in client.get("/models", headers=auth(stack, "alice")).get_json()["items"]}
    assert bob_models == {stack["shared"]} and alice_models == {stack["shared"], stack["private"]}
    answer = client.post("/jobs/predict", json={**URL_BODY, "model_id": stack["private"]}, headers=auth(stack, "bob"))
    assert_problem(answer, 404, "not-found")
    # Bob cancels his own job; Alice's stays queued
    own = client.post("/jobs/predict", json=URL_BODY, headers=auth(stack, "bob")).get_json()["id"]
    assert client.post(f"/jobs/{own}/cancel", headers=auth(stack, "bob")).get_json()["status"] == "canceled"
    assert client.get(f"/jobs/{job_id}", headers=auth(stack, "alice")).get_json()["status"] == "queued"


def test_idempotency_keys_are_per_owner(stack: dict) -> None:
    client = stack["client"]
    headers = {"Idempotency-Key": "same-key"}
    first = client.post("/jobs/predict", json=URL_BODY, headers={**headers, **auth(stack, "alice")})
    other = client.post("/jobs/predict", json=URL_BODY, headers={**headers, **auth(stack, "bob")})
    assert first.status_code == 202 and other.status_code == 202
    assert first.get_json()["id"] != other.get_json()["id"]
    # keys are bounded and printable; the stored form fits its column whatever the owner's name
    gina = {"Authorization": f"Bearer {make_token(stack['settings'], 'gina' * 50)}"}  # a 200-character owner
    for bad in ("k" * 129, "tab\tkey"):
        assert_problem(client.post("/jobs/predict", json=URL_BODY, headers={"Idempotency-Key": bad, **gina}),
                       400, "bad-idempotency-key")
    assert client.post("/jobs/predict", json=URL_BODY, headers={"Idempotency-Key": "k" * 128, **gina}
                       ).status_code == 202


def test_concurrent_requests_with_one_idempotency_key_make_one_job(stack: dict) -> None:
    app = create_app(Settings.from_env({**stack["env"], "FTCN_SUBMIT_RATE_LIMIT": "1000/minute"}), migrate=False)
    headers = {"Idempotency-Key": "raced", "Authorization": f"Bearer {make_token(stack['settings'], 'frank')}"}
    start = threading.Barrier(8)

    def submit(_: int):
        start.wait()
        return app.test_client().post("/jobs/predict", json=URL_BODY, headers=headers)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(submit, range(8)))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [202], [a.get_json() for a in answers]
    assert len({a.get_json()["id"] for a in answers}) == 1


def test_training_needs_the_train_permission(stack: dict) -> None:
    client = stack["client"]
    assert_problem(client.post("/jobs/train", json={"dataset_id": "x"}, headers=auth(stack, "alice")), 403, "forbidden")
    assert_problem(client.post("/jobs/preprocess", json={"s3_prefix": "s3://b/p/"}, headers=auth(stack, "alice")),
                   403, "forbidden")
    # the permission lets the request through to validation (no such dataset)
    assert_problem(client.post("/jobs/train", json={"dataset_id": "x"}, headers=auth(stack, "trainer")), 404,
                   "not-found")
    me = client.get("/me", headers=auth(stack, "trainer")).get_json()
    assert me["owner"] == "carol" and me["train"] is True and me["admin"] is False


def test_submissions_are_rate_limited_per_token(stack: dict) -> None:
    client = stack["client"]
    token = make_token(stack["settings"], "dave")
    headers = {"Authorization": f"Bearer {token}"}
    answers = [client.post("/jobs/predict", json=URL_BODY, headers=headers) for _ in range(6)]
    assert [a.status_code for a in answers[:5]] == [202] * 5
    body = assert_problem(answers[5], 429, "rate-limited")
    assert "5 per 1 minute" in body["detail"]
    assert 0 < int(answers[5].headers["Retry-After"]) <= 60
    # another token is not affected, and reads are not submissions
    assert client.post("/jobs/predict", json=URL_BODY, headers=auth(stack, "admin")).status_code == 202
    assert client.get("/jobs", headers=headers).status_code == 200


def test_guessing_tokens_is_rate_limited_per_address(stack: dict) -> None:
    app = create_app(Settings.from_env({**stack["env"], "FTCN_RATE_LIMIT": "5/hour"}), migrate=False)
    client = app.test_client()
    guesser = {"REMOTE_ADDR": "10.9.8.7"}
    answers = [client.get("/jobs", headers={"Authorization": f"Bearer ftcn_guess{i}"}, environ_base=guesser)
               for i in range(6)]
    assert [a.status_code for a in answers[:5]] == [401] * 5
    assert_problem(answers[5], 429, "rate-limited")
    # a real token from another address is looked up, and then served from the cache
    assert client.get("/me", headers=auth(stack, "bob"), environ_base={"REMOTE_ADDR": "10.9.8.6"}).status_code == 200


def test_admin_cli_creates_lists_and_revokes(stack: dict, capsys, monkeypatch) -> None:
    for key, value in stack["env"].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr("api.access.AUTH_CACHE_S", 0.5)  # how long an API process trusts a verified token
    assert admin_main(["token", "create", "--owner", "erin", "--train"]) == 0
    secret = capsys.readouterr().out.strip()
    client = stack["client"]
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/me", headers=headers).get_json() == {
        "owner": "erin", "admin": False, "train": True, "auth": "tokens",
        "max_upload_mb": stack["settings"].max_upload_mb, "direct_upload_mb": stack["settings"].direct_upload_mb}
    assert admin_main(["token", "list"]) == 0
    listing = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert secret not in json.dumps(listing)
    erin = next(t for t in listing if t["owner"] == "erin")
    assert admin_main(["token", "revoke", erin["id"]]) == 0
    time.sleep(0.6)
    assert_problem(client.get("/me", headers=headers), 401, "bad-token")
    assert admin_main(["token", "revoke", "no-such-id"]) == 2


def test_open_mode_needs_no_token(stack: dict, tmp_path: Path) -> None:
    settings = Settings.from_env({**stack["env"], "FTCN_AUTH": "open",
                                  "FTCN_DATABASE_URL": f"sqlite:///{tmp_path / 'open.sqlite3'}"})
    client = create_app(settings).test_client()
    assert client.get("/me").get_json()["admin"] is True


def test_train_jobs_name_the_standard_dataset_and_recipe_they_expect(stack: dict) -> None:
    from jobs.db import session_scope
    from jobs.models import Dataset

    with session_scope(stack["app"].extensions["ftcn"].sessions) as session:
        session.add(Dataset(id="ffpp-clips", storage_prefix="datasets/ffpp-clips", owner="carol",
                            counts={"kind": "ffpp", "videos": 4}))
        session.add(Dataset(id="own-clips", storage_prefix="datasets/own-clips", owner="carol", counts={"videos": 4}))
    client, headers = stack["client"], auth(stack, "trainer")
    body = assert_problem(client.post("/jobs/train", json={"dataset_id": "own-clips", "dataset": "ffpp"},
                                      headers=headers), 422, "wrong-dataset")
    assert body["detail"] == "dataset own-clips was not preprocessed as a standard dataset, not ffpp"
    assert_problem(client.post("/jobs/train", json={"dataset_id": "ffpp-clips", "dataset": "celebdf"},
                               headers=headers), 422, "wrong-dataset")
    assert_problem(client.post("/jobs/train", json={"dataset_id": "ffpp-clips", "recipe": "imagenet"},
                               headers=headers), 422, "invalid-request")
    answer = client.post("/jobs/train", json={"dataset_id": "ffpp-clips", "dataset": "ffpp", "recipe": "paper",
                                              "epochs": 2}, headers=headers)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    params = client.get(answer.headers["Location"], headers=headers).get_json()["params"]
    assert params["recipe"] == "paper" and params["given"] == ["dataset", "dataset_id", "epochs"]


def test_batches_are_private_idempotent_and_cancelable(stack: dict) -> None:
    """POST /batches with an Idempotency-Key makes one batch (the same request again answers 200 with it, another
    body 409); another owner cannot see it; a refused item names its index and creates nothing; canceling stops
    every job that had not ended and so ends the batch."""
    client = stack["app"].test_client()
    mine = {"Authorization": f"Bearer {make_token(stack['settings'], 'batcher')}"}
    theirs = {"Authorization": f"Bearer {make_token(stack['settings'], 'someone-else')}"}
    body = {"items": [{**URL_BODY, "label": "real"}, {"video_url": "http://localhost:9/b.mp4", "label": "fake"},
                      {"video_url": "http://localhost:9/c.mp4"}], "name": "three"}
    first = client.post("/batches", json=body, headers={**mine, "Idempotency-Key": "batch-1"})
    assert first.status_code == 202 and first.headers["Location"] == f"/batches/{first.get_json()['id']}"
    batch = first.get_json()
    assert batch["total"] == 3 and batch["counts"]["queued"] == 3 and batch["status"] == "running"
    again = client.post("/batches", json=body, headers={**mine, "Idempotency-Key": "batch-1"})
    assert again.status_code == 200 and again.get_json()["id"] == batch["id"]
    assert_problem(client.post("/batches", json={**body, "name": "other"}, headers={**mine, "Idempotency-Key":
                                                                                   "batch-1"}), 409, "conflict")
    assert_problem(client.get(f"/batches/{batch['id']}", headers=theirs), 404, "not-found")
    assert batch["id"] not in [b["id"] for b in client.get("/batches", headers=theirs).get_json()["items"]]
    assert_problem(client.post(f"/batches/{batch['id']}/cancel", headers=theirs), 404, "not-found")
    unsafe = {"items": [URL_BODY, {"video_url": "http://169.254.169.254/latest/"}]}
    refused = assert_problem(client.post("/batches", json=unsafe, headers=mine), 422, "unsafe-url")
    assert refused["detail"].startswith("item 1:")
    assert [b["id"] for b in client.get("/batches", headers=mine).get_json()["items"]] == [batch["id"]]
    canceled = client.post(f"/batches/{batch['id']}/cancel", headers=mine).get_json()
    assert canceled["counts"]["canceled"] == 3 and canceled["status"] == "finished"
    assert canceled["report"]["videos"] == 2 and canceled["report"]["scored"] == 0  # labelled, none scored
