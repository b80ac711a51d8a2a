"""Reading ahead (ftcn.video.ahead): the same items in the same order, the producer's error raised in the
caller, and a reader that stops early leaves no thread and no open source behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ftcn.video.ahead import read_ahead


def _counting(n: int, closed: list[bool], fail_at: int | None = None) -> Iterator[int]:
    try:
        for i in range(n):
            if i == fail_at:
                raise ValueError(f"broken at {i}")
            yield i
    finally:
        closed.append(True)


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ftcn-read-ahead"]


def test_items_arrive_in_order_and_the_source_is_closed() -> None:
    closed: list[bool] = []
    assert list(read_ahead(_counting(100, closed), depth=3)) == list(range(100))
    assert closed == [True] and not _readers()


def test_the_producers_error_is_raised_after_the_items_before_it() -> None:
    closed: list[bool] = []
    seen = []
    with pytest.raises(ValueError, match="broken at 7"):
        for item in read_ahead(_counting(100, closed, fail_at=7), depth=2):
            seen.append(item)
    assert seen == list(range(7)) and closed == [True] and not _readers()


def test_stopping_early_stops_the_thread_and_closes_the_source() -> None:
    closed: list[bool] = []
    ahead = read_ahead(_counting(10**6, closed), depth=4)
    assert [next(ahead) for _ in range(5)] == [0, 1, 2, 3, 4]
    ahead.close()
    assert closed == [True] and not _readers()
