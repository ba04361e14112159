"""Real servers for the benchmarks: gunicorn (gthread) with the Flask app, uvicorn with the
FastAPI app, each a subprocess in a process group of its own on a free port of 127.0.0.1.

`launch` starts one and waits (bounded) until it answers ``/ping``; `Server.stop` sends
SIGTERM to its main process and times the exit, killing the group after a bound;
`Server.kill` ends it at once, when how it stops is not what is measured. Also what the
sections built on them share: a seeded order per round, and printing a section.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench import cpus

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
THREADS = 4  # gunicorn gthread's request threads (one worker process)
START_TIMEOUT = 20.0


def gunicorn_argv() -> list[str]:
    """gunicorn, gthread, one worker process of `THREADS` threads: the Flask app."""
    return [
        str(BIN / "gunicorn"),
        "--bind=127.0.0.1:{port}",
        "--worker-class=gthread",
        "--workers=1",
        f"--threads={THREADS}",
        "--no-control-socket",
        "--log-level=warning",
        "bench.apps.flask_app:app",
    ]


def uvicorn_argv() -> list[str]:
    """uvicorn, one process (no supervisor): the FastAPI app."""
    return [
        str(BIN / "uvicorn"),
        "--host=127.0.0.1",
        "--port={port}",
        "--no-access-log",
        "--log-level=warning",
        "bench.apps.fastapi_app:app",
    ]


SERVERS = {"gunicorn": gunicorn_argv, "uvicorn": uvicorn_argv}


@dataclass
class Server:
    """A server subprocess that we started, and what we know about how it ended."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    exited_at: float | None = None
    killed: bool = False
    workdir: Path | None = None  # removed by `kill`: a folder `launch` made for the log
    _waiter: threading.Thread = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # A blocking wait in a thread of its own times the exit exactly (Popen.wait with a
        # timeout polls).
        self._waiter = threading.Thread(target=self._wait, daemon=True)
        self._waiter.start()

    def _wait(self) -> None:
        self.proc.wait()
        self.exited_at = time.monotonic()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float) -> float:
        """SIGTERM the main process (gunicorn's master relays it to its worker); return the
        seconds until it exited. After `timeout` seconds the group is killed and `killed`
        set."""
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(sent, timeout)

    def wait_exit(self, since: float, timeout: float) -> float:
        """Wait up to `timeout` seconds from `since` for the exit; kill the group after."""
        self._waiter.join(max(0.0, since + timeout - time.monotonic()))
        if self.exited_at is None:
            self.killed = True
            self.kill()
        self._kill_group()  # whatever the main process left behind
        assert self.exited_at is not None
        return self.exited_at - since

    def kill(self) -> None:
        """SIGKILL the whole group, reap the main process, remove the log's folder."""
        self._kill_group()
        self._waiter.join(10)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(env: dict[str, str]) -> dict[str, str]:
    """Our environment without ``BACKGROUND_*``/``BENCH_*``, with the checkout's `bench`
    and `integrations` on PYTHONPATH, and `env` added."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BACKGROUND_", "BENCH_"))}
    paths = [str(ROOT), str(ROOT / "integrations"), os.environ.get("PYTHONPATH", "")]
    base["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    base["PYTHONUNBUFFERED"] = "1"
    return {**base, **env}


def launch(server: str, env: dict[str, str]) -> Server:
    """Start `server` ("gunicorn" or "uvicorn") with `env` added, in a process group of its
    own, and wait until it answers ``/ping``. Raises RuntimeError if it does not in time."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="bench-server-"))
    log = workdir / f"{server}-{port}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            cpus.for_server([arg.format(port=port) for arg in SERVERS[server]()]),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=server_env(env),
            cwd=workdir,
            start_new_session=True,
        )
    running = Server(server, proc, port, log, workdir=workdir)
    try:
        _wait_until_serving(running)
    except BaseException:
        running.kill()
        raise
    return running


def launch_each(specs: list[tuple[str, dict[str, str]]], *, at_once: bool) -> Iterator[Server]:
    """Launch the servers of `specs` ((server, env) pairs) one after the other, each when
    the previous one is done with; or with `at_once` all together up front (a quick smoke
    run saves their start-up time that way). The caller stops each one it got; those it
    never got are killed here."""
    if not at_once:
        for name, env in specs:
            yield launch(name, env)
        return
    with ThreadPoolExecutor(len(specs)) as pool:
        futures = [pool.submit(launch, name, env) for name, env in specs]
    servers = [future.result() for future in futures if future.exception() is None]
    failed = [future.exception() for future in futures if future.exception() is not None]
    if failed:
        for running in servers:
            running.kill()
        raise failed[0]  # type: ignore[misc]
    given = 0
    try:
        for running in servers:
            given += 1
            yield running
    finally:
        for running in servers[given:]:
            running.kill()


def _wait_until_serving(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.exited_at is not None:
            raise RuntimeError(f"{server.name} exited at start:\n{server.stderr()}")
        if _answers(server.port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{server.name} did not answer within {START_TIMEOUT}s:\n{server.stderr()}")


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/ping")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def warm_up(server: Server, paths: list[str], count: int = 20) -> None:
    """A few sequential requests on each path, so first-request costs are not measured."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for path in paths:
            for _ in range(count):
                conn.request("GET", path)
                conn.getresponse().read()
    finally:
        conn.close()


# -- what the sections built on these servers share ------------------------------------


def rounds_order(keys: list[str], rounds: int, seed: int) -> list[list[str]]:
    """`keys` in a fresh shuffled order for each round, from a seeded generator."""
    rng = random.Random(seed)
    return [rng.sample(keys, len(keys)) for _ in range(rounds)]
