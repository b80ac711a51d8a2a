"""One typed settings object, read from ``FTCN_*`` environment variables, with embedded defaults.

The defaults are the embedded mode (SQLite file, local storage folder, a local Redis), so a fresh checkout runs
without configuration; production sets the variables (docker-compose does).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

def default_home() -> Path:
    """Where the embedded defaults keep their files: ``FTCN_HOME`` (default ``var`` in the working directory), read
    when settings are built, not when this module is imported."""
    return Path(os.environ.get("FTCN_HOME", "var")).absolute()


class SettingsError(ValueError):
    """An FTCN_* variable has a value that cannot be used."""


def _default_database_url() -> str:
    return f"sqlite:///{default_home() / 'ftcn.sqlite3'}"


def _default_storage_url() -> str:
    return (default_home() / "storage").as_uri()


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=_default_database_url)
    redis_url: str = "redis://localhost:6379/0"
    storage_url: str = field(default_factory=_default_storage_url)  # file:///abs/dir or s3://bucket/prefix
    s3_endpoint_url: str | None = None
    #: The object store as the service's users reach it, when that differs from ``s3_endpoint_url`` (compose:
    #: the workers reach MinIO at http://minio:9000, a browser on the host at http://localhost:9000). Presigned
    #: links are signed for this address: a signature covers the host, so a link cannot be rewritten afterwards.
    s3_public_url: str | None = None
    secret_key: str = "dev-only-change-me"  # signs local-storage download links
    link_ttl_s: int = 3600
    max_upload_mb: int = 512
    #: Files larger than this go by direct upload (POST /uploads, then a PUT to storage) from ftcn-client and
    #: the web page (0: always).
    direct_upload_mb: int = 32
    #: Retention, in days after a job finished (0: kept until deleted): its uploaded input, and all its files
    #: (input and artifacts; the job stays listed as erased with its verdict). Enforced by the workers' sweep.
    input_retention_days: int = 30
    artifact_retention_days: int = 0
    #: How long the reference-compatible ``POST /predict`` waits for its job before answering 202 (the reference
    #: server's request timeout).
    predict_wait_s: float = 180.0
    #: Largest JSON request body (a train job's split map is the biggest any request needs).
    max_json_kb: int = 4096
    max_video_s: float = 600.0
    url_allowlist: tuple[str, ...] = ()  # hosts the worker may fetch even if they resolve to private addresses
    #: Redis redelivers an unacknowledged job after this long. A copy delivered while the first worker still
    #: beats is dropped (the job's lease), so a short value only speeds up recovery from a dead worker.
    visibility_timeout_s: int = 25 * 3600
    #: "tokens": every API call needs a bearer token (ftcn-admin token create); "open": no accounts, all shared
    #: (a single-user development mode).
    auth: str = "tokens"
    #: Rate limits per token (per client address without one), counted in Redis (api/ratelimit.py); ";" separates
    #: several, e.g. "120/minute;10/second".
    rate_limit: str = "1200/minute;50/second"
    submit_rate_limit: str = "120/minute;10/second"
    #: Hard time limits per job kind; the task gets a soft limit a little earlier to fail with a reason.
    predict_time_limit_s: int = 1800
    preprocess_time_limit_s: int = 6 * 3600
    train_time_limit_s: int = 24 * 3600
    #: A running job's worker writes a heartbeat this often; three missed beats mean the worker is gone.
    heartbeat_s: int = 10
    #: How often a worker sweeps for jobs lost by the broker (Redis wiped, worker killed) and re-enqueues them.
    reconcile_interval_s: int = 30
    #: A job that stopped its worker this many times (crash, hard time limit) fails instead of running again.
    max_attempts: int = 3
    #: Attempts per object-store call (exponential backoff between them) before a job fails on storage.
    storage_attempts: int = 5
    #: How the workers run the model (ftcn.runtime, ftcn.precision): runtime auto (OpenVINO fp32 on a CPU,
    #: torch on a GPU), torch, onnxruntime or openvino; precision auto = the fastest the model's own check passed
    #: (ftcn.precision_check; fp32 for a model with no record), or fp32, bf16 or int8 for every model.
    runtime: str = "auto"
    precision: str = "auto"
    #: Webhooks (jobs.webhooks): seconds before each retry (Standard Webhooks' schedule), for at most this many
    #: hours after the event; how often each worker looks for due deliveries; the signing secret when
    #: FTCN_AUTH=open (with tokens, each token has its own).
    webhook_backoff_s: tuple[str, ...] = ("5", "300", "1800", "7200", "18000", "36000", "36000")
    webhook_retry_hours: float = 24.0
    webhook_poll_s: float = 1.0
    webhook_secret: str | None = None
    #: Port of each worker's Prometheus endpoint (its pool's metrics; 0 = none). The API's /metrics has the rest.
    worker_metrics_port: int = 9808
    #: Logs: "text" or "json" (one object a line, with the job's id on every line of a job).
    log_format: str = "text"
    #: Fair sharing (jobs.dispatch): an owner's jobs in the broker or on a worker at once, per queue (0: no cap,
    #: first come first served). At most the number of workers, so that another owner's job never queues behind
    #: more than one round of anyone's.
    max_running_per_owner: int = 2
    #: Reuse (jobs.reuse): a finished result answers the same content, model and options again; "owner" reuses
    #: only the submitter's own results, "all" anyone's (it tells a user that someone sent the file before).
    reuse_scope: str = "owner"
    #: Long videos (jobs.segments): a video longer than this many seconds is analysed in segments of about this
    #: length on any free workers, then merged (0: never split). 100: a 10-minute video makes 6 segments, two
    #: rounds on 3 workers (120 would make 5: bench/bench_segments.py projects 0.41x against 0.47x).
    segment_s: float = 100.0
    #: The caged decoder (ftcn.video.cage): every probe and decode of an input runs in a child process with no
    #: secrets, no network, at most this much address space and CPU time.
    decode_memory_mb: int = 2048
    decode_cpu_s: int = 1800
    #: Most jobs in one POST /batches.
    max_batch_jobs: int = 1000
    #: A train job's processes (torch.distributed, one per GPU): 0 = one per visible GPU (one on a CPU).
    train_processes: int = 0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        """Settings from ``FTCN_<FIELD>`` variables (upper case); unknown FTCN_ variables are rejected."""
        env = os.environ if environ is None else environ
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        reserved = {"FTCN_HOME", "FTCN_TT_WEIGHTS", "FTCN_PARITY_DIR", "FTCN_PIPELINE_DIR", "FTCN_API_URL",
                    "FTCN_TOKEN"}
        for key, raw in env.items():
            if not key.startswith("FTCN_") or key in reserved:
                continue
            name = key[len("FTCN_"):].lower()
            if name not in known:
                raise SettingsError(f"unknown setting {key}")
            values[name] = _parse(name, raw, known[name].type)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not (self.storage_url.startswith("file:///") or self.storage_url.startswith("s3://")):
            raise SettingsError(f"FTCN_STORAGE_URL must be file:///abs/dir or s3://bucket/prefix, got {self.storage_url}")
        for name in ("s3_endpoint_url", "s3_public_url"):
            value = getattr(self, name)
            if value and not (value.startswith(("http://", "https://")) and urlparse(value).hostname):
                raise SettingsError(f"FTCN_{name.upper()} must be an http(s):// URL, got {value!r}")
        if not self.redis_url.startswith(("redis://", "rediss://")):
            raise SettingsError(f"FTCN_REDIS_URL must be a redis:// URL, got {self.redis_url}")
        if min(self.max_upload_mb, self.max_json_kb, self.predict_wait_s, self.link_ttl_s, self.max_video_s, self.heartbeat_s, self.reconcile_interval_s,
               self.max_attempts, self.storage_attempts, *self.time_limits().values()) <= 0:
            raise SettingsError("sizes, durations, intervals, attempts and time limits must be positive")
        if min(self.input_retention_days, self.artifact_retention_days, self.direct_upload_mb) < 0:
            raise SettingsError("retention days must be 0 (keep) or more")
        if self.auth not in ("tokens", "open"):
            raise SettingsError(f"FTCN_AUTH must be 'tokens' or 'open', got {self.auth!r}")
        if self.precision not in ("auto", "fp32", "bf16", "int8"):
            raise SettingsError(f"FTCN_PRECISION must be auto, fp32, bf16 or int8, got {self.precision!r}")
        try:
            if any(float(part) < 0 for part in self.webhook_backoff_s) or self.webhook_retry_hours <= 0 \
                    or self.webhook_poll_s <= 0:
                raise ValueError
        except ValueError:
            raise SettingsError("FTCN_WEBHOOK_BACKOFF_S must be seconds (comma-separated, >= 0); "
                                "FTCN_WEBHOOK_RETRY_HOURS and FTCN_WEBHOOK_POLL_S positive") from None
        if self.webhook_secret is not None and not self.webhook_secret.startswith("whsec_"):
            raise SettingsError("FTCN_WEBHOOK_SECRET must be a Standard Webhooks secret (whsec_ + base64)")
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"FTCN_LOG_FORMAT must be text or json, got {self.log_format!r}")
        if self.decode_memory_mb < 256 or self.decode_cpu_s < 1:
            raise SettingsError("FTCN_DECODE_MEMORY_MB must be at least 256 and FTCN_DECODE_CPU_S positive")
        if self.segment_s < 0:
            raise SettingsError("FTCN_SEGMENT_S must be 0 (never split) or more seconds")
        if self.max_running_per_owner < 0 or self.max_batch_jobs < 1:
            raise SettingsError("FTCN_MAX_RUNNING_PER_OWNER must be 0 (no cap) or more; FTCN_MAX_BATCH_JOBS positive")
        if self.reuse_scope not in ("owner", "all"):
            raise SettingsError(f"FTCN_REUSE_SCOPE must be owner or all, got {self.reuse_scope!r}")
        if self.train_processes < 0:
            raise SettingsError("FTCN_TRAIN_PROCESSES must be 0 (one per GPU) or more")
        if self.runtime not in ("auto", "torch", "onnxruntime", "openvino"):
            raise SettingsError(f"FTCN_RUNTIME must be auto, torch, onnxruntime or openvino, got {self.runtime!r}")

    def time_limits(self) -> dict[str, int]:
        """Hard time limit in seconds per job kind (the kind's value)."""
        return {"predict": self.predict_time_limit_s, "preprocess": self.preprocess_time_limit_s,
                "train": self.train_time_limit_s}


def _parse(name: str, raw: str, annotation: Any) -> Any:
    text = str(annotation)
    try:
        if "tuple" in text:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if text.startswith("int"):
            return int(raw)
        if text.startswith("float"):
            return float(raw)
    except ValueError:
        raise SettingsError(f"FTCN_{name.upper()}={raw!r} is not a valid {text}") from None
    if not raw and "None" in text:
        return None
    return raw
