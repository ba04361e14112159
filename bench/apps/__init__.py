"""The apps the benchmarks serve, and what their tasks do.

The contender is chosen per server process by ``BENCH_CONTENDER``; each measurement starts a
fresh server, so one contender's backlog never reaches the next.

- ``BENCH_TASK_MS``: how long each task sleeps (50 by default);
- ``BENCH_OUT``: if set, the file each task appends one line to when it has run.
"""

from __future__ import annotations

import asyncio
import os
import time

WORKERS = 4  # every pool's worker threads (ours, a bare executor, Flask-Executor)
CONTENDER = os.environ.get("BENCH_CONTENDER", "nothing")
TASK_S = float(os.environ.get("BENCH_TASK_MS", "50")) / 1000
_OUT = os.environ.get("BENCH_OUT")
_fd: int | None = None


def _record() -> None:
    """One line per task that ran: a single O_APPEND write is atomic, so lines never mix."""
    global _fd
    if _OUT is None:
        return
    if _fd is None:
        _fd = os.open(_OUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, b"ran\n")


def sleep_task() -> None:
    """The sync task: sleeps (in a thread) for BENCH_TASK_MS."""
    time.sleep(TASK_S)
    _record()


async def async_sleep_task() -> None:
    """The async task: sleeps on the event loop for BENCH_TASK_MS."""
    await asyncio.sleep(TASK_S)
    _record()
