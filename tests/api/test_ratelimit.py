"""The rate limiter against a real Redis: fixed windows, several rates at once, Retry-After, keys kept apart, and
per-process counting while Redis is unreachable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from api.access import make_rate_limits
from api.ratelimit import RateLimiter, parse_rates
from jobs.settings import Settings, SettingsError
from tests.servers import free_port, redis_server

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def test_rates_parse_in_the_usual_syntax() -> None:
    rates = parse_rates("120/minute; 10 per second;100 per 5 minutes; 2/days")
    assert [(r.amount, r.seconds) for r in rates] == [(120, 60), (10, 1), (100, 300), (2, 86400)]
    assert rates[2].text == "100 per 5 minute"
    for bad in ("", ";", "ten/minute", "10/fortnight", "0/second", "10/0 minutes", "-1/second", "10"):
        with pytest.raises(ValueError):
            parse_rates(bad)


def test_a_malformed_limit_stops_start_up(redis_url: str) -> None:
    with pytest.raises(SettingsError, match="FTCN_RATE_LIMIT"):
        make_rate_limits(Settings(redis_url=redis_url, submit_rate_limit="lots"))


def test_every_rate_counts_and_the_window_resets(redis_url: str) -> None:
    limiter = RateLimiter(redis_url, prefix="test:windows")
    rates = parse_rates("3/second;5/minute")
    start = 1_000_040.0  # 20 s into a minute window (1_000_020 to 1_000_080), at the start of a second
    assert [limiter.hit("alice", rates, now=start) for _ in range(3)] == [None] * 3
    fourth = limiter.hit("alice", rates, now=start + 0.5)
    assert fourth is not None and fourth.rate.seconds == 1 and fourth.retry_after_s == 1
    # a new second: the per-second rate allows again, but the minute has seen its 5th and then a 6th request
    assert limiter.hit("alice", rates, now=start + 1.2) is None
    over_minute = limiter.hit("alice", rates, now=start + 2.1)
    assert over_minute is not None and over_minute.rate.seconds == 60 and over_minute.retry_after_s == 38
    assert limiter.hit("bob", rates, now=start + 2.1) is None  # keys are counted apart
    # the counters live in Redis, with an expiry: another process (limiter) sees the same counts
    other = RateLimiter(redis_url, prefix="test:windows")
    assert other.hit("alice", rates, now=start + 2.2) is not None
    keys = redis.Redis.from_url(redis_url).keys("test:windows:alice:*")
    assert keys and all(0 < redis.Redis.from_url(redis_url).ttl(k) <= 61 for k in keys)


def test_without_redis_limits_are_counted_in_memory() -> None:
    limiter = RateLimiter(f"redis://127.0.0.1:{free_port()}/0", prefix="test:down")
    rates = parse_rates("2/minute")
    answers = [limiter.hit("carol", rates, now=3_000_000.0 + i) for i in range(3)]
    assert answers[:2] == [None, None] and answers[2] is not None and answers[2].retry_after_s == 58
