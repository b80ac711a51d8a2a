"""Where the CLI opens dataset stores. An ``s3://`` location's endpoint (MinIO, Ceph, any S3-compatible store)
comes from ``FTCN_S3_ENDPOINT_URL``: read here, at the command's edge, as the service reads it into its settings;
the library below takes the opened store and reads no environment."""

from __future__ import annotations

import os
from pathlib import Path

from ftcn.datasets.storage import DatasetStore, open_store

ENDPOINT_VARIABLE = "FTCN_S3_ENDPOINT_URL"


def store_at(location: str | Path) -> DatasetStore:
    return open_store(location, os.environ.get(ENDPOINT_VARIABLE) or None)
