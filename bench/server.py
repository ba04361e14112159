"""Real servers for the benchmarks: gunicorn (gthread) with the Flask app, uvicorn with the
FastAPI app, each a subprocess in a process group of its own on a free port of 127.0.0.1.

`launch` starts one and waits (bounded) until it answers ``/ping``; `Server.stop` sends
SIGTERM to its main process and times the exit, killing the group after a bound;
`Server.kill` ends it at once, when how it stops is not what is measured. Also what the
sections built on them share: a seeded order per round, and printing a section.
"""

from __future__ import annotations

import http.client
import random
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import cpus
from bench.server_process import HOST, ServerProcess

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
THREADS = 4  # gunicorn gthread's request threads per worker process
START_TIMEOUT = 20.0


def gunicorn_argv(workers: int = 1) -> list[str]:
    """gunicorn, gthread, `workers` worker processes of `THREADS` threads: the Flask app."""
    return [
        str(BIN / "gunicorn"),
        "--bind=127.0.0.1:{port}",
        "--worker-class=gthread",
        f"--workers={workers}",
        f"--threads={THREADS}",
        "--no-control-socket",
        "--log-level=warning",
        "bench.apps.flask_app:app",
    ]


def uvicorn_argv(workers: int = 1) -> list[str]:
    """uvicorn: one process (no supervisor), or a supervisor of `workers` worker processes
    (through bench/apps/uvicorn_workers.py: its socket gets TCP_NODELAY): the FastAPI app."""
    several = [sys.executable, "-m", "bench.apps.uvicorn_workers", f"--workers={workers}"]
    return [
        *(several if workers > 1 else [str(BIN / "uvicorn")]),
        "--host=127.0.0.1",
        "--port={port}",
        "--no-access-log",
        "--log-level=warning",
        "bench.apps.fastapi_app:app",
    ]


SERVERS = {"gunicorn": gunicorn_argv, "uvicorn": uvicorn_argv}


class Server(ServerProcess):
    """A server subprocess of ours, in a folder of its own (its working directory and its
    log's), which `kill` removes."""

    killed = False  # whether `stop` had to kill it

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def stop(self, timeout: float) -> float:
        """SIGTERM the main process (gunicorn's master relays it to its worker); return the
        seconds until it exited. After `timeout` seconds the group is killed and `killed`
        set."""
        sent = self.send(signal.SIGTERM)
        try:
            self.wait(timeout)
        except TimeoutError:
            self.killed = True
        self.kill()  # whatever the main process left behind
        assert self.exited_at is not None
        return self.exited_at - sent

    def kill(self) -> None:
        """SIGKILL the whole group, reap the main process, remove the server's folder."""
        super().kill()
        shutil.rmtree(self.cwd, ignore_errors=True)


def launch(server: str, env: dict[str, str], workers: int = 1) -> Server:
    """Start `server` ("gunicorn" or "uvicorn") of `workers` worker processes with `env`
    added, in a process group of its own, and wait until it answers ``/ping``. Raises
    RuntimeError if it exits first, TimeoutError if it does not answer in time."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-server-"))
    running = Server(
        cpus.for_server(SERVERS[server](workers)),
        name=server,
        log_dir=workdir,
        cwd=workdir,
        group=True,
        env=env,
        scrub=("BACKGROUND_", "BENCH_"),  # the variables that configure this process
        pythonpath=(ROOT, ROOT / "integrations"),
    )
    try:
        running.wait_until_serving(START_TIMEOUT, path="/ping")
    except BaseException:
        running.kill()
        raise
    return running


def launch_each(
    specs: list[tuple[str, dict[str, str]]], *, at_once: bool, workers: int = 1
) -> Iterator[Server]:
    """Launch the servers of `specs` ((server, env) pairs), each of `workers` worker
    processes, one after the other, each when the previous one is done with; or with
    `at_once` all together up front (a quick smoke run saves their start-up time that way).
    The caller stops each one it got; those it never got are killed here."""
    if not at_once:
        for name, env in specs:
            yield launch(name, env, workers)
        return
    with ThreadPoolExecutor(len(specs)) as pool:
        futures = [pool.submit(launch, name, env, workers) for name, env in specs]
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


def warm_up(server: Server, paths: list[str], count: int = 20) -> None:
    """A few sequential requests on each path, so first-request costs are not measured."""
    conn = http.client.HTTPConnection(HOST, server.port, timeout=10)
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
