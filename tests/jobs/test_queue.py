"""Publishing job messages to a real Redis: a burst from the API's background publisher arrives whole, one message
per job, on its kind's queue, with the job's time limits; a batch sent while Redis is down is left to the
reconciler without stopping the publisher."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis

from jobs.queue import Publisher, make_celery, time_limits
from jobs.reconcile import broker_job_ids
from jobs.settings import Settings
from jobs.states import JobKind
from tests.servers import RedisProcess

pytestmark = [pytest.mark.integration]


def wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_burst_is_published_whole_and_routed_by_kind() -> None:
    with RedisProcess() as server:
        settings = Settings(redis_url=server.url)
        client = redis.Redis.from_url(server.url)
        publisher = Publisher(make_celery(settings), settings)
        jobs = [(JobKind.PREDICT if i % 3 else JobKind.TRAIN, str(uuid.uuid4())) for i in range(250)]
        for kind, job_id in jobs:
            publisher.publish(kind, job_id)
        wait_for(lambda: client.llen("predict") + client.llen("train") == len(jobs))
        time.sleep(Publisher.LINGER_S * 3)
        assert client.llen("predict") + client.llen("train") == len(jobs)  # once each, no duplicates
        waiting, _ = broker_job_ids(client)
        assert waiting == {job_id for _, job_id in jobs}
        message = json.loads(client.lindex("train", 0))
        headers = message["headers"]
        assert headers["id"] in {j for k, j in jobs if k is JobKind.TRAIN}
        assert headers["timelimit"] == list(time_limits(settings, JobKind.TRAIN))[::-1]


def test_publishing_survives_a_broker_outage() -> None:
    with RedisProcess() as server:
        settings = Settings(redis_url=server.url)
        publisher = Publisher(make_celery(settings), settings)
        server.kill()
        publisher.publish(JobKind.PREDICT, "lost-while-down")  # logged; the reconciler re-enqueues it later
        time.sleep(3)
        server.start()
        client = redis.Redis.from_url(server.url)
        publisher.publish(JobKind.PREDICT, "after-restart")
        wait_for(lambda: client.llen("predict") >= 1, seconds=20)
        assert broker_job_ids(client)[0] == {"after-restart"}
