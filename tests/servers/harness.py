"""What tests/flask/test_servers.py and tests/fastapi/test_servers.py share: starting a
real server as a subprocess on a free port of 127.0.0.1 (a bench/server_process.py
`ServerProcess`, as the benchmarks' and the demo's are), firing tasks at it through HTTP,
stopping it by a signal, and reading the file its tasks appended ``"<pid> <i>"`` lines to.

Each framework's folder holds a ``server_app.py`` that the server loads as
``server_app:app``; it imports tests/servers/app_support.py, which is why the servers'
PYTHONPATH holds this folder too. Import this module as ``from ..servers.harness import``
(pytest runs in importlib mode; tests/servers has no ``__init__.py``).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest

from bench.server_process import ServerProcess, get, with_sigint

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BIN = Path(sys.executable).parent
GUNICORN = BIN / "gunicorn"
APP = "server_app:app"
OUT = "ran.txt"  # where the app's tasks write, in the server's folder

DRAIN = 5.0  # BACKGROUND_DRAIN_TIMEOUT where tasks should all finish

POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# Environment variables no server inherits from the test run; each framework adds its own.
SCRUBBED = ("BACKGROUND_", "GUNICORN_", "SERVER_APP_")

T = TypeVar("T")


# -- servers -------------------------------------------------------------------------


class Server(ServerProcess):
    """A server that `launch` started in a test's folder; its tasks append
    ``"<pid> <i>"`` lines to `out` there."""

    @property
    def out(self) -> Path:
        return self.cwd / OUT

    def lines(self) -> list[tuple[int, str]]:
        """The tasks that ran, as (pid, tag), in the order they wrote."""
        if not self.out.exists():
            return []
        return [
            (int(pid), tag)
            for pid, tag in (line.split() for line in self.out.read_text().splitlines())
        ]

    def written(self) -> int:
        """How many tasks have run so far (complete lines; tasks may be writing)."""
        return self.out.read_text().count("\n") if self.out.exists() else 0


def launch(
    tmp_path: Path,
    argv: list[str],
    config: dict[str, str],
    *,
    app_dir: Path,
    scrub: tuple[str, ...] = (),
    group: bool,
) -> Server:
    """Start a server (``{port}`` in `argv` is replaced) in `tmp_path`, with `group` in a
    process group of its own (so that `kill` reaches workers it never heard of); the caller
    must `kill` it. It inherits the test run's environment without variables starting with
    SCRUBBED or `scrub`, with `config`, and with `app_dir` (where server_app.py is) on
    PYTHONPATH."""
    return Server(
        with_sigint(argv),
        name="server",
        log_dir=tmp_path,
        cwd=tmp_path,
        group=group,
        env={"SERVER_APP_OUT": str(tmp_path / OUT), **config},
        scrub=(*SCRUBBED, *scrub),
        pythonpath=(app_dir, HERE, ROOT),
    )


def stop(
    server: Server, signum: int, *, timeout: float, group: bool = False
) -> tuple[int, float, str]:
    """`Server.send` `signum` and wait up to `timeout` seconds for the main process to
    exit; return its exit status, the seconds from the signal to the exit, and the log."""
    sent = server.send(signum, group=group)
    code = server.wait(timeout)
    assert server.exited_at is not None
    return code, server.exited_at - sent, server.output()


# ready(server, deadline, timeout): fail unless the server answers as it should by
# `deadline` (a time.monotonic() value, `timeout` seconds after the launch).
Ready = Callable[[Server, float, float], None]


def logged(text: str, count: int, then: Ready | None = None) -> Ready:
    """Ready once the server's output holds `text` `count` times (each worker saying it
    started, say), then `then`'s check. A worker still starting may miss a stop signal
    sent to the group (granian's and uWSGI's, seen under CPU load), and its server then
    waits for it without limit."""

    def ready(server: Server, deadline: float, timeout: float) -> None:
        while server.output().count(text) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not logged {count} times:\n{server.output()}")
            threading.Event().wait(0.05)
        if then is not None:
            then(server, deadline, timeout)

    return ready


@contextmanager
def serving(server: Server, ready: Ready, timeout: float = 20) -> Iterator[Server]:
    """Wait until the `launch`ed `server` listens and is `ready`, yield it, and kill it at
    the end."""
    try:
        deadline = time.monotonic() + timeout
        server.wait_until_serving(timeout)
        ready(server, deadline, timeout)
        yield server
    finally:
        server.kill()


def gunicorn(*options: str) -> list[str]:
    return [
        str(GUNICORN),
        "--bind",
        "127.0.0.1:{port}",
        "--no-control-socket",
        *options,
        APP,
    ]


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a reused pid of another user
        return True
    return True


# -- load ------------------------------------------------------------------------------


@dataclass
class Load(Generic[T]):
    """What a load run saw: each answered request's answer (parsed), by index, and the
    failures."""

    answered: dict[int, T] = field(default_factory=dict)
    failed: list[tuple[int, str]] = field(default_factory=list)
    triggered_at: float | None = None


def fire(
    server: Server,
    count: int,
    *,
    parse: Callable[[str], T],
    clients: int = 4,
    after: int | None = None,
    then: Callable[[], float] | None = None,
    timeout: float = 30,
    path: str = "/fire/{i}",
) -> Load[T]:
    """GET /fire/0 .. /fire/<count-1> (`path`) from `clients` threads; `parse` each
    answer's body.

    Once `after` requests were answered, call `then` (which sends a signal and returns
    when). A client stops at its first failed request; all stop after `timeout` seconds.
    """
    load: Load[T] = Load()
    lock = threading.Lock()
    indices = iter(range(count))
    deadline = time.monotonic() + timeout

    def client() -> None:
        while time.monotonic() < deadline:
            with lock:
                i = next(indices, None)
            if i is None:
                return
            try:
                status, body = get(server.port, path.format(i=i))
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    load.failed.append((i, repr(exc)))
                return
            with lock:
                if status != 200:
                    load.failed.append((i, f"HTTP {status} {body!r}"))
                    return
                try:
                    load.answered[i] = parse(body)
                except http.client.IncompleteRead as exc:  # `parse` saw the body cut off
                    load.failed.append((i, repr(exc)))
                    return
                trigger = then is not None and len(load.answered) == after
            if trigger:
                assert then is not None
                load.triggered_at = then()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + 10)
    if any(thread.is_alive() for thread in threads):
        pytest.fail("a client hung")
    return load


@dataclass
class Stopped(Generic[T]):
    """A server stopped by SIGTERM in the middle of a load run."""

    load: Load[T]
    requests: int
    written_at_signal: int
    answered_at_signal: int
    code: int
    elapsed: float  # seconds from SIGTERM to the main process's exit
    log: str


def sigterm_mid_load(
    server: Server,
    requests: int,
    *,
    after: int,
    parse: Callable[[str], T],
    signum: int = signal.SIGTERM,
    group: bool = False,
    path: str = "/fire/{i}",
) -> Stopped[T]:
    """Fire `requests` tasks, send `signum` (SIGTERM) to the server's main process, or
    with `group` to its process group, after `after` answers, and wait for it to exit."""
    at_signal: list[int] = []

    def terminate() -> float:
        at_signal.append(server.written())
        return server.send(signum, group=group)

    load = fire(server, requests, parse=parse, after=after, then=terminate, path=path)
    assert load.triggered_at is not None, load
    code = server.wait(DRAIN + 15)
    elapsed = time.monotonic() - load.triggered_at
    return Stopped(load, requests, at_signal[0], after, code, elapsed, server.output())


# -- checks ----------------------------------------------------------------------------


def assert_each_ran_once(server: Server, indices: set[int]) -> Counter[str]:
    """Every index in `indices` ran exactly once; nothing ran twice. Returns the tags."""
    ran = Counter(tag for _, tag in server.lines())
    twice = sorted(tag for tag, n in ran.items() if n > 1)
    assert not twice, f"ran more than once: {twice}"
    lost = sorted(i for i in indices if str(i) not in ran)
    assert not lost, f"{len(lost)} answered requests' tasks never ran: {lost}"
    return ran


def assert_ran_where_served(server: Server, served_by: Mapping[int, int]) -> None:
    """Each answered request's task ran in the process that answered it (`served_by`:
    the pid that answered, by index)."""
    ran_in = {tag: pid for pid, tag in server.lines()}
    wrong = {i: (pid, ran_in[str(i)]) for i, pid in served_by.items() if ran_in[str(i)] != pid}
    assert not wrong, f"tasks that ran in another process than the one that served: {wrong}"


# CPython's asyncio issue 109564, a race in Server.close (3.12, 3.13): a connection's
# transport collected after the close prints this from its __del__. It is the server's
# event loop failing to tell its own waiters, with no task or request of ours involved.
ASYNCIO_SERVER_CLOSE_RACE = re.compile(
    r"Exception ignored in: <function _SelectorTransport\.__del__ at 0x[0-9a-f]+>\n"
    r"Traceback \(most recent call last\):\n"
    r"(?:  .*\n)*?  .* in _wakeup\n(?:  .*\n)*"
    r"TypeError: 'NoneType' object is not iterable\n?"
)


def assert_no_traceback(log: str) -> None:
    """The server logged no traceback but CPython's known asyncio close race."""
    assert "Traceback" not in ASYNCIO_SERVER_CLOSE_RACE.sub("", log), log


def assert_stopped_cleanly(server: Server, stopped: Stopped[Any], margin: float) -> Counter[str]:
    """After a signal mid-load: the server exited within the drain deadline (and
    `margin`), every answered task ran exactly once, nothing was left unfinished."""
    assert stopped.elapsed < DRAIN + margin, (stopped.elapsed, stopped.log)
    assert len(stopped.load.answered) >= stopped.answered_at_signal, stopped.load.failed
    ran = assert_each_ran_once(server, set(stopped.load.answered))
    assert "unfinished" not in stopped.log, stopped.log
    assert_no_traceback(stopped.log)
    return ran


def unfinished_warning(pool: str, task_id: int) -> str:
    """What the library logs of the task that hangs (see server_app.py's /hang)."""
    return (
        f"[WARNING] background: pool {pool!r} shut down with 1 task unfinished (1 running, "
        f"0 not started): 'hang-forever' (id {task_id}, running"
    )


# -- overload --------------------------------------------------------------------------


@dataclass
class Hammered:
    """What clients on keep-alive connections saw: statuses, headers, and lost connections."""

    statuses: Counter[int] = field(default_factory=Counter)
    accepted: list[int] = field(default_factory=list)  # indices answered 200
    retry_after: Counter[str | None] = field(default_factory=Counter)  # on 503s
    bodies: dict[int, str] = field(default_factory=dict)  # one per status
    closed: int = 0  # connections the server closed, or reset
    seconds: float = 0.0


def hammer(server: Server, path: str, count: int, *, clients: int, timeout: float = 60) -> Hammered:
    """GET ``path.format(i=i)`` for i < `count` from `clients` threads, each on one
    keep-alive connection (opened again if the server closes it, which is counted).
    Bounded by `count` and `timeout`."""
    seen = Hammered()
    lock = threading.Lock()
    indices = iter(range(count))
    began = time.monotonic()
    deadline = began + timeout

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            while time.monotonic() < deadline:
                with lock:
                    i = next(indices, None)
                if i is None:
                    return
                try:
                    conn.request("GET", path.format(i=i))
                    response = conn.getresponse()
                    body = response.read().decode()
                except (OSError, http.client.HTTPException):
                    with lock:
                        seen.closed += 1
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                    continue
                with lock:
                    seen.statuses[response.status] += 1
                    seen.bodies.setdefault(response.status, body)
                    if response.status == 200:
                        seen.accepted.append(i)
                    elif response.status == 503:
                        seen.retry_after[response.getheader("Retry-After")] += 1
                if response.will_close:  # the server asked to close after this answer
                    with lock:
                        seen.closed += 1
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 10)
    seen.seconds = time.monotonic() - began
    return seen


def pool_stats(server: Server) -> dict[str, Any]:
    """The pool's counters, as the app's ``/stats`` answers them."""
    status, body = get(server.port, "/stats")
    assert status == 200, body
    answer: dict[str, Any] = json.loads(body)
    return answer


def ping_while(server: Server, busy: threading.Event, path: str = "/ping") -> list[float]:
    """Seconds each ``GET path`` took, one after another, until `busy` is cleared
    (bounded: at most 2,000 requests)."""
    took: list[float] = []
    while busy.is_set() and len(took) < 2000:
        began = time.monotonic()
        status, _ = get(server.port, path, timeout=30)
        took.append(time.monotonic() - began)
        assert status == 200, status
        threading.Event().wait(0.01)
    return took
