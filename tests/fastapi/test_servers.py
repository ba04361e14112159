"""The FastAPI adapter under real servers: uvicorn (one process and ``--workers 2``) and
gunicorn with uvicorn's worker class, stopped by SIGTERM mid-load; a task that hangs past
the drain deadline; and a startup failure inside the composed lifespan.

The app under test is tests/fastapi/server_app.py, served, loaded with requests and
stopped by the machinery of tests/servers/harness.py.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from bench.server_process import get

from ..servers import harness
from ..servers.harness import (
    APP,
    BIN,
    DRAIN,
    POSIX_ONLY,
    Server,
    Stopped,
    assert_each_ran_once,
    assert_no_traceback,
    assert_ran_where_served,
    gunicorn,
    is_alive,
    stop,
    unfinished_warning,
)

pytestmark = POSIX_ONLY

UVICORN = BIN / "uvicorn"
POOL = "app"  # the adapter's lifespan names its pool "app" by default
STARTUP_ERROR = "server_app: the app's own lifespan failed on purpose"  # as in server_app.py
STARTUP_FAILURE = 3  # uvicorn.config.STARTUP_FAILURE: uvicorn's exit status then

MARGIN = 1.0  # seconds a server may take beyond the drain deadline to exit
REQUESTS = 500
SIGTERM_AFTER = 250  # answered requests


# -- servers -------------------------------------------------------------------------

APP_DIR = Path(__file__).resolve().parent  # where server_app.py is
SCRUB = ("UVICORN_", "WEB_")  # variables no server inherits, besides the harness's own


def launch(tmp_path: Path, argv: list[str], config: dict[str, str]) -> Server:
    """Start a server (``{port}`` in `argv` is replaced) in a process group of its own;
    the caller must `kill` it."""
    return harness.launch(tmp_path, argv, config, app_dir=APP_DIR, scrub=SCRUB, group=True)


@contextmanager
def serving(
    tmp_path: Path, argv: list[str], config: dict[str, str], *, processes: int = 1
) -> Iterator[tuple[Server, set[int]]]:
    """Start a server, wait until `processes` distinct processes answer, yield it with
    their pids, and kill whatever is left of it (its workers too) at the end."""
    pids: set[int] = set()

    def ready(server: Server, deadline: float, timeout: float) -> None:
        answering_with_state(server, config, processes, pids, deadline=deadline, timeout=timeout)

    with harness.serving(launch(tmp_path, argv, config), ready=ready) as server:
        yield server, pids


def answering_with_state(
    server: Server,
    config: dict[str, str],
    processes: int,
    pids: set[int],
    *,
    deadline: float,
    timeout: float,
) -> None:
    """GET /state until `processes` distinct processes answered (adding their pids to
    `pids`), each with the lifespans' state: one pool, configured from `config`, on the
    app and in the request's state."""
    expected = {
        "pool": POOL,
        "workers": int(config["BACKGROUND_WORKERS"]),
        "drain_timeout": float(config["BACKGROUND_DRAIN_TIMEOUT"]),
        "on_app": True,
        "background_of": True,
        "app_lifespan": "ran",
    }
    while len(pids) < processes:
        if time.monotonic() > deadline:
            pytest.fail(f"only {sorted(pids)} answered within {timeout}s:\n{server.output()}")
        status, body = get(server.port, "/state", timeout=max(1.0, deadline - time.monotonic()))
        if status != 200:
            pytest.fail(f"GET /state answered {status} {body!r}:\n{server.output()}")
        state = json.loads(body)
        pids.add(state.pop("pid"))
        assert state == expected, state


def uvicorn(*options: str) -> list[str]:
    return [str(UVICORN), "--host", "127.0.0.1", "--port", "{port}", *options, APP]


# -- load ------------------------------------------------------------------------------


def response_pid(body: str) -> int:
    try:
        answer: Any = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or set(answer) != {"pid"} or type(answer["pid"]) is not int:
        pytest.fail(f"unexpected response {body!r}")
    return int(answer["pid"])


fire = partial(harness.fire, parse=response_pid)  # answered: each request's pid, by index


def sigterm_mid_load(server: Server, requests: int = REQUESTS) -> Stopped[int]:
    """Fire `requests` tasks, SIGTERM the server's main process after SIGTERM_AFTER
    answers, and wait for it to exit."""
    return harness.sigterm_mid_load(server, requests, after=SIGTERM_AFTER, parse=response_pid)


def assert_drained_every_answered_task(server: Server, stopped: Stopped[int]) -> Counter[str]:
    load, log = stopped.load, stopped.log
    assert stopped.elapsed < DRAIN + MARGIN, (stopped.elapsed, log)
    assert SIGTERM_AFTER <= len(load.answered) < stopped.requests, (len(load.answered), load.failed)
    assert load.failed, "no request failed after SIGTERM"
    # The drain had work to do: tasks of answered requests were still waiting at SIGTERM.
    assert stopped.written_at_signal < stopped.answered_at_signal, stopped
    ran = assert_each_ran_once(server, set(load.answered))
    assert set(ran) <= {str(i) for i in range(stopped.requests)}, ran
    assert_ran_where_served(server, load.answered)
    assert "unfinished" not in log, log
    assert_no_traceback(log)
    return ran


LOAD_CONFIG = {"BACKGROUND_WORKERS": "4", "BACKGROUND_DRAIN_TIMEOUT": str(DRAIN)}


# -- uvicorn ---------------------------------------------------------------------------


def test_uvicorn_sigterm_mid_load_runs_every_answered_task(tmp_path: Path) -> None:
    with serving(tmp_path, uvicorn(), LOAD_CONFIG) as (server, pids):
        stopped = sigterm_mid_load(server)

    # uvicorn runs the lifespan's shutdown (the drain), then raises SIGTERM again with
    # the default action restored: the process ends by the signal.
    assert stopped.code == -signal.SIGTERM, stopped.log
    assert pids == {server.proc.pid}
    ran = assert_drained_every_answered_task(server, stopped)
    assert "Application shutdown complete." in stopped.log, stopped.log
    print(
        f"uvicorn: {len(stopped.load.answered)} answered, {stopped.written_at_signal} written at"
        f" SIGTERM, {len(ran)} ran; exited {stopped.elapsed:.2f}s after SIGTERM"
        f" with {stopped.code}"
    )


def assert_each_worker_drained(
    server: Server, stopped: Stopped, pids: set[int], alive: list[int], *, parent: str
) -> Counter[str]:
    """After SIGTERM to a `parent` of worker processes: it exited 0, no worker outlived it,
    every request was answered by a worker, and each worker drained its tasks."""
    assert stopped.code == 0, stopped.log
    assert not alive, f"workers outlived their {parent}: {alive}"
    assert server.proc.pid not in pids
    assert set(stopped.load.answered.values()) <= pids
    ran = assert_drained_every_answered_task(server, stopped)
    for pid in pids:
        assert f"Finished server process [{pid}]" in stopped.log, stopped.log
    return ran


def test_uvicorn_workers_sigterm_to_the_supervisor_drains_each_worker(tmp_path: Path) -> None:
    argv = uvicorn("--workers", "2")
    with serving(tmp_path, argv, LOAD_CONFIG, processes=2) as (server, pids):
        # The supervisor looks at its signals every 0.5 s: its workers may answer
        # hundreds of requests more before they get SIGTERM, hence more requests.
        stopped = sigterm_mid_load(server, requests=3 * REQUESTS)
        alive = sorted(pid for pid in pids if is_alive(pid))

    # The supervisor relays SIGTERM to its workers, joins them and returns normally.
    ran = assert_each_worker_drained(server, stopped, pids, alive, parent="supervisor")
    assert stopped.log.count("Application shutdown complete.") == 2, stopped.log
    per_process = Counter(pid for pid, _ in server.lines())
    print(
        f"uvicorn --workers 2: {len(stopped.load.answered)} answered"
        f" ({dict(Counter(stopped.load.answered.values()))}), {stopped.written_at_signal}"
        f" written at SIGTERM, {len(ran)} ran ({dict(per_process)}); supervisor exited"
        f" {stopped.elapsed:.2f}s after SIGTERM with {stopped.code}"
    )


# -- gunicorn with uvicorn's worker ----------------------------------------------------


def test_gunicorn_uvicorn_worker_sigterm_to_the_master_drains_each_worker(
    tmp_path: Path,
) -> None:
    # Not imported here: the module warns of its deprecation at import.
    if importlib.util.find_spec("uvicorn.workers") is None:
        pytest.skip(
            "uvicorn.workers is gone from this uvicorn: the gunicorn worker class moved to "
            "the separate uvicorn-worker package (uvicorn_worker.UvicornWorker)"
        )
    argv = gunicorn("-k", "uvicorn.workers.UvicornWorker", "-w", "2", "--graceful-timeout", "20")
    with serving(tmp_path, argv, LOAD_CONFIG, processes=2) as (server, pids):
        # The master relays SIGTERM to its workers from its own loop: under CPU load they
        # answered all 250 requests left before they heard of it (seen in CI), hence more.
        stopped = sigterm_mid_load(server, requests=3 * REQUESTS)
        alive = sorted(pid for pid in pids if is_alive(pid))

    ran = assert_each_worker_drained(server, stopped, pids, alive, parent="master")
    for pid in pids:
        # Each worker ends by SIGTERM again, once its lifespan finished, as under uvicorn.
        assert f"Worker (pid:{pid}) was sent SIGTERM!" in stopped.log, stopped.log
    per_process = Counter(pid for pid, _ in server.lines())
    print(
        f"gunicorn -k UvicornWorker -w 2: {len(stopped.load.answered)} answered"
        f" ({dict(Counter(stopped.load.answered.values()))}), {stopped.written_at_signal}"
        f" written at SIGTERM, {len(ran)} ran ({dict(per_process)}); master exited"
        f" {stopped.elapsed:.2f}s after SIGTERM with {stopped.code}"
    )


# -- a task that hangs -------------------------------------------------------------------


def test_a_hung_task_does_not_keep_uvicorn_from_exiting(tmp_path: Path) -> None:
    drain = 1.0
    config = {"BACKGROUND_WORKERS": "2", "BACKGROUND_DRAIN_TIMEOUT": str(drain)}
    with serving(tmp_path, uvicorn(), config) as (server, _):
        status, body = get(server.port, "/hang")
        assert status == 200, server.output()
        hung = json.loads(body)
        assert len(hung) == 1, body
        assert hung[0]["name"] == "hang-forever", body
        task_id = hung[0]["id"]
        load = fire(server, 5)
        assert not load.failed, load.failed
        code, elapsed, log = stop(server, signal.SIGTERM, timeout=10)

    assert code == -signal.SIGTERM, log
    assert drain <= elapsed < drain + MARGIN, (elapsed, log)
    assert unfinished_warning(POOL, task_id) in log, log
    assert log.count("unfinished") == 1, log
    assert "Application shutdown complete." in log, log
    assert_each_ran_once(server, set(range(5)))
    print(f"hung task: uvicorn exited {elapsed:.2f}s after SIGTERM with {code}")


# -- a startup failure -------------------------------------------------------------------


def test_a_failing_app_lifespan_stops_the_pool_and_uvicorn_exits(tmp_path: Path) -> None:
    # A long drain deadline: were the pool left to the exit hook, or a task left hanging,
    # the exit would be late.
    config = {
        "BACKGROUND_WORKERS": "2",
        "BACKGROUND_DRAIN_TIMEOUT": "30",
        "SERVER_APP_FAIL_STARTUP": "1",
    }
    server = launch(tmp_path, uvicorn(), config)
    try:
        # The app's lifespan fires a task right before it raises: its line marks the failure.
        deadline = time.monotonic() + 20
        while not server.written() and server.proc.poll() is None:
            if time.monotonic() > deadline:
                pytest.fail(f"the app's lifespan did not run within 20s:\n{server.output()}")
            threading.Event().wait(0.01)
        failed_at = time.monotonic()
        code = server.wait(10)
        elapsed = time.monotonic() - failed_at
        log = server.output()
    finally:
        server.kill()

    assert code == STARTUP_FAILURE, log
    assert f"RuntimeError: {STARTUP_ERROR}" in log, log
    assert "Application startup failed. Exiting." in log, log
    assert "Uvicorn running on" not in log, log
    # The task fired before the failure ran, in the server process; none was cut short.
    assert server.lines() == [(server.proc.pid, "startup")], log
    assert "unfinished" not in log, log
    assert elapsed < MARGIN, (elapsed, log)
    print(f"startup failure: uvicorn exited {elapsed:.2f}s after the failure with {code}")
