"""The Flask extension under the other WSGI servers people deploy on: granian (its WSGI
workers are ``multiprocessing`` children, which run no ``atexit`` hook) and waitress (no
signal handlers at all). Each is stopped by a signal in the middle of a load:
every answered task runs exactly once, within the drain deadline, or the library said at
startup that it would not.

The app is tests/flask/server_app.py, as in test_servers.py; see docs/servers.md.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from bench.server_process import get

from ..servers import harness
from ..servers.harness import (
    BIN,
    DRAIN,
    POSIX_ONLY,
    Server,
    assert_stopped_cleanly,
    sigterm_mid_load,
)
from .test_servers import APP_DIR, SCRUB

pytestmark = POSIX_ONLY

MARGIN = 2.5  # seconds a server may take beyond the drain deadline to exit
CONFIG = {"BACKGROUND_WORKERS": "4", "BACKGROUND_DRAIN_TIMEOUT": str(DRAIN)}
HANDLER_WARNING = "Set BACKGROUND_SIGTERM_HANDLER = True to drain them first."


def stopped_mid_load(
    tmp_path: Path,
    argv: list[str],
    config: dict[str, str],
    signum: int,
    *,
    group: bool,
    ready: harness.Ready = lambda *_: None,
) -> tuple[Server, harness.Stopped[str]]:
    server = harness.launch(tmp_path, argv, config, app_dir=APP_DIR, scrub=SCRUB, group=True)
    with harness.serving(server, ready=ready):
        stopped = sigterm_mid_load(server, 500, after=250, parse=str, signum=signum, group=group)
    return server, stopped


def granian(workers: int) -> list[str]:
    return [
        str(BIN / "granian"),
        *("--interface", "wsgi", "--host", "127.0.0.1", "--port", "{port}"),
        *("--workers", str(workers), "--no-access-log", "server_app:app"),
    ]


@pytest.mark.parametrize(
    ("workers", "signum", "group"),
    [
        (1, signal.SIGTERM, False),
        (2, signal.SIGTERM, False),
        (2, signal.SIGINT, False),
        (2, signal.SIGTERM, True),
    ],
    ids=["1-worker-TERM", "2-workers-TERM", "2-workers-INT", "2-workers-TERM-to-group"],
)
def test_granian_runs_every_answered_task(
    tmp_path: Path, workers: int, signum: int, group: bool
) -> None:
    ready = harness.logged("Started worker-", workers)
    server, stopped = stopped_mid_load(
        tmp_path, granian(workers), CONFIG, signum, group=group, ready=ready
    )
    assert stopped.code == 0, stopped.log
    ran = assert_stopped_cleanly(server, stopped, MARGIN)
    print(
        f"granian wsgi, {workers} workers, {signal.Signals(signum).name}"
        f"{' to the group' if group else ''}: {len(stopped.load.answered)} answered,"
        f" {stopped.written_at_signal} written at the signal, {len(ran)} ran;"
        f" exited {stopped.elapsed:.2f}s after it"
    )


WAITRESS = [str(BIN / "waitress-serve"), "--listen=127.0.0.1:{port}", "server_app:app"]


def test_waitress_with_the_sigterm_switch_runs_every_answered_task(tmp_path: Path) -> None:
    config = {**CONFIG, "BACKGROUND_SIGTERM_HANDLER": "true"}
    server, stopped = stopped_mid_load(tmp_path, WAITRESS, config, signal.SIGTERM, group=False)
    assert stopped.code == -signal.SIGTERM, stopped.log  # it ends by the signal, after the drain
    ran = assert_stopped_cleanly(server, stopped, MARGIN)
    assert HANDLER_WARNING not in stopped.log
    print(f"waitress with the switch: {len(stopped.load.answered)} answered, {len(ran)} ran")


def test_waitress_stopped_by_sigint_runs_every_answered_task(tmp_path: Path) -> None:
    # Ctrl-C: a KeyboardInterrupt ends waitress's serving loop, and the exit hook drains.
    server, stopped = stopped_mid_load(tmp_path, WAITRESS, CONFIG, signal.SIGINT, group=False)
    ran = assert_stopped_cleanly(server, stopped, MARGIN)
    print(f"waitress, SIGINT: {len(stopped.load.answered)} answered, {len(ran)} ran")


def test_waitress_without_the_switch_says_so_at_startup(tmp_path: Path) -> None:
    server = harness.launch(tmp_path, WAITRESS, CONFIG, app_dir=APP_DIR, scrub=SCRUB, group=True)
    with harness.serving(server, ready=lambda *_: None):
        log = server.output()
    assert "[WARNING] background: waitress installs no signal handler: a SIGTERM would end" in log
    assert HANDLER_WARNING in log


def uwsgi(*options: str) -> list[str]:
    """uWSGI with the options docs/servers.md gives: a master, 2 workers, threads on."""
    return [
        str(BIN / "uwsgi"),
        *("--http-socket", "127.0.0.1:{port}", "--master", "--processes", "2"),
        *("--enable-threads", "--module", "server_app:app", "--disable-logging"),
        *options,
    ]


GRACEFUL_STOP = (
    *("--hook-master-start", "unix_signal:15 gracefully_kill_them_all"),
    *("--hook-master-start", "unix_signal:2 gracefully_kill_them_all"),
)
UWSGI_WARNING = "uWSGI ends a worker at once on SIGTERM and SIGINT"
APP_READY = "WSGI app 0 (mountpoint='') ready"


def apps_loaded(count: int) -> harness.Ready:
    """Ready once uWSGI loaded the app `count` times: with --lazy-apps each worker loads
    it after the port is open."""
    return harness.logged(APP_READY, count)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
@pytest.mark.parametrize(
    "mode", [(), ("--threads", "4"), ("--lazy-apps",)], ids=["processes", "threads", "lazy-apps"]
)
def test_uwsgi_stopped_gracefully_runs_every_answered_task(
    tmp_path: Path, mode: tuple[str, ...], signum: int
) -> None:
    argv = uwsgi(*GRACEFUL_STOP, *mode)
    ready = apps_loaded(2 if "--lazy-apps" in mode else 1)
    server, stopped = stopped_mid_load(tmp_path, argv, CONFIG, signum, group=False, ready=ready)
    assert stopped.code == 0, stopped.log
    ran = assert_stopped_cleanly(server, stopped, MARGIN)
    assert UWSGI_WARNING not in stopped.log
    print(
        f"uWSGI {' '.join(mode) or 'processes'}, {signal.Signals(signum).name}:"
        f" {len(stopped.load.answered)} answered, {stopped.written_at_signal} written at the"
        f" signal, {len(ran)} ran; exited {stopped.elapsed:.2f}s after it"
    )


@pytest.mark.parametrize(
    ("options", "fix"),
    [
        (("--die-on-term",), '--hook-master-start "unix_signal:15 gracefully_kill_them_all"'),
        ((*GRACEFUL_STOP, "--skip-atexit-teardown"), "Drop --skip-atexit-teardown"),
    ],
    ids=["no-graceful-stop", "skip-atexit-teardown"],
)
def test_uwsgi_without_a_graceful_stop_says_so_at_startup(
    tmp_path: Path, options: tuple[str, ...], fix: str
) -> None:
    argv = uwsgi(*options)
    server = harness.launch(tmp_path, argv, CONFIG, app_dir=APP_DIR, scrub=SCRUB, group=True)
    with harness.serving(server, ready=lambda *_: None):
        assert get(server.port, "/ping") == (200, "pong")  # uWSGI binds, then loads
        log = server.output()
    assert f"[WARNING] background: {UWSGI_WARNING}" in log, log
    assert fix in log, log
