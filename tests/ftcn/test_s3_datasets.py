"""Datasets in S3: preprocess writes to, and split/train read from, a real S3 protocol server."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftcn.cli import main
from ftcn.datasets.split import read_manifest
from ftcn.datasets.storage import open_store
from tests.servers import s3_server

pytestmark = pytest.mark.integration


@pytest.fixture()
def s3_endpoint(monkeypatch) -> str:
    boto3 = pytest.importorskip("boto3")
    with s3_server() as endpoint:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("FTCN_S3_ENDPOINT_URL", endpoint)
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="datasets")
        yield endpoint


def test_preprocess_split_and_train_on_s3(tmp_path: Path, s3_endpoint: str, capsys) -> None:
    synth = tmp_path / "synth"
    assert main(["synth", str(synth), "--videos", "6", "--seed", "4", "--frames", "24"]) == 0
    location = "s3://datasets/runs/synthetic"
    assert main(["preprocess", str(synth), location, "--max-clips", "2"]) == 0
    assert "6 processed" in capsys.readouterr().out
    store = open_store(location, s3_endpoint)  # the library reads no environment: the caller gives the endpoint
    rows = read_manifest(store)
    assert rows and all(store.exists(r["path"]) for r in rows if r["status"] == "ok")
    assert main(["preprocess", str(synth), location, "--max-clips", "2"]) == 0
    assert "0 processed, 6 already done" in capsys.readouterr().out
    assert main(["split", location, "--val", "0.34", "--test", "0"]) == 0
    assert store.exists("split.csv")
    assert main(["train", location, "--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "4"]) == 0
    assert (tmp_path / "run" / "best.pt").exists()
