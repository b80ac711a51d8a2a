"""The rehearsed images, built once a session from this checkout (tests/images.py)."""

from __future__ import annotations

import pytest

from tests.images import ROOT, Image, rehearse_build


@pytest.fixture(scope="session")
def api_image(tmp_path_factory) -> Image:
    return rehearse_build(ROOT, "Dockerfile.api", tmp_path_factory.mktemp("api-image"))


@pytest.fixture(scope="session")
def worker_image(tmp_path_factory) -> Image:
    return rehearse_build(ROOT, "Dockerfile.worker", tmp_path_factory.mktemp("worker-image"))
