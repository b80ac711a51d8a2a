"""Per-stage wall-clock accounting, shared by the pipeline, the backends and the benchmarks."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimer:
    """Accumulates seconds per named stage (decode, detect, landmarks, align, model, encode ...)."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start

    def merge(self, other: "StageTimer") -> None:
        for stage, seconds in other.seconds.items():
            self.seconds[stage] += seconds

    def reset(self) -> None:
        self.seconds.clear()

    def rounded(self, digits: int = 3) -> dict[str, float]:
        return {stage: round(seconds, digits) for stage, seconds in self.seconds.items()}
