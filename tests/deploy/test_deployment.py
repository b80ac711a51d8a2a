"""docker-compose.yml and the Dockerfiles follow the deployment rules (no Docker engine here: we validate them)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
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


def test_workers_scale_and_deliver_webhooks(compose: dict) -> None:
    """`docker compose up --scale worker=N`: no worker has a fixed name or a host port; a worker of its own
    delivers webhooks, and every job worker serves the webhooks queue too."""
    services = compose["services"]
    for name in ("worker", "worker-cpu", "webhooks"):
        assert "container_name" not in services[name] and not services[name].get("ports"), name
    assert services["webhooks"]["command"][services["webhooks"]["command"].index("-Q") + 1] == "webhooks"
    job_worker = _instructions("Dockerfile.worker")[-1]
    assert "predict,train,webhooks" in job_worker


K8S = ROOT / "deploy" / "k8s"
KEDA = "keda.sh/v1alpha1"


@pytest.fixture(scope="module")
def manifests() -> list[dict]:
    documents = [doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert documents, "no manifests in deploy/k8s"
    return documents


def _named(manifests: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in manifests if doc["kind"] == kind}


def test_manifests_validate_against_the_kubernetes_schemas(manifests: list[dict]) -> None:
    import kubernetes_validate

    built_in = [doc for doc in manifests if doc["apiVersion"] != KEDA]
    assert {doc["kind"] for doc in built_in} >= {"Namespace", "Secret", "ConfigMap", "Job", "Deployment", "Service"}
    for doc in built_in:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
    broken = {**built_in[-1], "spec": {**built_in[-1]["spec"], "replicaz": 2}}  # the check can fail
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_api_and_workers_are_wired_as_the_service_expects(manifests: list[dict]) -> None:
    from jobs.settings import Settings

    deployments, secrets = _named(manifests, "Deployment"), _named(manifests, "Secret")
    config = _named(manifests, "ConfigMap")["ftcn-settings"]["data"]
    api = deployments["ftcn-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthcheck"
    assert api["readinessProbe"]["httpGet"]["path"].startswith("/readyz")
    gpu = deployments["ftcn-worker-gpu"]["spec"]["template"]["spec"]["containers"][0]
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in str(deployments["ftcn-worker-cpu"])
    environment: dict[str, str] = {}
    for deployment in deployments.values():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        for source in container["envFrom"]:
            if "secretRef" in source:
                environment.update(secrets[source["secretRef"]["name"]]["stringData"])
            else:
                assert source["configMapRef"]["name"] == "ftcn-settings"
                environment.update(config)
    assert {"FTCN_DATABASE_URL", "FTCN_REDIS_URL", "AWS_ACCESS_KEY_ID", "FTCN_SECRET_KEY"} <= set(environment)
    # every FTCN_ setting the manifests give is one the service knows, with a value it accepts
    Settings.from_env({k: v for k, v in environment.items() if k.startswith("FTCN_")})


def test_workers_autoscale_on_their_redis_queues(manifests: list[dict]) -> None:
    from jobs.queue import QUEUES

    deployments = _named(manifests, "Deployment")
    scaled = _named(manifests, "ScaledObject")
    assert set(scaled) == {"ftcn-worker-gpu", "ftcn-worker-cpu", "ftcn-webhooks"}
    auth = _named(manifests, "TriggerAuthentication")
    for name, scaler in scaled.items():
        target = deployments[scaler["spec"]["scaleTargetRef"]["name"]]
        args = target["spec"]["template"]["spec"]["containers"][0]["args"]
        served = set(args[args.index("-Q") + 1].split(","))
        for trigger in scaler["spec"]["triggers"]:
            assert trigger["type"] == "redis"
            assert trigger["metadata"]["listName"] in served & set(QUEUES), (name, trigger)
            assert trigger["authenticationRef"]["name"] in auth


def _containers(manifests: list[dict]) -> dict[str, dict]:
    """The first container of every Deployment and Job, by the workload's name."""
    return {doc["metadata"]["name"]: doc["spec"]["template"]["spec"]["containers"][0]
            for doc in manifests if doc["kind"] in ("Deployment", "Job")}


def _environment(manifests: list[dict], container: dict) -> dict[str, str]:
    secrets, config = _named(manifests, "Secret"), _named(manifests, "ConfigMap")
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "secretRef" in source:
            environment.update(secrets[source["secretRef"]["name"]]["stringData"])
        else:
            environment.update(config[source["configMapRef"]["name"]]["data"])
    environment.update({item["name"]: item.get("value", "") for item in container.get("env", [])})
    return environment


def test_every_setting_read_at_start_is_given_or_has_a_default(manifests: list[dict]) -> None:
    """Settings are all defaulted, but the defaults are the embedded mode's (SQLite, local files, a local Redis,
    a development secret): every workload sets those; a variable read without a default is set everywhere."""
    import dataclasses

    from jobs.settings import Settings

    for field in dataclasses.fields(Settings):
        assert field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING, field
    source = "\n".join(path.read_text() for package in ("ftcn", "jobs", "api", "worker")
                       for path in (ROOT / package).rglob("*.py"))
    required = set(re.findall(r'environ\["(FTCN_[A-Z0-9_]+)"\]', source))
    required |= {"FTCN_DATABASE_URL", "FTCN_REDIS_URL", "FTCN_STORAGE_URL", "FTCN_SECRET_KEY"}
    for name, container in _containers(manifests).items():
        environment = _environment(manifests, container)
        assert required <= set(environment), (name, sorted(required - set(environment)))
        Settings.from_env({k: v for k, v in environment.items() if k.startswith("FTCN_")})


def test_manifests_run_the_images_as_their_dockerfiles_and_compose_do(manifests: list[dict],
                                                                      compose: dict) -> None:
    from tests.images import parse_dockerfile

    api, worker = parse_dockerfile(ROOT / "Dockerfile.api"), parse_dockerfile(ROOT / "Dockerfile.worker")
    services, containers = compose["services"], _containers(manifests)
    assert containers["ftcn-migrate"]["image"].split(":")[0].endswith("/ftcn-api")
    assert containers["ftcn-migrate"]["command"] == services["migrate"]["command"]
    served = containers["ftcn-api"]
    assert served["image"].split(":")[0].endswith("/ftcn-api") and "command" not in served and "args" not in served
    assert served["ports"][0]["containerPort"] == int(api.env["SERVER_PORT"])
    for name, expected in (("ftcn-worker-gpu", worker.cmd), ("ftcn-worker-cpu", worker.cmd),
                           ("ftcn-webhooks", services["webhooks"]["command"])):
        container = containers[name]
        assert container["image"].split(":")[0].endswith("/ftcn-worker"), name
        assert "command" not in container and container["args"] == expected, name
        probe = container["livenessProbe"]["exec"]["command"]
        assert shlex.split(probe[2]) == shlex.split(worker.healthcheck[2]), name
