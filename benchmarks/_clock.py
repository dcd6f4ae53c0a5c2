"""The clock of time_to_accuracy.py, shared by our side (main venv) and the peer's (benchmarks/.venv-peer):
training CPU time of this process, evaluation excluded. Standard library only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class CpuClock:
    """CPU seconds (user + system, every thread) this process has used since it started, minus the intervals
    spent inside :meth:`paused` (evaluation): what the training cost, start-up and data loading included."""

    def __init__(self) -> None:
        self.excluded = 0.0

    def seconds(self) -> float:
        return time.process_time() - self.excluded

    def minutes(self) -> float:
        return self.seconds() / 60

    @contextmanager
    def paused(self) -> Iterator[None]:
        start = time.process_time()
        try:
            yield
        finally:
            self.excluded += time.process_time() - start


def evenly_spaced(last: int, points: int) -> list[int]:
    """Where the test split is scored, of 1..``last`` (epochs or steps): ``points`` evenly spaced, always ``last``."""
    return sorted({max(1, round(last * k / points)) for k in range(1, points + 1)} | {last})
