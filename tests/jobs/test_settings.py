"""Settings from FTCN_* variables: embedded defaults, parsing, and clear errors."""

from __future__ import annotations

import pytest

from jobs.settings import Settings, SettingsError


def test_embedded_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.database_url.startswith("sqlite:///")
    assert settings.storage_url.startswith("file:///")
    assert settings.redis_url == "redis://localhost:6379/0"


def test_values_from_the_environment() -> None:
    settings = Settings.from_env({
        "FTCN_DATABASE_URL": "postgresql+psycopg://u@db/ftcn",
        "FTCN_STORAGE_URL": "s3://bucket/prefix",
        "FTCN_S3_ENDPOINT_URL": "http://minio:9000",
        "FTCN_MAX_UPLOAD_MB": "64",
        "FTCN_URL_ALLOWLIST": "media.internal, cdn.internal",
        "PATH": "/usr/bin",
    })
    assert settings.storage_url == "s3://bucket/prefix" and settings.max_upload_mb == 64
    assert settings.url_allowlist == ("media.internal", "cdn.internal")
    assert settings.s3_endpoint_url == "http://minio:9000"


@pytest.mark.parametrize("env,message", [
    ({"FTCN_STORAGE_URL": "/relative/or/bare"}, "FTCN_STORAGE_URL"),
    ({"FTCN_REDIS_URL": "http://x"}, "FTCN_REDIS_URL"),
    ({"FTCN_MAX_UPLOAD_MB": "lots"}, "FTCN_MAX_UPLOAD_MB"),
    ({"FTCN_MAX_UPLOAD_MB": "0"}, "positive"),
    ({"FTCN_DATABSE_URL": "typo"}, "unknown setting FTCN_DATABSE_URL"),
])
def test_bad_values_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
