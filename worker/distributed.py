"""A train job on every GPU of its worker: ``ftcn train`` under torchrun, one process per GPU, watched by the job.

The worker's own process starts torchrun (``python -m torch.distributed.run --standalone``) in a process group
of its own and waits on it: it turns rank 0's epochs (one line each in ``metrics.jsonl``) into the job's
progress, kills the group when the job is canceled or runs out of time, and turns a failed run into the job's
error. The training itself is the library's DDP path (``ftcn.training.train``), the same code the in-process
path runs.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ftcn.training.recipes import RECIPES
from ftcn.training.train import TrainConfig
from jobs.errors import ErrorCode
from jobs.settings import Settings
from worker.failures import JobCanceled, JobFailed

log = logging.getLogger(__name__)
#: The line ``ftcn`` prints for an error the user can act on (a dataset that cannot train, a bad option).
USER_ERROR = "ftcn train: error: "


def processes_for(settings: Settings) -> int:
    """Training processes for a job on this worker: FTCN_TRAIN_PROCESSES, or one per visible GPU (one on a CPU)."""
    if settings.train_processes:
        return settings.train_processes
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 1


def train_argv(dataset: str, out: Path, cfg: TrainConfig, processes: int) -> list[str]:
    """torchrun running ``ftcn train`` with ``cfg`` in ``processes`` processes on this machine."""
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
            "-m", "ftcn", "train", dataset, "--out", str(out), "--epochs", str(cfg.epochs),
            "--batch-size", str(cfg.batch_size), "--lr", repr(cfg.lr), "--model-size", cfg.model_size,
            "--seed", str(cfg.seed), "--device", cfg.device, "--optimizer", cfg.optimizer,
            "--weight-decay", repr(cfg.weight_decay), "--lr-step", str(cfg.lr_step), "--lr-gamma", repr(cfg.lr_gamma),
            "--erase-prob", repr(cfg.erase_prob)]
    if cfg.max_steps is not None:
        argv += ["--max-steps", str(cfg.max_steps)]
    if cfg.recipe in RECIPES:  # recorded in the summary; every value it sets is also given explicitly above
        argv += ["--recipe", cfg.recipe]
    if cfg.class_weighting:
        argv.append("--class-weighting")
    if cfg.freeze:
        argv.append("--freeze")
    if cfg.init:
        argv += ["--init", cfg.init]
    if cfg.split_file:
        argv += ["--split", cfg.split_file]
    if not cfg.check_precisions:
        argv.append("--no-precision-check")
    return argv


def epochs_done(out: Path) -> int:
    metrics = out / "metrics.jsonl"
    return sum(1 for line in metrics.read_text().splitlines() if line.strip()) if metrics.exists() else 0


def run_distributed(argv: list[str], out: Path, epochs: int, progress: Callable[[int, int], None],
                    canceled: Callable[[], bool], poll_s: float = 1.0) -> None:
    """Run torchrun to its end; progress(epochs_done, epochs) as rank 0 finishes epochs. Raises JobCanceled when
    the job is canceled meanwhile, JobFailed when training fails; the processes never outlive this call."""
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "torchrun.log"
    with open(log_path, "wb") as handle:
        process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    log.info("training in %s process(es) under torchrun (pid %d)", argv[argv.index("--nproc_per_node") + 1],
             process.pid)
    seen = 0
    try:
        while process.poll() is None:
            if canceled():
                raise JobCanceled("the job was canceled during training")
            if (done := epochs_done(out)) != seen:
                seen = done
                progress(done, epochs)
            time.sleep(poll_s)
    finally:
        if process.poll() is None:  # canceled, out of time, or the worker is stopping: no orphan trainers
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    if process.returncode != 0:
        output = log_path.read_text(errors="replace")
        log.warning("torchrun exited with %d:\n%s", process.returncode, output[-4000:])
        reasons = [line.split(USER_ERROR, 1)[1] for line in output.splitlines() if USER_ERROR in line]
        if reasons:
            raise JobFailed(ErrorCode.CANNOT_TRAIN, reasons[0])
        raise JobFailed(ErrorCode.INTERNAL, f"the training processes failed (exit code {process.returncode}); "
                                            "see the worker log")
    progress(epochs_done(out), epochs)
