"""The FastAPI adapter under real servers: uvicorn (one process and ``--workers 2``) and
gunicorn with uvicorn's worker class, stopped by SIGTERM mid-load; a task that hangs past
the drain deadline; and a startup failure inside the composed lifespan.

Each test starts a server as a subprocess on a free port of 127.0.0.1, loading
tests/fastapi/server_app.py, fires tasks through HTTP, stops the server by a signal, and
reads the file the tasks appended ``"<pid> <i>"`` lines to.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BIN = Path(sys.executable).parent
UVICORN = BIN / "uvicorn"
GUNICORN = BIN / "gunicorn"
POOL = "app"  # the adapter's lifespan names its pool "app" by default
APP = "server_app:app"
STARTUP_ERROR = "server_app: the app's own lifespan failed on purpose"  # as in server_app.py
STARTUP_FAILURE = 3  # uvicorn.config.STARTUP_FAILURE: uvicorn's exit status then

# Runs argv[1:] in its place with Ctrl-C restored: a shell's background job (`make test &`)
# starts with SIGINT ignored, and its children would inherit that.
WITH_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)

DRAIN = 5.0  # BACKGROUND_DRAIN_TIMEOUT where tasks should all finish
MARGIN = 1.0  # seconds a server may take beyond the drain deadline to exit
REQUESTS = 500
SIGTERM_AFTER = 250  # answered requests


# -- servers -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    out: Path  # the file tasks append to
    err: Path  # the server's stderr (and stdout)

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

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

    def terminate(self) -> float:
        """Send SIGTERM to the server's main process only (a supervisor relays it to its
        workers); return when."""
        self.proc.send_signal(signal.SIGTERM)
        return time.monotonic()

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the server did not exit within {timeout}s:\n{self.stderr()}")


def server_env(tmp_path: Path, config: dict[str, str]) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BACKGROUND_", "UVICORN_", "GUNICORN_", "SERVER_APP_", "WEB_"))
    }
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(HERE), str(ROOT), os.environ.get("PYTHONPATH")])
    )
    env["PYTHONUNBUFFERED"] = "1"
    env["SERVER_APP_OUT"] = str(tmp_path / "ran.txt")
    env.update(config)
    return env


def launch(tmp_path: Path, argv: list[str], config: dict[str, str]) -> Server:
    """Start a server (``{port}`` in `argv` is replaced) in a process group of its own;
    the caller must `kill` it."""
    port = free_port()
    err = tmp_path / "server.err"
    with err.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-c", WITH_SIGINT, *(arg.format(port=port) for arg in argv)],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=server_env(tmp_path, config),
            cwd=tmp_path,
            start_new_session=True,  # so that `kill` reaches workers it never heard of
        )
    return Server(proc, port, tmp_path / "ran.txt", err)


def kill(server: Server) -> None:
    """Kill whatever is left of the server's process group, and reap its main process."""
    with suppress(ProcessLookupError):
        os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(timeout=10)


@contextmanager
def serving(
    tmp_path: Path, argv: list[str], config: dict[str, str], *, processes: int = 1
) -> Iterator[tuple[Server, set[int]]]:
    """Start a server, wait until `processes` distinct processes answer, yield it with
    their pids, and kill whatever is left of it (its workers too) at the end."""
    server = launch(tmp_path, argv, config)
    pids: set[int] = set()
    try:
        wait_until_serving(server, config, processes, pids)
        yield server, pids
    finally:
        kill(server)


def wait_until_serving(
    server: Server, config: dict[str, str], processes: int, pids: set[int], timeout: float = 20
) -> None:
    """Poll the port until it accepts, then GET /state until `processes` distinct
    processes answered (adding their pids to `pids`), each with the lifespans' state:
    one pool, configured from `config`, on the app and in the request's state."""
    expected = {
        "pool": POOL,
        "workers": int(config["BACKGROUND_WORKERS"]),
        "drain_timeout": float(config["BACKGROUND_DRAIN_TIMEOUT"]),
        "on_app": True,
        "background_of": True,
        "app_lifespan": "ran",
    }
    deadline = time.monotonic() + timeout
    while True:
        if server.proc.poll() is not None:
            pytest.fail(f"the server exited with {server.proc.returncode}:\n{server.stderr()}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not listen within {timeout}s:\n{server.stderr()}")
            threading.Event().wait(0.05)
    while len(pids) < processes:
        if time.monotonic() > deadline:
            pytest.fail(f"only {sorted(pids)} answered within {timeout}s:\n{server.stderr()}")
        status, body = get(server.port, "/state", timeout=max(1.0, deadline - time.monotonic()))
        if status != 200:
            pytest.fail(f"GET /state answered {status} {body!r}:\n{server.stderr()}")
        state = json.loads(body)
        pids.add(state.pop("pid"))
        assert state == expected, state


def get(port: int, path: str, timeout: float = 5) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def uvicorn(*options: str) -> list[str]:
    return [str(UVICORN), "--host", "127.0.0.1", "--port", "{port}", *options, APP]


def gunicorn(*options: str) -> list[str]:
    return [
        str(GUNICORN),
        "--bind",
        "127.0.0.1:{port}",
        "--no-control-socket",
        *options,
        APP,
    ]


# -- load ------------------------------------------------------------------------------


@dataclass
class Load:
    """What a load run saw: each answered request's pid, by index, and the failures."""

    answered: dict[int, int] = field(default_factory=dict)
    failed: list[tuple[int, str]] = field(default_factory=list)
    triggered_at: float | None = None


def fire(
    server: Server,
    count: int,
    *,
    clients: int = 4,
    after: int | None = None,
    then: Callable[[], float] | None = None,
    timeout: float = 30,
) -> Load:
    """GET /fire/0 .. /fire/<count-1> from `clients` threads.

    Once `after` requests were answered, call `then` (which sends a signal and returns
    when). A client stops at its first failed request; all stop after `timeout` seconds.
    """
    load = Load()
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
                status, body = get(server.port, f"/fire/{i}")
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    load.failed.append((i, repr(exc)))
                return
            with lock:
                if status != 200:
                    load.failed.append((i, f"HTTP {status} {body!r}"))
                    return
                load.answered[i] = response_pid(body)
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


def response_pid(body: str) -> int:
    try:
        answer: Any = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or set(answer) != {"pid"} or type(answer["pid"]) is not int:
        pytest.fail(f"unexpected response {body!r}")
    return int(answer["pid"])


def assert_each_ran_once(server: Server, indices: set[int]) -> Counter[str]:
    """Every index in `indices` ran exactly once; nothing ran twice. Returns the tags."""
    ran = Counter(tag for _, tag in server.lines())
    twice = sorted(tag for tag, n in ran.items() if n > 1)
    assert not twice, f"ran more than once: {twice}"
    lost = sorted(i for i in indices if str(i) not in ran)
    assert not lost, f"{len(lost)} answered requests' tasks never ran: {lost}"
    return ran


def assert_ran_where_served(server: Server, load: Load) -> None:
    """Each answered request's task ran in the process that answered it."""
    ran_in = {tag: pid for pid, tag in server.lines()}
    wrong = {i: (pid, ran_in[str(i)]) for i, pid in load.answered.items() if ran_in[str(i)] != pid}
    assert not wrong, f"tasks that ran in another process than the one that served: {wrong}"


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a reused pid of another user
        return True
    return True


@dataclass
class Stopped:
    """A server stopped by SIGTERM in the middle of a load run."""

    load: Load
    requests: int
    written_at_signal: int
    answered_at_signal: int
    code: int
    elapsed: float  # seconds from SIGTERM to the main process's exit
    log: str


def sigterm_mid_load(server: Server, requests: int = REQUESTS) -> Stopped:
    """Fire `requests` tasks, SIGTERM the server's main process after SIGTERM_AFTER
    answers, and wait for it to exit."""
    at_signal: list[int] = []

    def terminate() -> float:
        at_signal.append(server.written())
        return server.terminate()

    load = fire(server, requests, after=SIGTERM_AFTER, then=terminate)
    assert load.triggered_at is not None, load
    code = server.wait(DRAIN + 15)
    elapsed = time.monotonic() - load.triggered_at
    return Stopped(load, requests, at_signal[0], SIGTERM_AFTER, code, elapsed, server.stderr())


def assert_drained_every_answered_task(server: Server, stopped: Stopped) -> Counter[str]:
    load, log = stopped.load, stopped.log
    assert stopped.elapsed < DRAIN + MARGIN, (stopped.elapsed, log)
    assert SIGTERM_AFTER <= len(load.answered) < stopped.requests, (len(load.answered), load.failed)
    assert load.failed, "no request failed after SIGTERM"
    # The drain had work to do: tasks of answered requests were still waiting at SIGTERM.
    assert stopped.written_at_signal < stopped.answered_at_signal, stopped
    ran = assert_each_ran_once(server, set(load.answered))
    assert set(ran) <= {str(i) for i in range(stopped.requests)}, ran
    assert_ran_where_served(server, load)
    assert "unfinished" not in log, log
    assert "Traceback" not in log, log
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


def test_uvicorn_workers_sigterm_to_the_supervisor_drains_each_worker(tmp_path: Path) -> None:
    argv = uvicorn("--workers", "2")
    with serving(tmp_path, argv, LOAD_CONFIG, processes=2) as (server, pids):
        # The supervisor looks at its signals every 0.5 s: its workers may answer
        # hundreds of requests more before they get SIGTERM, hence more requests.
        stopped = sigterm_mid_load(server, requests=3 * REQUESTS)
        alive = sorted(pid for pid in pids if is_alive(pid))

    # The supervisor relays SIGTERM to its workers, joins them and returns normally.
    assert stopped.code == 0, stopped.log
    assert not alive, f"workers outlived their supervisor: {alive}"
    assert server.proc.pid not in pids
    assert set(stopped.load.answered.values()) <= pids
    ran = assert_drained_every_answered_task(server, stopped)
    for pid in pids:
        assert f"Finished server process [{pid}]" in stopped.log, stopped.log
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
        stopped = sigterm_mid_load(server)
        alive = sorted(pid for pid in pids if is_alive(pid))

    assert stopped.code == 0, stopped.log
    assert not alive, f"workers outlived their master: {alive}"
    assert server.proc.pid not in pids
    assert set(stopped.load.answered.values()) <= pids
    ran = assert_drained_every_answered_task(server, stopped)
    for pid in pids:
        assert f"Finished server process [{pid}]" in stopped.log, stopped.log
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
        assert status == 200, server.stderr()
        hung = json.loads(body)
        assert len(hung) == 1, body
        assert hung[0]["name"] == "hang-forever", body
        task_id = hung[0]["id"]
        load = fire(server, 5)
        assert not load.failed, load.failed
        sent = server.terminate()
        code = server.wait(10)
        elapsed = time.monotonic() - sent
        log = server.stderr()

    assert code == -signal.SIGTERM, log
    assert drain <= elapsed < drain + MARGIN, (elapsed, log)
    warning = f"pool {POOL!r} shut down with task 'hang-forever' (id {task_id}) unfinished: running"
    assert warning in log, log
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
                pytest.fail(f"the app's lifespan did not run within 20s:\n{server.stderr()}")
            threading.Event().wait(0.01)
        failed_at = time.monotonic()
        code = server.wait(10)
        elapsed = time.monotonic() - failed_at
        log = server.stderr()
    finally:
        kill(server)

    assert code == STARTUP_FAILURE, log
    assert f"RuntimeError: {STARTUP_ERROR}" in log, log
    assert "Application startup failed. Exiting." in log, log
    assert "Uvicorn running on" not in log, log
    # The task fired before the failure ran, in the server process; none was cut short.
    assert server.lines() == [(server.proc.pid, "startup")], log
    assert "unfinished" not in log, log
    assert elapsed < MARGIN, (elapsed, log)
    print(f"startup failure: uvicorn exited {elapsed:.2f}s after the failure with {code}")
