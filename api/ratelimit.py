"""Fixed-window rate limits counted in Redis, shared by every API process: one pipelined round trip per request.

Written for the submit path's CPU budget (bench/load_api.py): a general-purpose limiter spent more time choosing
and formatting its limits than Redis spent counting. Limits use the familiar syntax, ``"120/minute;10/second"``
(also ``"100 per 5 minutes"``). If Redis fails, counting falls back to per-process memory for a few seconds at a
time rather than refusing or stalling requests.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis

log = logging.getLogger(__name__)
UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d+)?\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)
#: After a Redis failure, count in memory for this long before trying Redis again (no 1 s timeout per request).
REDIS_RETRY_S = 5.0
MEMORY_MAX_KEYS = 50_000


@dataclass(frozen=True)
class Rate:
    amount: int
    seconds: int
    text: str  # how it reads in a 429 ("5 per 1 minute")

    def window(self, now: float) -> int:
        return int(now // self.seconds)


def parse_rates(spec: str) -> tuple[Rate, ...]:
    """``"120/minute;10/second"`` -> rates; ValueError on anything else (settings check it at start-up)."""
    rates = []
    for part in filter(str.strip, spec.split(";")):
        match = _RATE.match(part)
        amount, multiple = (int(match.group(1)), int(match.group(2) or 1)) if match else (0, 0)
        if amount <= 0 or multiple <= 0:
            raise ValueError(f"not a rate limit: {part.strip()!r} (expected e.g. '120/minute' or '10 per second')")
        unit = match.group(3).lower()
        rates.append(Rate(amount, multiple * UNITS[unit], f"{amount} per {multiple} {unit}"))
    if not rates:
        raise ValueError("a rate limit needs at least one rate")
    return tuple(rates)


@dataclass(frozen=True)
class Exceeded:
    rate: Rate
    retry_after_s: int


class RateLimiter:
    def __init__(self, redis_url: str, prefix: str = "ftcn:rate") -> None:
        self.redis = redis.Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1)
        self.prefix = prefix
        self._memory: dict[str, tuple[int, float]] = {}  # key -> (count, expires at)
        self._lock = threading.Lock()
        self._redis_down_until = 0.0

    def hit(self, key: str, rates: Sequence[Rate], now: float | None = None) -> Exceeded | None:
        """Count one request against every rate; the exceeded rate whose window ends last, or None."""
        now = time.time() if now is None else now
        keys = [f"{self.prefix}:{key}:{rate.amount}/{rate.seconds}:{rate.window(now)}" for rate in rates]
        counts = self._count(keys, rates, now)
        exceeded = [Exceeded(rate, max(1, math.ceil((rate.window(now) + 1) * rate.seconds - now)))
                    for rate, count in zip(rates, counts) if count > rate.amount]
        return max(exceeded, key=lambda e: e.retry_after_s) if exceeded else None

    def _count(self, keys: list[str], rates: Sequence[Rate], now: float) -> list[int]:
        if now >= self._redis_down_until:
            try:
                with self.redis.pipeline(transaction=False) as pipe:
                    for key, rate in zip(keys, rates):
                        pipe.incr(key)
                        pipe.expire(key, rate.seconds + 1)
                    return pipe.execute()[::2]
            except redis.RedisError as exc:
                log.warning("rate limits counted per process for %.0f s: Redis failed (%s)", REDIS_RETRY_S, exc)
                self._redis_down_until = now + REDIS_RETRY_S
        return self._count_in_memory(keys, rates, now)

    def _count_in_memory(self, keys: list[str], rates: Sequence[Rate], now: float) -> list[int]:
        counts = []
        with self._lock:
            if len(self._memory) > MEMORY_MAX_KEYS:
                self._memory = {k: v for k, v in self._memory.items() if v[1] > now}
            for key, rate in zip(keys, rates):
                count, expires = self._memory.get(key, (0, now + rate.seconds + 1))
                self._memory[key] = (count + 1, expires)
                counts.append(count + 1)
        return counts
