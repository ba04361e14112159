"""The FastAPI adapter under the other ASGI servers people deploy on: hypercorn (its
workers are ``multiprocessing`` children with no SIGTERM handler), granian, and daphne
(which runs no lifespan). Each is stopped by a signal in the middle of a load: every
answered task runs exactly once within the drain deadline, or the library said at
startup (or at the first request) that it would not.

The app is tests/fastapi/server_app.py, as in test_servers.py; see docs/servers.md.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from bench.server_process import get

from ..servers import harness
from ..servers.harness import BIN, DRAIN, POSIX_ONLY, Server, assert_stopped_cleanly
from .test_servers import launch, response_pid

pytestmark = POSIX_ONLY

MARGIN = 2.5  # seconds a server may take beyond the drain deadline to exit
CONFIG = {"BACKGROUND_WORKERS": "4", "BACKGROUND_DRAIN_TIMEOUT": str(DRAIN)}
HANDLER_WARNING = "Pass lifespan(sigterm_handler=True) to drain them first."
WITH_HANDLER = {**CONFIG, "BACKGROUND_SIGTERM_HANDLER": "true"}  # lifespan(sigterm_handler=True)


def answering(server: Server, deadline: float, timeout: float) -> None:
    """Every worker of the server answers before the load starts (bounded)."""
    status, body = get(server.port, "/ping", timeout=max(1.0, deadline - time.monotonic()))
    assert status == 200, (status, body, server.output())


def stopped_mid_load(
    tmp_path: Path,
    argv: list[str],
    config: dict[str, str],
    signum: int,
    *,
    group: bool,
    path: str = "/fire/{i}",
    ready: harness.Ready = answering,
) -> tuple[Server, harness.Stopped[int]]:
    server = launch(tmp_path, argv, config)
    with harness.serving(server, ready=ready):
        stopped = harness.sigterm_mid_load(
            server, 500, after=250, parse=response_pid, signum=signum, group=group, path=path
        )
    return server, stopped


def hypercorn(workers: int) -> list[str]:
    return [
        str(BIN / "hypercorn"),
        *("--bind", "127.0.0.1:{port}", "--workers", str(workers), "server_app:app"),
    ]


@pytest.mark.parametrize(
    ("workers", "signum", "group", "config"),
    [
        # The supervisor SIGTERMs the other workers as soon as one has exited: only with
        # the handler do they drain before they end.
        (2, signal.SIGTERM, False, WITH_HANDLER),
        (2, signal.SIGINT, False, WITH_HANDLER),
        (1, signal.SIGTERM, True, WITH_HANDLER),
        (0, signal.SIGTERM, True, CONFIG),  # one process: hypercorn handles the signal
    ],
    ids=["2-workers-TERM", "2-workers-INT", "1-worker-TERM-to-group", "0-TERM-to-group"],
)
def test_hypercorn_runs_every_answered_task(
    tmp_path: Path, workers: int, signum: int, group: bool, config: dict[str, str]
) -> None:
    server, stopped = stopped_mid_load(tmp_path, hypercorn(workers), config, signum, group=group)
    ran = assert_stopped_cleanly(server, stopped, MARGIN)
    assert HANDLER_WARNING not in stopped.log
    print(
        f"hypercorn --workers {workers}, {signal.Signals(signum).name}"
        f"{' to the group' if group else ''}: {len(stopped.load.answered)} answered,"
        f" {stopped.written_at_signal} written at the signal, {len(ran)} ran;"
        f" exited {stopped.elapsed:.2f}s after it with {stopped.code}"
    )


def test_hypercorn_workers_without_the_handler_say_so_at_startup(tmp_path: Path) -> None:
    server = launch(tmp_path, hypercorn(1), CONFIG)
    with harness.serving(server, ready=answering):
        log = server.output()
    assert "[WARNING] background: hypercorn's worker processes install no SIGTERM" in log
    assert HANDLER_WARNING in log


def granian(workers: int) -> list[str]:
    return [
        str(BIN / "granian"),
        *("--interface", "asgi", "--host", "127.0.0.1", "--port", "{port}"),
        *("--workers", str(workers), "--no-access-log", "server_app:app"),
    ]


@pytest.mark.parametrize(
    ("workers", "signum", "group"),
    [(1, signal.SIGTERM, False), (2, signal.SIGINT, False), (2, signal.SIGTERM, True)],
    ids=["1-worker-TERM", "2-workers-INT", "2-workers-TERM-to-group"],
)
def test_granian_runs_every_answered_task(
    tmp_path: Path, workers: int, signum: int, group: bool
) -> None:
    ready = harness.logged("Started worker-", workers, then=answering)
    server, stopped = stopped_mid_load(
        tmp_path, granian(workers), CONFIG, signum, group=group, ready=ready
    )
    assert stopped.code == 0, stopped.log
    ran = assert_stopped_cleanly(server, stopped, MARGIN)
    print(
        f"granian asgi, {workers} workers, {signal.Signals(signum).name}"
        f"{' to the group' if group else ''}: {len(stopped.load.answered)} answered,"
        f" {len(ran)} ran; exited {stopped.elapsed:.2f}s after it"
    )


DAPHNE = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", "{port}", "server_app:app"]


def test_daphne_without_a_lifespan_fails_the_first_request_saying_why(tmp_path: Path) -> None:
    server = launch(tmp_path, DAPHNE, CONFIG)
    with harness.serving(server, ready=lambda *_: None):
        status, _ = get(server.port, "/fire/1")
        log = server.output()
    assert status == 500
    assert "daphne runs no ASGI lifespan" in log, log
    assert "fastapi_background.pool()" in log


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_daphne_with_a_module_pool_runs_every_answered_task(tmp_path: Path, signum: int) -> None:
    # What the error above advises: server_app's /fire-module submits to a pool made by
    # fastapi_background.pool() at import, which drains at the interpreter's exit.
    server, stopped = stopped_mid_load(
        tmp_path, DAPHNE, CONFIG, signum, group=False, path="/fire-module/{i}"
    )
    assert stopped.code == 0, stopped.log
    ran = assert_stopped_cleanly(server, stopped, MARGIN)
    print(f"daphne, module pool, {signal.Signals(signum).name}: {len(ran)} ran")
