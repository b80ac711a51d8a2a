"""The images rehearsed without a Docker engine: each Dockerfile read, the tree it builds made from exactly what it
COPYs, its pip lines run in a fresh venv, and its own commands (CMD, HEALTHCHECK) run as written.

What a rehearsal proves: that the files the code needs are the files the image copies, that its pip lines resolve
(to wheels only, on a machine without a compiler), and that its commands start and answer. What only a Docker
engine can prove stays out of reach here: the base images themselves, the apt lines of the worker image, the CUDA
build of torch and the NVIDIA runtime. The worker's pip line for torch names PyTorch's CUDA index; the rehearsal
checks its version against the project's supported one and installs that version's CPU build instead.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Copied trees leave these out, as .dockerignore does for a real build context.
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


class RehearsalError(AssertionError):
    """The image would not work: what failed, with the command's output."""


@dataclass
class Dockerfile:
    name: str
    base: str
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    copies: list[tuple[list[str], str]] = field(default_factory=list)  # (sources, destination) as written
    runs: list[str] = field(default_factory=list)
    user: str | None = None
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)

    def pip_installs(self) -> list[list[str]]:
        """The ``pip install`` commands of its RUN lines, in order, as argument lists."""
        commands = []
        for run in self.runs:
            for part in re.split(r"&&|;", run):
                argv = shlex.split(part)
                if argv[:2] == ["pip", "install"]:
                    commands.append(argv)
        return commands


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments left out."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    result = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def command_form(arguments: str) -> list[str]:
    """A CMD/HEALTHCHECK/RUN argument as Docker runs it: the JSON (exec) form as is, the shell form under sh -c."""
    if arguments.startswith("["):
        return json.loads(arguments)
    return ["/bin/sh", "-c", arguments]


def parse_dockerfile(path: Path, text: str | None = None) -> Dockerfile:
    text = path.read_text() if text is None else text
    image: Dockerfile | None = None
    for word, rest in _instructions(text):
        if word == "FROM":
            image = Dockerfile(path.name, rest.split()[0])
            continue
        if image is None:
            raise RehearsalError(f"{path.name}: {word} before FROM")
        if word == "WORKDIR":
            image.workdir = rest
        elif word == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                image.env[key] = value
        elif word == "COPY":
            parts = command_form(rest) if rest.startswith("[") else shlex.split(rest)
            parts = [p for p in parts if not p.startswith("--")]
            image.copies.append((parts[:-1], parts[-1]))
        elif word == "RUN":
            image.runs.append(rest)
        elif word == "USER":
            image.user = rest
        elif word == "CMD":
            image.cmd = command_form(rest)
        elif word == "HEALTHCHECK":
            image.healthcheck = command_form(rest[rest.index("CMD ") + 4:].strip())
    if image is None:
        raise RehearsalError(f"{path.name} has no FROM")
    return image


def supported_torch(root: Path = ROOT) -> str:
    """The torch release the project supports: the one the Makefile installs for development and CI."""
    match = re.search(r"^TORCH_CPU \?= torch==(\S+)$", (root / "Makefile").read_text(), re.M)
    if not match:
        raise RehearsalError("the Makefile names no TORCH_CPU version")
    return match.group(1)


def supported_python(root: Path = ROOT) -> str:
    """The Python release the project supports (pyproject's requires-python, ">=3.11,<3.12" -> "3.11")."""
    match = re.search(r'requires-python = ">=(\d+\.\d+),<', (root / "pyproject.toml").read_text())
    if not match:
        raise RehearsalError("pyproject.toml's requires-python names no single minor release")
    return match.group(1)


def image_python(image: Dockerfile) -> str:
    """The Python an image runs: its python:X.Y base, or the pythonX.Y it installs and makes its venv with."""
    match = re.match(r"python:(\d+\.\d+)", image.base)
    if match:
        return match.group(1)
    versions = set(re.findall(r"python(\d+\.\d+) -m venv", " ".join(image.runs)))
    if len(versions) != 1:
        raise RehearsalError(f"{image.name}: cannot tell which Python it runs (venvs made with {sorted(versions)})")
    return versions.pop()


def cpu_torch(argv: list[str], supported: str) -> list[str]:
    """A pip line from a CUDA index, as this machine can run it: the same torch version's CPU build."""
    pins = [a for a in argv if a.startswith("torch==")]
    if not pins:
        return argv
    version = pins[0].split("==", 1)[1]
    if version != supported:
        raise RehearsalError(f"the image installs torch {version}; the project supports {supported} "
                             "(the Makefile's TORCH_CPU)")
    return ["pip", "install", f"torch=={version}"]


def build_tree(root: Path, image: Dockerfile, into: Path) -> Path:
    """The image's files under ``into`` (its root), copied from ``root`` as its COPY lines say; returns WORKDIR."""
    workdir = into / image.workdir.lstrip("/")
    workdir.mkdir(parents=True, exist_ok=True)
    for sources, destination in image.copies:
        target = into / destination.lstrip("/") if destination.startswith("/") else workdir / destination
        for source in sources:
            origin = root / source
            if not origin.exists():
                raise RehearsalError(f"{image.name}: COPY {source}: no such file in the build context")
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=IGNORED, dirs_exist_ok=True)
            elif destination.endswith("/") or len(sources) > 1:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target / origin.name)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)
    return workdir


@dataclass
class Image:
    """A rehearsed image: its Dockerfile, its WORKDIR on this machine, and the venv that stands for its Python."""

    dockerfile: Dockerfile
    workdir: Path
    venv: Path
    log: Path

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The container's environment: the image's ENV (its PATH pointing at the rehearsal venv), then ``extra``
        (what compose or ``docker run -e`` adds). Nothing of the caller's environment leaks in."""
        env = {"PATH": f"{self.venv}/bin:/usr/local/bin:/usr/bin:/bin", "HOME": str(self.workdir),
               "LANG": "C.UTF-8", "HOSTNAME": os.uname().nodename}
        env.update({k: v for k, v in self.dockerfile.env.items() if k != "PATH"})
        env.update(extra or {})
        return env

    def run(self, argv: list[str], extra: dict[str, str] | None = None, timeout: float = 300,
            prefix: list[str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([*(prefix or []), *argv], cwd=self.workdir, env=self.env(extra), capture_output=True,
                              text=True, timeout=timeout)

    def start(self, argv: list[str], log: Path, extra: dict[str, str] | None = None,
              prefix: list[str] | None = None) -> subprocess.Popen:
        handle = open(log, "ab")
        return subprocess.Popen([*(prefix or []), *argv], cwd=self.workdir, env=self.env(extra), stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def has_module(self, name: str) -> bool:
        probe = f"import importlib.util, sys; sys.exit(0 if importlib.util.find_spec({name!r}) else 1)"
        return subprocess.run([str(self.venv / "bin" / "python"), "-c", probe], cwd="/").returncode == 0


def _pip(venv: Path, argv: list[str], cwd: Path, log: Path) -> None:
    """One of the image's pip lines, in its venv; wheels only, as on a machine with no compiler."""
    wheels_only = [] if "--only-binary=:all:" in argv else ["--only-binary=:all:"]
    command = [str(venv / "bin" / "pip"), *argv[1:2], *wheels_only, *argv[2:]]
    with open(log, "ab") as handle:
        handle.write(("$ " + shlex.join(command) + "\n").encode())
        handle.flush()
        done = subprocess.run(command, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT,
                              env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    if done.returncode != 0:
        raise RehearsalError(f"{shlex.join(argv)} failed:\n{log.read_text()[-3000:]}")


def rehearse_build(root: Path, dockerfile: str, into: Path, text: str | None = None) -> Image:
    """Build an image's tree and venv under ``into`` from the checkout at ``root`` (``text`` replaces the
    Dockerfile's own text, for tests of the rehearsal itself)."""
    image = parse_dockerfile(root / dockerfile, text)
    python = image_python(image)
    if python != supported_python(root):
        raise RehearsalError(f"{dockerfile} runs Python {python}; the project supports {supported_python(root)}")
    interpreter = shutil.which(f"python{python}")
    if interpreter is None:
        raise RehearsalError(f"python{python} is not installed here")
    workdir = build_tree(root, image, into / "rootfs")
    venv, log = into / "venv", into / "pip.log"
    subprocess.run([interpreter, "-m", "venv", str(venv)], check=True)
    for argv in image.pip_installs():
        _pip(venv, cpu_torch(argv, supported_torch(root)), workdir, log)
    return Image(image, workdir, venv, log)


def tail(path: Path | str, chars: int = 3000) -> str:
    try:
        return Path(path).read_text(errors="replace")[-chars:]
    except OSError:
        return ""

