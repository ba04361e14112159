"""Overload under uvicorn: a full queue never stalls the event loop, and a refusal is a
503 with ``Retry-After`` on a connection kept alive, counted, and logged as a summary.

The app is tests/fastapi/server_app.py: ``/fire/{i}`` submits from an ``async def``
handler, as the docs do; ``/ping`` answers at once; ``/stats`` is the pool's.
"""

from __future__ import annotations

import json
import signal
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bench.server_process import get

from ..servers.harness import (
    POSIX_ONLY,
    Hammered,
    Server,
    assert_no_traceback,
    hammer,
    ping_while,
    pool_stats,
    stop,
)
from .test_servers import serving, uvicorn

pytestmark = POSIX_ONLY


def assert_accounted(seen: Hammered, counters: dict[str, Any], server: Server) -> None:
    """Every request was answered 200 (its task accepted, and it ran) or 503 (refused,
    counted), on a connection the server kept open."""
    assert set(seen.statuses) <= {200, 503}, seen.statuses
    assert seen.closed == 0, f"{seen.closed} connections closed by the server"
    assert seen.statuses[503] == counters["rejected"] > 0, (seen.statuses, counters)
    assert seen.statuses[200] == counters["submitted"], (seen.statuses, counters)
    assert set(seen.retry_after) == {"1"}, seen.retry_after
    assert json.loads(seen.bodies[503]) == {
        "detail": "The server is busy with background work. Retry later."
    }
    ran = sorted(int(tag) for _, tag in server.lines())
    assert ran == sorted(seen.accepted), "an accepted task did not run, or ran twice"


@pytest.mark.parametrize("on_full", ["block", "caller_runs"])
def test_a_full_queue_never_stalls_the_event_loop(tmp_path: Path, on_full: str) -> None:
    config = {
        "BACKGROUND_WORKERS": "2",
        "BACKGROUND_DRAIN_TIMEOUT": "10",
        "BACKGROUND_MAX_QUEUE": "10",
        "BACKGROUND_ON_FULL": on_full,
        "SERVER_APP_TASK_SECONDS": "0.5",
    }
    with serving(tmp_path, uvicorn(), config) as (server, _):
        idle = [_timed_ping(server) for _ in range(20)]
        busy = threading.Event()
        busy.set()
        pings: list[float] = []
        prober = threading.Thread(target=lambda: pings.extend(ping_while(server, busy)))
        prober.start()
        seen = hammer(server, "/fire/{i}", 40, clients=8)
        while pool_stats(server)["queued"] and len(pings) < 1500:  # while the queue is full
            threading.Event().wait(0.05)
        busy.clear()
        prober.join(35)
        counters = pool_stats(server)
        code, _, log = stop(server, signal.SIGTERM, timeout=20)

    assert code == -signal.SIGTERM, log
    assert_accounted(seen, counters, server)
    assert_no_traceback(log)
    assert statistics.median(pings) < 0.05, pings  # was 6.7 s while the loop waited for room
    assert max(pings) < 0.5, pings
    print(
        f"uvicorn, on_full={on_full}, max_queue=10, 2 threads, 0.5 s tasks, 40 requests:"
        f" {seen.statuses[200]} accepted, {seen.statuses[503]} answered 503; /ping while the"
        f" queue was full: median {statistics.median(pings) * 1000:.1f} ms, max"
        f" {max(pings) * 1000:.1f} ms over {len(pings)} (idle median"
        f" {statistics.median(idle) * 1000:.1f} ms)"
    )


def test_overload_is_answered_503_counted_and_logged_as_a_summary(tmp_path: Path) -> None:
    config = {
        "BACKGROUND_WORKERS": "2",
        "BACKGROUND_DRAIN_TIMEOUT": "20",
        "BACKGROUND_MAX_QUEUE": "50",
        "SERVER_APP_TASK_SECONDS": "0.1",
    }
    with serving(tmp_path, uvicorn(), config) as (server, _):
        seen = hammer(server, "/fire/{i}", 1500, clients=20, timeout=60)
        counters = pool_stats(server)
        code, _, log = stop(server, signal.SIGTERM, timeout=30)

    assert code == -signal.SIGTERM, log
    assert_accounted(seen, counters, server)
    assert_no_traceback(log)
    summaries = [line for line in log.splitlines() if "refused" in line]
    assert 1 <= len(summaries) <= 2 + seen.seconds / 10, summaries
    assert all("[WARNING] background: pool 'app' refused" in line for line in summaries)
    refused = sum(int(line.split(" refused ")[1].split()[0]) for line in summaries)
    assert refused == counters["rejected"]  # the last summary comes at shutdown
    print(
        f"uvicorn, on_full=raise, max_queue=50, 20 clients, 0.1 s tasks:"
        f" {sum(seen.statuses.values())} requests in {seen.seconds:.1f} s,"
        f" {seen.statuses[200]} accepted and run, {seen.statuses[503]} answered 503"
        f" (= stats().rejected), {seen.closed} connections closed,"
        f" {len(summaries)} log lines for the refusals"
    )


def _timed_ping(server: Server) -> float:
    began = time.monotonic()
    status, _ = get(server.port, "/ping")
    assert status == 200
    return time.monotonic() - began
