"""django_background under real servers: gunicorn (sync and gthread, 2 workers), uvicorn
(with `django_background.lifespan`, and without it), and ``manage.py runserver`` (with
``--noreload`` and with the autoreloader), stopped by SIGTERM or Ctrl-C mid-load.

The servers run the project in tests/django/server_project/ (``settings``, ``wsgi``,
``asgi``, ``manage.py``); tests/servers/harness.py starts them, loads them and reads what
their tasks wrote.
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from bench.server_process import get
from tests.helpers import wait_until

from ..servers import harness
from ..servers.harness import (
    BIN,
    DRAIN,
    GUNICORN,
    POSIX_ONLY,
    Server,
    Stopped,
    assert_each_ran_once,
    assert_ran_where_served,
    assert_stopped_cleanly,
    logged,
    stop,
)

pytestmark = POSIX_ONLY

PROJECT = Path(__file__).resolve().parent / "server_project"
MANAGE = PROJECT / "manage.py"
UVICORN = BIN / "uvicorn"
SCRUB = ("DJANGO_", "RUN_MAIN", "UVICORN_", "WEB_")  # besides the harness's own

WSGI_LOADED = "wsgi: application loaded"  # as server_project/wsgi.py says it
MARGIN = 2.5  # seconds a server may take beyond the drain deadline to exit
REQUESTS = 300
SIGNAL_AFTER = 150  # answered requests
# 2 pool threads per process for 20 ms tasks: a backlog builds up, so the drain has work.
CONFIG = {
    "DJANGO_SETTINGS_MODULE": "settings",
    "BACKGROUND_WORKERS": "2",
    "BACKGROUND_DRAIN_TIMEOUT": str(DRAIN),
}


# -- servers -------------------------------------------------------------------------


@contextmanager
def serving(
    tmp_path: Path,
    argv: list[str],
    config: dict[str, str] | None = None,
    *,
    workers: int = 0,
    group: bool = True,
) -> Iterator[Server]:
    """Start a server on the project, in a process group of its own; wait until it answers
    (and until gunicorn's `workers` loaded it); kill whatever is left of it at the end."""
    env = {**CONFIG, **(config or {})}
    server = harness.launch(tmp_path, argv, env, app_dir=PROJECT, scrub=SCRUB, group=group)
    ready = logged(WSGI_LOADED, workers, answering) if workers else answering
    with harness.serving(server, ready=ready):
        yield server


def answering(server: Server, deadline: float, timeout: float) -> None:
    """A request is answered: 404, as the project has no /ready."""
    status, _ = get(server.port, "/ready", timeout=max(1.0, deadline - time.monotonic()))
    if status != 404:
        pytest.fail(f"GET /ready answered {status}:\n{server.output()}")


def gunicorn(*options: str) -> list[str]:
    bind = ["--bind", "127.0.0.1:{port}", "--no-control-socket", "--graceful-timeout", "20"]
    return [str(GUNICORN), *bind, *options, "wsgi:application"]


def uvicorn(app: str = "asgi:application") -> list[str]:
    return [str(UVICORN), "--host", "127.0.0.1", "--port", "{port}", app]


def runserver(*options: str) -> list[str]:
    return [sys.executable, str(MANAGE), "runserver", *options, "127.0.0.1:{port}"]


# -- load ------------------------------------------------------------------------------


def response_pid(body: str) -> int:
    if not body:
        # runserver's request threads are daemons: a response under way when the process
        # exits is cut off after its headers (no Content-Length tells the client). Not
        # answered, then.
        raise http.client.IncompleteRead(b"")
    match = re.fullmatch(r"ok (\d+)", body)
    if not match:
        pytest.fail(f"unexpected response {body!r}")
    return int(match[1])


# runserver's own noise at Ctrl-C: it closes a connection that a request thread is still
# reading (Django's basehttp), which prints a traceback ending in EBADF. Not ours: the
# checks look for tracebacks in what is left.
RUNSERVER_SOCKET_ERROR = re.compile(
    r"^Traceback \(most recent call last\):\n(?:[ \t].*\n)*?"
    r"(?:[ \t].*django/core/servers/basehttp\.py.*\n)(?:[ \t].*\n)*"
    r"OSError: \[Errno 9\] Bad file descriptor\n",
    re.MULTILINE,
)


def signal_mid_load(
    server: Server, signum: int = signal.SIGTERM, *, group: bool = False
) -> Stopped[int]:
    """Fire REQUESTS tasks, send `signum` to the main process (with `group`, to its process
    group) after SIGNAL_AFTER answers, wait for it to exit, and check that every answered
    task ran exactly once, in the process that answered, and that the drain had work."""
    stopped = harness.sigterm_mid_load(
        server, REQUESTS, after=SIGNAL_AFTER, parse=response_pid, signum=signum, group=group
    )
    stopped = dataclasses.replace(stopped, log=RUNSERVER_SOCKET_ERROR.sub("", stopped.log))
    assert_stopped_cleanly(server, stopped, MARGIN)
    assert_ran_where_served(server, stopped.load.answered)
    # The drain had work to do: tasks of answered requests were still waiting.
    assert stopped.written_at_signal < stopped.answered_at_signal, stopped
    return stopped


def report(name: str, server: Server, stopped: Stopped[int]) -> None:
    ran = Counter(pid for pid, _ in server.lines())
    print(
        f"{name}: {len(stopped.load.answered)} answered, {stopped.written_at_signal} written"
        f" at the signal, {sum(ran.values())} ran ({dict(ran)}), 0 lost; exited"
        f" {stopped.elapsed:.2f}s after it with {stopped.code}"
    )


# -- gunicorn ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "worker",
    [["-k", "sync"], ["-k", "gthread", "--threads", "4"]],
    ids=["sync", "gthread"],
)
def test_gunicorn_sigterm_to_the_master_drains_each_worker(
    tmp_path: Path, worker: list[str]
) -> None:
    # Each worker stops gracefully and leaves through the interpreter's exit: the engine's
    # exit hook drains its pool. Nothing of the adapter's is needed.
    with serving(tmp_path, gunicorn(*worker, "-w", "2"), workers=2) as server:
        stopped = signal_mid_load(server)

    assert stopped.code == 0, stopped.log
    if worker[1] == "sync":  # one at a time each: both answer (a gthread worker may take all)
        assert len(set(stopped.load.answered.values())) == 2, "both workers answered"
    report(f"gunicorn {worker[1]} -w 2", server, stopped)


# -- uvicorn ---------------------------------------------------------------------------


def test_uvicorn_with_the_lifespan_drains_at_shutdown(tmp_path: Path) -> None:
    with serving(tmp_path, uvicorn()) as server:
        stopped = signal_mid_load(server)

    # uvicorn runs the lifespan's shutdown (the drain), then raises SIGTERM again.
    assert stopped.code == -signal.SIGTERM, stopped.log
    assert "Application startup complete." in stopped.log, stopped.log
    assert "Application shutdown complete." in stopped.log, stopped.log
    report("uvicorn, lifespan()", server, stopped)


def test_uvicorn_without_the_lifespan_loses_the_queued_tasks(tmp_path: Path) -> None:
    # What the lifespan is for: Django's ASGI handler alone refuses the lifespan, and
    # uvicorn's SIGTERM then ends the process with no exit hook. 200 ms tasks, 2 threads:
    # 30 tasks need 3 s, and uvicorn exits at once.
    config = {"SERVER_APP_TASK_SECONDS": "0.2"}
    with serving(tmp_path, uvicorn("asgi:django_application"), config) as server:
        load = harness.fire(server, 30, parse=response_pid)
        assert not load.failed, load.failed
        code, elapsed, log = stop(server, signal.SIGTERM, timeout=DRAIN + 10)

    assert code == -signal.SIGTERM, log
    assert "ASGI 'lifespan' protocol appears unsupported." in log, log
    ran = len(server.lines())
    assert ran < 30, f"all {ran} tasks ran: nothing was lost"
    print(f"uvicorn, no lifespan: 30 answered, {ran} ran, {30 - ran} lost; exited {elapsed:.2f}s")


# -- runserver --noreload ------------------------------------------------------------------


def test_runserver_noreload_sigterm_with_the_handler_drains(tmp_path: Path) -> None:
    config = {"BACKGROUND_SIGTERM_HANDLER": "true"}
    with serving(tmp_path, runserver("--noreload"), config) as server:
        stopped = signal_mid_load(server, group=True)

    # The handler drains, then ends the process by SIGTERM as it would have.
    assert stopped.code == -signal.SIGTERM, stopped.log
    assert "installs no SIGTERM handler" not in stopped.log, stopped.log
    report("runserver --noreload, SIGTERM to the group", server, stopped)


def test_runserver_noreload_ctrl_c_drains(tmp_path: Path) -> None:
    with serving(tmp_path, runserver("--noreload")) as server:
        # Without the handler, the library says at startup what a SIGTERM would do.
        assert "Set BACKGROUND_SIGTERM_HANDLER = True" in server.output(), server.output()
        stopped = signal_mid_load(server, signal.SIGINT, group=True)  # as from a terminal

    assert stopped.code == 0, stopped.log
    report("runserver --noreload, Ctrl-C to the group", server, stopped)


# -- runserver with the autoreloader ---------------------------------------------------------


def autoreloading(tmp_path: Path, **config: str) -> AbstractContextManager[Server]:
    """runserver with its autoreloader, which also watches tmp_path/reload.txt; one pool
    thread, so that tasks queue up."""
    watched = tmp_path / "reload.txt"
    watched.write_text("")
    config = {"SERVER_APP_RELOAD": str(watched), "BACKGROUND_WORKERS": "1", **config}
    return serving(tmp_path, runserver(), config)


def fire_at_the_child(server: Server, count: int) -> tuple[int, int]:
    """Fire `count` tasks; return the pid of the autoreloader's child that served them,
    and how many ran so far. Fails (rather than asserts) if anything is amiss, so that an
    expected failure can only be the loss of tasks."""
    load = harness.fire(server, count, parse=response_pid)
    if load.failed:
        pytest.fail(f"requests failed: {load.failed}")
    children = set(load.answered.values())
    if len(children) != 1 or server.proc.pid in children:
        pytest.fail(f"not served by one child: {children}, parent {server.proc.pid}")
    written = server.written()
    if written >= count:
        pytest.fail("every task ran before the signal: the drain would not be exercised")
    return children.pop(), written


def test_runserver_autoreload_sigterm_to_the_serving_child_drains(tmp_path: Path) -> None:
    # Django's autoreloader handles SIGTERM with sys.exit(0): the exit hook drains.
    with autoreloading(tmp_path) as server:
        child, written = fire_at_the_child(server, 50)
        sent = time.monotonic()
        os.kill(child, signal.SIGTERM)
        code = server.wait(DRAIN + 10)  # the parent ends with its child's status
        elapsed = time.monotonic() - sent
        log = server.output()

    assert code == 0, log
    assert elapsed < DRAIN + MARGIN, (elapsed, log)
    assert_each_ran_once(server, set(range(50)))
    assert {pid for pid, _ in server.lines()} == {child}
    print(f"autoreload, SIGTERM to the child: 50 answered, {written} written, 50 ran;")
    print(f"  exited {elapsed:.2f}s after it with {code}")


def test_runserver_autoreload_a_reload_runs_the_tasks_in_flight(tmp_path: Path) -> None:
    # A code change ends the child by sys.exit(3) from its main thread: a normal exit,
    # whose hook drains, while a new child waits for it to end. The reloader looks once a
    # second: 30 tasks of 100 ms on one thread take 3 s, so some wait at the reload.
    with autoreloading(tmp_path, SERVER_APP_TASK_SECONDS="0.1") as server:
        child, _ = fire_at_the_child(server, 30)
        written = touch_until_reloading(server, tmp_path / "reload.txt")
        wait_until(lambda: new_child(server, child), "a new child serves", timeout=20)

    assert written < 30, "every task ran before the reload: the drain was not exercised"
    assert_each_ran_once(server, set(range(30)))
    assert {pid for pid, _ in server.lines()} == {child}
    print(f"autoreload, a reload: 30 answered, {written} written at the reload, 30 ran")


def touch_until_reloading(server: Server, watched: Path) -> int:
    """Change `watched`'s mtime every 0.2 s until the reloader says it reloads (its first
    look may come after the first change, which it then takes as the file's own); return
    how many tasks had run by then."""
    deadline = time.monotonic() + 10
    later = time.time()
    while "reload.txt changed, reloading." not in server.output():
        if time.monotonic() > deadline:
            pytest.fail(f"no reload:\n{server.output()}")
        later += 10  # later than any mtime the reloader saw
        os.utime(watched, (later, later))
        threading.Event().wait(0.2)
    return server.written()


def new_child(server: Server, old: int) -> bool:
    try:
        status, body = get(server.port, "/pid", timeout=2)
    except (OSError, http.client.HTTPException):
        return False
    return status == 200 and int(body) != old


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason=(
        "Django, not this library: the autoreloader's parent waits for its child in "
        "subprocess.run(), and leaving it by an exception (SystemExit from Django's SIGTERM "
        "handler at once, KeyboardInterrupt after Popen's 0.25 s grace) makes run() "
        "SIGKILL the serving child in the middle of its exit-time drain"
    ),
)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_runserver_autoreload_signal_to_the_group_drains(tmp_path: Path, signum: int) -> None:
    with autoreloading(tmp_path) as server:
        _, written = fire_at_the_child(server, 50)
        code, elapsed, _ = stop(server, signum, timeout=DRAIN + 10, group=True)
        print(f"autoreload, {signum!r} to the group: 50 answered, {written} written;")
        print(f"  the parent exited {elapsed:.2f}s after with {code}, {len(server.lines())} ran")

    assert_each_ran_once(server, set(range(50)))
