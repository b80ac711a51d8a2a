"""docker-compose.yml and the Dockerfiles follow the deployment rules (no Docker engine here: we validate them)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ONE_SHOT = {"migrate", "minio-bucket"}


@pytest.fixture(scope="module")
def compose() -> dict:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is not installed (apt-get install docker-compose); `make test` installs it as root"
    result = subprocess.run([binary, "--env-file", ".env.example", "--profile", "cpu", "--profile", "monitoring",
                             "config"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_services_and_health_checks(compose: dict) -> None:
    services = compose["services"]
    assert {"api", "worker", "worker-cpu", "redis", "postgres", "minio", "minio-bucket", "migrate"} <= set(services)
    for name, service in services.items():
        if name not in ONE_SHOT and name != "flower":
            assert "healthcheck" in service, f"{name} has no health check"
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert condition["condition"] in ("service_healthy", "service_completed_successfully"), (name, dependency)
    for name in ("api", "worker", "worker-cpu"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_gpu_worker_and_cpu_profile(compose: dict) -> None:
    worker, cpu = compose["services"]["worker"], compose["services"]["worker-cpu"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "deploy" not in cpu and cpu["profiles"] == ["cpu"]
    assert any(str(v).endswith("/weights:ro") or (isinstance(v, dict) and v.get("read_only"))
               for v in worker["volumes"])


def test_state_lives_on_volumes(compose: dict) -> None:
    services = compose["services"]
    assert "--appendonly" in services["redis"]["command"]
    for name in ("redis", "postgres", "minio"):
        assert services[name].get("volumes"), f"{name} keeps its data in the container"


def _instructions(name: str) -> list[str]:
    text = (ROOT / name).read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_api_image_has_no_torch_and_runs_unprivileged() -> None:
    lines = _instructions("Dockerfile.api")
    assert lines[0].startswith("FROM python:3.11-slim")
    assert not any("torch" in line for line in lines)
    assert "torch" not in (ROOT / "requirements" / "api.txt").read_text().lower().replace("no torch", "")
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert any("gunicorn" in line and "api:create_app()" in line for line in lines if line.startswith("CMD"))


def test_worker_image_is_cuda_unprivileged_and_never_downloads_weights() -> None:
    lines = _instructions("Dockerfile.worker")
    assert re.match(r"FROM nvidia/cuda:\S+runtime", lines[0])
    assert any("download.pytorch.org/whl/cu" in line and "torch" in line for line in lines)
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
    assert any(line.startswith("VOLUME") and "/weights" in line for line in lines)
    downloads = [line for line in lines if re.search(r"\b(wget|curl)\b|\.pth\b|\.dat\b", line)]
    assert downloads == [], f"weights must be mounted, not downloaded: {downloads}"
