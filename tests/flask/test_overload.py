"""Overload under gunicorn (sync and gthread) and ``flask run``: a full queue answers 503
with ``Retry-After`` as ``abort(503)`` would, never holds a worker past gunicorn's
``--timeout``, and loses nothing it answered 200 for.

The app is tests/flask/server_app.py: ``/fire/<i>`` submits a task of
``SERVER_APP_TASK_SECONDS``; ``/stats`` is the pool's.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from bench.server_process import get

from ..servers.harness import POSIX_ONLY, Hammered, Server, gunicorn, hammer, pool_stats, stop
from .test_servers import flask_run, serving

pytestmark = POSIX_ONLY


def assert_accounted(seen: Hammered, counters: dict[str, Any], server: Server) -> None:
    assert set(seen.statuses) <= {200, 503}, seen.statuses
    assert seen.statuses[503] == counters["rejected"] > 0, (seen.statuses, counters)
    assert seen.statuses[200] == counters["submitted"], (seen.statuses, counters)
    assert set(seen.retry_after) == {"1"}, seen.retry_after
    assert "503 Service Unavailable" in seen.bodies[503]  # Flask's own page, as abort(503)
    ran = sorted(int(tag) for _, tag in server.lines())
    assert ran == sorted(seen.accepted), "an answered task did not run, or ran twice"


def test_a_blocked_submission_never_outlives_gunicorns_timeout(tmp_path: Path) -> None:
    # The setting that lost answered tasks: one sync worker, --timeout 4, a queue of 3 that
    # blocks when full. A blocked submission now waits BACKGROUND_BLOCK_TIMEOUT (1 s by
    # default for Flask), then the request is answered 503: the worker is never killed.
    config = {
        "BACKGROUND_WORKERS": "1",
        "BACKGROUND_MAX_QUEUE": "3",
        "BACKGROUND_ON_FULL": "block",
        "BACKGROUND_DRAIN_TIMEOUT": "20",
        "SERVER_APP_TASK_SECONDS": "2",
    }
    argv = gunicorn("-k", "sync", "-w", "1", "--timeout", "4", "--graceful-timeout", "25")
    with serving(tmp_path, argv, config) as server:
        took = []
        for i in range(8):  # one at a time, as in the report
            began = time.monotonic()
            status, _ = get(server.port, f"/fire/{i}", timeout=10)
            took.append((status, time.monotonic() - began))
        counters = pool_stats(server)
        code, _, log = stop(server, signal.SIGTERM, timeout=40)

    assert code == 0, log
    assert "WORKER TIMEOUT" not in log, log
    assert "Traceback" not in log, log
    accepted = [i for i, (status, _) in enumerate(took) if status == 200]
    refused = [seconds for status, seconds in took if status == 503]
    assert {status for status, _ in took} <= {200, 503}, took
    assert refused, took
    assert max(refused) < 2, took  # about BACKGROUND_BLOCK_TIMEOUT, well under --timeout
    assert (counters["submitted"], counters["rejected"]) == (len(accepted), len(refused))
    ran = sorted(int(tag) for _, tag in server.lines())
    assert ran == accepted, "an answered task did not run"
    print(
        f"gunicorn sync --timeout 4, max_queue=3, block, 2 s tasks: {len(accepted)} answered"
        f" 200 (all ran), {len(refused)} answered 503 after at most {max(refused):.2f} s"
    )


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(
            gunicorn("-k", "gthread", "-w", "1", "--threads", "8", "--graceful-timeout", "25"),
            id="gunicorn-gthread",
        ),
        pytest.param(flask_run("--no-reload", "--with-threads"), id="flask-run"),
    ],
)
def test_overload_is_answered_503_and_counted(tmp_path: Path, argv: list[str]) -> None:
    config = {
        "BACKGROUND_WORKERS": "2",
        "BACKGROUND_MAX_QUEUE": "20",
        "BACKGROUND_DRAIN_TIMEOUT": "20",
        "BACKGROUND_SIGTERM_HANDLER": "true",  # flask run installs none of its own
        "SERVER_APP_TASK_SECONDS": "0.1",
    }
    with serving(tmp_path, argv, config) as server:
        seen = hammer(server, "/fire/{i}", 600, clients=8, timeout=60)
        counters = pool_stats(server)
        code, _, log = stop(server, signal.SIGTERM, timeout=40)

    assert code in (0, -signal.SIGTERM), log
    assert_accounted(seen, counters, server)
    if "gthread" in argv:
        assert seen.closed == 0, f"{seen.closed} connections closed by the server"
    assert "Traceback" not in log, log
    summaries = [line for line in log.splitlines() if "refused" in line]
    assert 1 <= len(summaries) <= 2 + seen.seconds / 10, summaries
    print(
        f"{argv[0].rsplit('/', 1)[-1]}, on_full=raise, max_queue=20, 8 clients:"
        f" {seen.statuses[200]} answered 200 (all ran), {seen.statuses[503]} answered 503"
        f" (= stats().rejected), {len(summaries)} log lines for the refusals"
    )
