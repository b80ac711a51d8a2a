"""Artifact storage for the service: inputs, results, annotated videos, datasets and models.

Keys are built in ``jobs.keys``. Two implementations behind one interface: S3 (any S3-compatible store; presigned
GET links) and local files (the embedded default; links are served by the API and carry an expiring HMAC
signature, so a link cannot be forged or reused forever).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import quote, urlparse

from ftcn.datasets.storage import s3_object_exists
from jobs.settings import Settings

#: Buffer of streamed copies to local files, and the size of S3 multipart parts (S3's minimum part is 5 MB).
COPY_BYTES = 1024 * 1024
PART_BYTES = 8 * 1024 * 1024


class StorageError(RuntimeError):
    pass


class SourceTooLarge(ValueError):
    """A client's s3:// source holds more objects or bytes than allowed."""


class SourceUnreadable(ValueError):
    """A client's s3:// source cannot be listed or read, or is empty (its problem, not our store's)."""


def check_key(key: str) -> str:
    """Keys are relative, normalised paths; anything that could escape the storage root is refused."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in key:
        raise StorageError(f"unsafe storage key {key!r}")
    return key


class Storage(Protocol):
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None: ...

    def put_stream(self, key: str, stream: BinaryIO, content_type: str = "application/octet-stream") -> None:
        """Store a readable stream in chunks (S3: a multipart upload above 8 MB), never whole in memory."""
        ...

    def keys(self, prefix: str) -> list[str]:
        """Every stored key under a prefix (what erasure must leave empty)."""
        ...

    def upload_url(self, key: str, ttl_s: int, content_type: str) -> str:
        """A URL a client PUTs one object to, without a token: S3 presigned, or the API's own signed endpoint."""
        ...

    def size(self, key: str) -> int | None:
        """The object's size in bytes (None: there is none)."""
        ...

    def head(self, key: str, count: int) -> bytes:
        """The object's first ``count`` bytes."""
        ...

    def move(self, source: str, target: str) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def download(self, key: str, path: Path) -> None: ...

    def exists(self, key: str) -> bool: ...

    def delete_prefix(self, prefix: str) -> None: ...

    def link(self, key: str, ttl_s: int) -> str: ...

    def dataset_location(self, prefix: str) -> str:
        """Where ``ftcn`` dataset functions can read/write this prefix (a folder or an s3:// URL)."""
        ...


#: Prefix of what upload URLs sign, so a download link's signature is never a valid upload signature.
UPLOAD_SIGNING = "PUT "


def sign(secret: str, key: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()


@dataclass
class LocalStorage:
    root: Path
    secret: str
    base_url: str = ""  # the API's external URL; links are /files/<key>?expires=..&signature=..

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        os.replace(partial, path)

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        shutil.copyfile(path, partial)
        os.replace(partial, target)

    def put_stream(self, key: str, stream: BinaryIO, content_type: str = "application/octet-stream") -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        with open(partial, "wb") as handle:
            shutil.copyfileobj(stream, handle, COPY_BYTES)
        os.replace(partial, target)

    def keys(self, prefix: str) -> list[str]:
        folder = self._path(prefix.rstrip("/"))
        return sorted(path.relative_to(self.root).as_posix() for path in folder.rglob("*") if path.is_file()) \
            if folder.is_dir() else []

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise StorageError(f"object {key} is missing from storage") from None

    def download(self, key: str, path: Path) -> None:
        try:
            shutil.copyfile(self._path(key), path)
        except FileNotFoundError:
            raise StorageError(f"object {key} is missing from storage") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete_prefix(self, prefix: str) -> None:
        target = self._path(prefix.rstrip("/"))
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()

    def link(self, key: str, ttl_s: int) -> str:
        expires = int(time.time()) + ttl_s
        return f"{self.base_url}/files/{quote(check_key(key))}?expires={expires}&signature={sign(self.secret, key, expires)}"

    def verify(self, key: str, expires: int, signature: str) -> bool:
        """True if a link for ``key`` is authentic and not expired (constant-time comparison)."""
        return expires >= time.time() and hmac.compare_digest(sign(self.secret, key, expires), signature)

    def upload_url(self, key: str, ttl_s: int, content_type: str) -> str:
        """``PUT /uploads/<key>`` on the API, signed apart from download links (one cannot stand for the other)."""
        expires = int(time.time()) + ttl_s
        return (f"{self.base_url}/uploads/{quote(check_key(key))}?expires={expires}"
                f"&signature={sign(self.secret, UPLOAD_SIGNING + key, expires)}")

    def verify_upload(self, key: str, expires: int, signature: str) -> bool:
        return self.verify(UPLOAD_SIGNING + key, expires, signature)

    def size(self, key: str) -> int | None:
        path = self._path(key)
        return path.stat().st_size if path.is_file() else None

    def head(self, key: str, count: int) -> bytes:
        with open(self._path(key), "rb") as handle:
            return handle.read(count)

    def move(self, source: str, target: str) -> None:
        destination = self._path(target)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._path(source), destination)

    def dataset_location(self, prefix: str) -> str:
        return str(self._path(prefix.rstrip("/")))


def _s3_errors(method):
    """Object-store failures (after botocore's own retries with backoff) surface as StorageError, one type the
    API maps to 503 and the worker to a failed job with the reason."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return method(self, *args, **kwargs)
        except (BotoCoreError, ClientError, Boto3Error) as exc:
            raise StorageError(f"object store error ({type(exc).__name__}: {exc})") from exc
    return wrapper


def s3_client(endpoint_url: str | None, attempts: int = 5):
    """The one way this service makes an S3 client: "standard" retry mode (exponential backoff with jitter on
    throttling, 5xx and connection errors) and bounded timeouts."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": attempts, "mode": "standard"}, connect_timeout=5, read_timeout=60)
    return boto3.client("s3", endpoint_url=endpoint_url, config=config)


@dataclass
class S3Storage:
    bucket: str
    prefix: str
    endpoint_url: str | None = None
    attempts: int = 5
    #: Where users reach the store, if not at ``endpoint_url``: presigned links are signed for it (signing is
    #: local, so this client never connects anywhere).
    public_url: str | None = None

    def __post_init__(self) -> None:
        self._client = s3_client(self.endpoint_url, self.attempts)
        self._signer = s3_client(self.public_url, self.attempts) if self.public_url else self._client

    def _key(self, key: str) -> str:
        return f"{self.prefix.strip('/')}/{check_key(key)}" if self.prefix.strip("/") else check_key(key)

    @_s3_errors
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)

    @_s3_errors
    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        self._client.upload_file(str(path), self.bucket, self._key(key), ExtraArgs={"ContentType": content_type})

    @_s3_errors
    def put_stream(self, key: str, stream: BinaryIO, content_type: str = "application/octet-stream") -> None:
        """One part in memory at a time: a single PUT below ``PART_BYTES``, else a multipart upload of parts read
        one after the other (boto3's transfer manager reads parts of a file object ahead of its uploads: 200 MB of
        API memory for two 400 MB uploads, bench/bench_uploads.py)."""
        part = stream.read(PART_BYTES)
        target = self._key(key)
        if len(part) < PART_BYTES:
            self._client.put_object(Bucket=self.bucket, Key=target, Body=part, ContentType=content_type)
            return
        upload_id = self._client.create_multipart_upload(Bucket=self.bucket, Key=target,
                                                         ContentType=content_type)["UploadId"]
        try:
            parts = []
            while part:
                answer = self._client.upload_part(Bucket=self.bucket, Key=target, UploadId=upload_id,
                                                  PartNumber=len(parts) + 1, Body=part)
                parts.append({"PartNumber": len(parts) + 1, "ETag": answer["ETag"]})
                part = stream.read(PART_BYTES)
            self._client.complete_multipart_upload(Bucket=self.bucket, Key=target, UploadId=upload_id,
                                                   MultipartUpload={"Parts": parts})
        except BaseException:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=target, UploadId=upload_id)
            raise

    @_s3_errors
    def keys(self, prefix: str) -> list[str]:
        base = self._key(prefix.rstrip("/")) + "/"
        strip = len(self._key(prefix.rstrip("/"))) - len(prefix.rstrip("/"))
        return sorted(item["Key"][strip:] for page in self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=base) for item in page.get("Contents", []))

    @_s3_errors
    def get_bytes(self, key: str) -> bytes:
        return self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    @_s3_errors
    def download(self, key: str, path: Path) -> None:
        self._client.download_file(self.bucket, self._key(key), str(path))

    @_s3_errors
    def exists(self, key: str) -> bool:
        return s3_object_exists(self._client, self.bucket, self._key(key))

    @_s3_errors
    def delete_prefix(self, prefix: str) -> None:
        base = self._key(prefix.rstrip("/")) + "/"
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})

    def upload_url(self, key: str, ttl_s: int, content_type: str) -> str:
        return self._signer.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": self._key(key), "ContentType": content_type},
            ExpiresIn=ttl_s)

    @_s3_errors
    def size(self, key: str) -> int | None:
        try:
            return int(self._client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"])
        except self._client.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    @_s3_errors
    def head(self, key: str, count: int) -> bytes:
        return self._client.get_object(Bucket=self.bucket, Key=self._key(key),
                                       Range=f"bytes=0-{count - 1}")["Body"].read()

    @_s3_errors
    def move(self, source: str, target: str) -> None:
        """Server-side copy (multipart above 5 GB is the store's business: inputs are far smaller), then delete."""
        self._client.copy_object(Bucket=self.bucket, Key=self._key(target),
                                 CopySource={"Bucket": self.bucket, "Key": self._key(source)})
        self._client.delete_object(Bucket=self.bucket, Key=self._key(source))

    def link(self, key: str, ttl_s: int) -> str:
        return self._signer.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": self._key(key)},
                                                   ExpiresIn=ttl_s)

    def dataset_location(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{self._key(prefix.rstrip('/'))}"


def open_storage(settings: Settings, base_url: str = "") -> Storage:
    url = settings.storage_url
    if url.startswith("s3://"):
        parsed = urlparse(url)
        return S3Storage(parsed.netloc, parsed.path.lstrip("/"), settings.s3_endpoint_url, settings.storage_attempts,
                         settings.s3_public_url)
    return LocalStorage(Path(urlparse(url).path), settings.secret_key, base_url)


def copy_s3_prefix(url: str, folder: Path, *, endpoint_url: str | None, max_files: int, max_bytes: int) -> None:
    """Copy the objects under a client's ``s3://bucket/prefix`` into ``folder`` (keys checked like ours).

    Raises :class:`SourceTooLarge` past ``max_files`` or ``max_bytes``, :class:`SourceUnreadable` when the prefix
    cannot be read or holds nothing.
    """
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, prefix = url[len("s3://"):].partition("/")
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    folder.mkdir(parents=True, exist_ok=True)
    client, budget, count = s3_client(endpoint_url), max_bytes, 0
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                count += 1
                budget -= item["Size"]
                if count > max_files or budget < 0:
                    raise SourceTooLarge(f"{url} holds more than the service accepts ({max_files} files, "
                                         f"{max_bytes} bytes)")
                relative = item["Key"][len(prefix):]
                if not relative or relative.endswith("/"):
                    continue
                target = folder / check_key(relative)
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, item["Key"], str(target))
    except (BotoCoreError, ClientError, Boto3Error, StorageError) as exc:
        raise SourceUnreadable(f"cannot read {url}: {exc}") from None
    if count == 0:
        raise SourceUnreadable(f"{url} holds no objects")
