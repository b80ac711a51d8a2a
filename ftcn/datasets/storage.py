"""Where preprocessed datasets live: a local folder or an S3 prefix (any S3-compatible store), one small interface.

boto3 is imported only when an ``s3://`` location is used, so ``ftcn`` stays importable without it.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from ftcn.errors import DatasetError


class DatasetStore(Protocol):
    location: str

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def keys(self, prefix: str = "") -> list[str]: ...


def _check_key(key: str) -> str:
    parts = Path(key).parts
    if not key or key.startswith("/") or ".." in parts:
        raise DatasetError(f"unsafe storage key {key!r}")
    return key


@dataclass
class LocalStore:
    root: Path

    @property
    def location(self) -> str:
        return str(self.root)

    def put(self, key: str, data: bytes) -> None:
        """Atomic: written beside, then renamed, so a reader never sees half a file."""
        path = self.root / _check_key(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        os.replace(partial, path)

    def get(self, key: str) -> bytes:
        return (self.root / _check_key(key)).read_bytes()

    def exists(self, key: str) -> bool:
        return (self.root / _check_key(key)).is_file()

    def keys(self, prefix: str = "") -> list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return []
        return sorted(
            str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file() and not p.name.endswith(".partial")
        )


@dataclass
class S3Store:
    """``s3://bucket/prefix`` at ``endpoint_url`` (None: AWS, or boto3's own ``AWS_ENDPOINT_URL_S3``; credentials:
    boto3's usual environment variables). An S3 PUT is atomic, so no partial objects are ever visible.

    The endpoint is given by whoever opens the store (the CLI from ``FTCN_S3_ENDPOINT_URL``, the worker from its
    settings), never read here. The client is made on first use and left out of pickling, so a store can be
    handed to the processes of a pool (preprocessing) as it is."""

    bucket: str
    prefix: str
    endpoint_url: str | None = None

    def __post_init__(self) -> None:
        if importlib.util.find_spec("boto3") is None:  # said now, with the way out, rather than at first use
            raise RuntimeError("s3:// locations need boto3 (pip install boto3)")

    @functools.cached_property
    def _client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url)

    def __getstate__(self) -> dict[str, Any]:
        return {name: value for name, value in self.__dict__.items() if name != "_client"}

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _key(self, key: str) -> str:
        return f"{self.prefix.rstrip('/')}/{_check_key(key)}" if self.prefix else _check_key(key)

    def put(self, key: str, data: bytes) -> None:
        self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get(self, key: str) -> bytes:
        return self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def exists(self, key: str) -> bool:
        return s3_object_exists(self._client, self.bucket, self._key(key))

    def keys(self, prefix: str = "") -> list[str]:
        base = self._key(prefix) if prefix else (self.prefix.rstrip("/") + "/" if self.prefix else "")
        strip = len(self.prefix.rstrip("/")) + 1 if self.prefix else 0
        found = []
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
            found += [item["Key"][strip:] for item in page.get("Contents", [])]
        return sorted(found)


def s3_object_exists(client, bucket: str, key: str) -> bool:
    """HEAD an object: False for "not found", any other error raised (an outage is not an absence)."""
    from botocore.exceptions import ClientError

    try:
        client.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def open_store(location: str | Path | DatasetStore, endpoint_url: str | None = None) -> DatasetStore:
    """The store at ``location`` (a folder, or ``s3://bucket/prefix`` at ``endpoint_url``); a store is returned
    as it is, so functions that take a location take an opened store too."""
    if not isinstance(location, (str, Path)):
        return location
    text = str(location)
    if text.startswith("s3://"):
        parsed = urlparse(text)
        if not parsed.netloc:
            raise DatasetError(f"{text}: an s3:// location needs a bucket")
        return S3Store(parsed.netloc, parsed.path.lstrip("/"), endpoint_url)
    return LocalStore(Path(text))
