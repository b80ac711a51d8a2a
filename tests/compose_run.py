"""docker-compose.yml run for real without Docker, then walked through as the README's user would.

Run as root inside a network namespace of its own (``unshare --net python -m tests.compose_run ...``, which
``tests/deploy/test_compose.py`` does): its loopback is compose's network, so every service listens on the port
compose gives it without meeting anything else on the machine. Each service runs as a local process

- from its rehearsed image (``tests/images.py``): the image's CMD, or compose's ``command`` where it has one;
- with exactly the environment compose gives it (``docker-compose config``) on top of the image's ENV;
- in a mount and UTS namespace of its own, where ``/etc/hosts`` names the services (``redis``, ``postgres``,
  ``minio``, ...) as compose's DNS does, and its host name is its own (Celery names its node after it).

Redis and PostgreSQL are the Debian servers, started with compose's settings; MinIO's part is played by moto's S3
server. The walkthrough itself runs here, outside the services' namespaces, as a user on the host: the service
names do not resolve, and only published ports (the API's 8000, MinIO's 9000) answer, as on a real host.
It prints one JSON report on stdout and exits 1 when a step fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.images import Image, parse_dockerfile, tail
from tests.servers import wait_for_port

#: What ``docker compose up`` would start, in order (profile cpu: a worker without a GPU).
SERVICES = ("redis", "postgres", "minio", "minio-bucket", "migrate", "api", "worker-cpu", "webhooks")
#: Services that compose reaches by name and the port each publishes on the host.
PUBLISHED = {"api": 8000, "minio": 9000}


def compose_config(root: Path, env_file: Path) -> dict[str, Any]:
    """The resolved compose file, as ``docker-compose --env-file ... --profile cpu config`` prints it."""
    done = subprocess.run(["docker-compose", "--env-file", str(env_file), "--profile", "cpu", "config"], cwd=root,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"docker-compose config failed: {done.stderr}")
    return yaml.safe_load(done.stdout)


def service_env(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def unescape(argv: list[str] | str) -> list[str]:
    """Compose's ``$$`` is a literal ``$`` for the container's shell."""
    return [part.replace("$$", "$") for part in (argv if isinstance(argv, list) else shlex.split(argv))]


def healthcheck_argv(test: list[str]) -> list[str]:
    """A compose healthcheck ``test`` as a command: CMD runs as is, CMD-SHELL under sh -c."""
    kind, *rest = unescape(test)
    return rest if kind == "CMD" else ["/bin/sh", "-c", " ".join(rest)]


class Namespaces:
    """Each service's own mount and UTS namespace: compose's names in /etc/hosts, its own host name."""

    def __init__(self, folder: Path, names: list[str]) -> None:
        self.hosts = folder / "hosts"
        self.hosts.write_text("127.0.0.1 localhost\n" + "".join(f"127.0.0.1 {name}\n" for name in names))

    def prefix(self, hostname: str) -> list[str]:
        script = 'mount --bind "$1" /etc/hosts && hostname "$2" && shift 2 && exec "$@"'
        return ["unshare", "--mount", "--uts", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh",
                str(self.hosts), hostname]


class Stack:
    def __init__(self, root: Path, config: dict[str, Any], images: dict[str, Image], folder: Path) -> None:
        self.root, self.config, self.images, self.folder = root, config, images, folder
        self.services: dict[str, dict[str, Any]] = config["services"]
        self.namespaces = Namespaces(folder, sorted(self.services))
        self.processes: dict[str, subprocess.Popen] = {}
        self.cleanup: list[Path] = []
        self.report: dict[str, Any] = {"steps": []}

    # -- the backing services ------------------------------------------------------------------------------------
    def log(self, name: str) -> Path:
        return self.folder / f"{name}.log"

    def start_redis(self) -> None:
        command = unescape(self.services["redis"]["command"])
        data = self.folder / "redis-data"
        data.mkdir()
        self.processes["redis"] = subprocess.Popen([*command, "--dir", str(data), "--port", "6379"],
                                                   stdout=open(self.log("redis"), "ab"), stderr=subprocess.STDOUT)
        wait_for_port(6379, self.processes["redis"], 60, self.log("redis"))

    def start_postgres(self) -> None:
        env = service_env(self.services["postgres"])
        binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))[-1].parent
        # The server runs as the postgres user (it refuses root), so its folder lies where that user can reach it.
        home = Path(tempfile.mkdtemp(prefix="compose-postgres-"))
        self.cleanup.append(home)
        data, password_file, sockets = home / "data", home / "password", home / "sockets"
        password_file.write_text(env["POSTGRES_PASSWORD"])
        data.mkdir()
        sockets.mkdir()
        for path in (home, data, password_file, sockets):
            shutil.chown(path, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
        made = subprocess.run([*as_postgres, str(binaries / "initdb"), "-D", str(data), "-U", env["POSTGRES_USER"],
                               f"--pwfile={password_file}", "--auth=scram-sha-256"], capture_output=True, text=True)
        if made.returncode != 0:
            raise RuntimeError(f"initdb failed: {made.stdout[-1000:]}{made.stderr[-1000:]}")
        self.processes["postgres"] = subprocess.Popen(
            [*as_postgres, str(binaries / "postgres"), "-D", str(data), "-p", "5432", "-k", str(sockets),
             "-c", "listen_addresses=127.0.0.1"], stdout=open(self.log("postgres"), "ab"), stderr=subprocess.STDOUT)
        wait_for_port(5432, self.processes["postgres"], 60, self.log("postgres"))
        subprocess.run([str(binaries / "createdb"), "-h", "127.0.0.1", "-U", env["POSTGRES_USER"], env["POSTGRES_DB"]],
                       env={**os.environ, "PGPASSWORD": env["POSTGRES_PASSWORD"]}, check=True, capture_output=True)

    def start_minio(self) -> None:
        """moto's S3 server in MinIO's place, on MinIO's port; then minio-bucket's one job, the bucket."""
        self.processes["minio"] = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "9000"],
            stdout=open(self.log("minio"), "ab"), stderr=subprocess.STDOUT)
        wait_for_port(9000, self.processes["minio"], 60, self.log("minio"))
        import boto3

        env = service_env(self.services["minio-bucket"])
        boto3.client("s3", endpoint_url="http://127.0.0.1:9000", region_name="us-east-1",
                     aws_access_key_id=env["MINIO_ROOT_USER"],
                     aws_secret_access_key=env["MINIO_ROOT_PASSWORD"]).create_bucket(Bucket=env["FTCN_BUCKET"])

    # -- the project's services, from their images -----------------------------------------------------------------
    def image_of(self, name: str) -> Image:
        dockerfile = self.services[name]["build"]["dockerfile"]
        return self.images[Path(dockerfile).name]

    def argv_of(self, name: str) -> list[str]:
        command = self.services[name].get("command")
        return unescape(command) if command else self.image_of(name).dockerfile.cmd

    def env_of(self, name: str, hostname: str | None = None) -> dict[str, str]:
        return {**service_env(self.services[name]), "HOSTNAME": hostname or f"{name}-1"}

    def run(self, name: str, argv: list[str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        """``docker compose run --rm NAME [argv]``: the service's image and environment, a one-off container."""
        hostname = f"{name}-run"
        return self.image_of(name).run(argv or self.argv_of(name), self.env_of(name, hostname), timeout,
                                       self.namespaces.prefix(hostname))

    def start(self, name: str, extra: dict[str, str] | None = None, label: str | None = None) -> None:
        label = label or name
        image = self.image_of(name)
        env = {**self.env_of(name, f"{label}-1"), **(extra or {})}
        self.processes[label] = image.start(self.argv_of(name), self.log(label), env,
                                            self.namespaces.prefix(f"{label}-1"))

    def healthy(self, name: str, label: str | None = None, seconds: float = 120) -> None:
        """The service's health checks, compose's and its image's own HEALTHCHECK, pass within ``seconds``."""
        label = label or name
        checks = [healthcheck_argv(self.services[name]["healthcheck"]["test"])]
        if self.image_of(name).dockerfile.healthcheck:
            checks.append(self.image_of(name).dockerfile.healthcheck)
        image, env = self.image_of(name), self.env_of(name, f"{label}-1")
        for argv in checks:
            deadline, last = time.monotonic() + seconds, None
            while True:
                process = self.processes[label]
                if process.poll() is not None:
                    raise RuntimeError(f"{label} exited with {process.returncode}:\n{tail(self.log(label))}")
                last = image.run(argv, env, 60, self.namespaces.prefix(f"{label}-1"))
                if last.returncode == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{label}'s health check {argv} failed: {last.stdout[-800:]}"
                                       f"{last.stderr[-800:]}\n{tail(self.log(label))}")
                time.sleep(2)
        self.step(f"{label} healthy", checks=[shlex.join(c) for c in checks])

    def step(self, name: str, **details: Any) -> None:
        self.report["steps"].append({"step": name, **details})

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, 15)
                except (ProcessLookupError, PermissionError):
                    process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for folder in self.cleanup:
            shutil.rmtree(folder, ignore_errors=True)


def walkthrough(stack: Stack, checkpoint: Path, video: Path) -> None:
    """The README's compose section, as a user on the host follows it."""
    stack.start_redis()
    stack.start_postgres()
    stack.start_minio()
    stack.step("redis, postgres and S3 (MinIO's part) up; bucket made")
    done = stack.run("migrate")
    if done.returncode != 0:
        raise RuntimeError(f"migrate failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    stack.step("migrate ran to completion", command=shlex.join(stack.argv_of("migrate")))

    stack.start("api")
    stack.healthy("api")
    stack.start("worker-cpu")
    stack.start("webhooks")
    stack.healthy("worker-cpu")
    stack.healthy("webhooks")
    api = f"http://localhost:{PUBLISHED['api']}"
    readiness = requests.get(api + "/readyz", timeout=10)
    if readiness.status_code != 200:
        raise RuntimeError(f"/readyz from the host: {readiness.status_code} {readiness.text[:1000]}")
    stack.step("/readyz from the host", status=readiness.status_code)
    # The image honours SERVER_PORT (the reference server's variable): a second API on another port answers too.
    stack.start("api", {"SERVER_PORT": "8123"}, label="api-8123")
    wait_for_port(8123, stack.processes["api-8123"], 60, stack.log("api-8123"))
    for path in ("/healthcheck", "/readyz"):
        answer = requests.get(f"http://localhost:8123{path}", timeout=10)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path} on SERVER_PORT=8123: {answer.status_code} {answer.text[:500]}")
    stack.step("API on SERVER_PORT=8123 answers /healthcheck and /readyz")

    # "docker compose run --rm webhooks ftcn-admin ...": the worker image holds ftcn-admin.
    registered = stack.run("webhooks", ["ftcn-admin", "register-model", str(checkpoint), "--name", "rehearsal",
                                        "--default"])
    if registered.returncode != 0:
        raise RuntimeError(f"register-model failed: {registered.stderr[-3000:]}")
    created = stack.run("webhooks", ["ftcn-admin", "token", "create", "--owner", "walkthrough"])
    if created.returncode != 0:
        raise RuntimeError(f"token create failed: {created.stderr[-3000:]}")
    auth = {"Authorization": f"Bearer {created.stdout.strip()}"}
    stack.step("model registered and token made with ftcn-admin from the worker image")

    with open(video, "rb") as handle:
        answer = requests.post(api + "/jobs/predict", headers=auth, files={"video": (video.name, handle)}, timeout=60)
    if answer.status_code != 202:
        raise RuntimeError(f"POST /jobs/predict: {answer.status_code} {answer.text[:1000]}")
    job_id = answer.json()["id"]
    deadline = time.monotonic() + 600
    while True:
        job = requests.get(f"{api}/jobs/{job_id}", headers=auth, timeout=10).json()
        if job["status"] in ("succeeded", "failed", "canceled"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} still {job['status']} after 600 s:\n{tail(stack.log('worker-cpu'))}")
        time.sleep(1)
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {job_id} {job['status']}: {job.get('error')}\n{tail(stack.log('worker-cpu'))}")
    stack.step("predict job submitted and polled to the end", verdict=job["result"]["verdict"],
               links=sorted(job["links"]))

    link = job["links"]["annotated_video"]
    stack.report["annotated_link_host"] = link.split("/")[2]
    fetched = requests.get(link, timeout=30)
    if fetched.status_code != 200 or b"ftyp" not in fetched.content[:64]:
        raise RuntimeError(f"the annotated video link does not open from the host: {fetched.status_code} "
                           f"{fetched.content[:300]!r}")
    stack.step("annotated video fetched from the host", bytes=len(fetched.content), host=link.split("/")[2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="the checkout whose compose file is run")
    parser.add_argument("--env-file", type=Path, required=True)
    parser.add_argument("--image", action="append", default=[], metavar="DOCKERFILE=FOLDER",
                        help="a rehearsed image: its Dockerfile's name and the folder rehearse_build made")
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--video", type=Path, required=True)
    parser.add_argument("--logs", type=Path, required=True)
    args = parser.parse_args(argv)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    images = {}
    for pair in args.image:
        name, _, folder = pair.partition("=")
        built = Path(folder)
        dockerfile = parse_dockerfile(args.root / name)
        images[name] = Image(dockerfile, built / "rootfs" / dockerfile.workdir.lstrip("/"), built / "venv",
                             built / "pip.log")
    args.logs.mkdir(parents=True, exist_ok=True)
    stack = Stack(args.root, compose_config(args.root, args.env_file), images, args.logs)
    status = 0
    try:
        walkthrough(stack, args.checkpoint.resolve(), args.video.resolve())
    except Exception as exc:  # the report says what failed; the exit code says that something did
        stack.report["error"] = f"{type(exc).__name__}: {exc}"
        stack.report["traceback"] = traceback.format_exc()[-2000:]
        status = 1
    finally:
        stack.stop()
    print(json.dumps(stack.report))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
