"""Artifact storage: the local default (signed expiring links) and S3 against a real S3 protocol server."""

from __future__ import annotations

import io
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from jobs.settings import Settings
from jobs.storage import PART_BYTES, LocalStorage, StorageError, open_storage
from tests.servers import s3_server


def exercise(storage, tmp_path: Path) -> None:
    storage.put_bytes("jobs/a/result.json", b'{"ok": true}', "application/json")
    source = tmp_path / "video.mp4"
    source.write_bytes(b"\0" * 1000)
    storage.put_file("jobs/a/annotated.mp4", source, "video/mp4")
    assert storage.exists("jobs/a/result.json") and not storage.exists("jobs/b/result.json")
    assert storage.get_bytes("jobs/a/result.json") == b'{"ok": true}'
    storage.download("jobs/a/annotated.mp4", tmp_path / "copy.mp4")
    assert (tmp_path / "copy.mp4").read_bytes() == source.read_bytes()
    for bad in ("../etc/passwd", "/abs", "jobs/../../x", "jobs//x", ""):
        with pytest.raises(StorageError):
            storage.put_bytes(bad, b"x")
    # streamed: one PUT below a part, several parts above (S3 multipart), bytes and listing as written
    big = bytes(range(256)) * (PART_BYTES * 2 // 256 + 3000)
    storage.put_stream("jobs/a/input/video.mp4", io.BytesIO(big), "video/mp4")
    storage.put_stream("jobs/a/input/small.mp4", io.BytesIO(b"small"), "video/mp4")
    assert storage.get_bytes("jobs/a/input/video.mp4") == big
    assert storage.get_bytes("jobs/a/input/small.mp4") == b"small"
    assert storage.keys("jobs/a") == ["jobs/a/annotated.mp4", "jobs/a/input/small.mp4", "jobs/a/input/video.mp4",
                                      "jobs/a/result.json"]
    assert storage.keys("jobs/nothing") == []
    storage.delete_prefix("jobs/a")
    assert not storage.exists("jobs/a/result.json") and not storage.exists("jobs/a/annotated.mp4")
    assert storage.keys("jobs/a") == []


def test_local_storage_and_signed_links(tmp_path: Path) -> None:
    storage = open_storage(Settings(storage_url=(tmp_path / "store").as_uri(), secret_key="s3cret"), "http://api")
    assert isinstance(storage, LocalStorage)
    exercise(storage, tmp_path)
    link = urlparse(storage.link("jobs/x/result.json", ttl_s=60))
    query = {k: v[0] for k, v in parse_qs(link.query).items()}
    assert link.path == "/files/jobs/x/result.json"
    assert storage.verify("jobs/x/result.json", int(query["expires"]), query["signature"])
    assert not storage.verify("jobs/y/result.json", int(query["expires"]), query["signature"])
    assert not storage.verify("jobs/x/result.json", int(query["expires"]) + 1, query["signature"])
    assert not storage.verify("jobs/x/result.json", int(time.time()) - 1,
                              storage.link("jobs/x/result.json", -1).split("signature=")[1])


@pytest.mark.integration
def test_s3_storage_and_presigned_links(tmp_path: Path, monkeypatch) -> None:
    boto3 = pytest.importorskip("boto3")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with s3_server() as endpoint:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="artifacts")
        storage = open_storage(Settings(storage_url="s3://artifacts/service", s3_endpoint_url=endpoint))
        exercise(storage, tmp_path)
        storage.put_bytes("jobs/z/result.json", b"{}")
        with urllib.request.urlopen(storage.link("jobs/z/result.json", 60)) as response:
            assert response.read() == b"{}"
        from urllib.parse import parse_qs, urlparse

        query = parse_qs(urlparse(storage.link("jobs/z/result.json", 123)).query)  # the lifetime is the one asked
        assert query.get("X-Amz-Expires") == ["123"] or query.get("Expires")
        assert storage.dataset_location("datasets/d1") == "s3://artifacts/service/datasets/d1"
