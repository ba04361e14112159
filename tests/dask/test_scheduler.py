"""A cluster started as docs/dask.md says, `dask scheduler` and `dask worker` on 127.0.0.1, serving
the demo's emails configured by the Flask key and the FastAPI lifespan option."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from distributed import Client
from fastapi.testclient import TestClient
from flask import Flask

import flask_background
from background_core import Background, ClusterError, TaskNotImportable
from background_core.dask import dask_executor
from bench.server_process import free_port
from demo_app import fastapi_app, flask_app
from demo_app.api import DemoApi
from demo_app.mail import SmtpSettings
from fastapi_background import lifespan
from tests import helpers
from tests.dask import tasks
from tests.demo.smtp_server import SmtpServer, smtp_server
from tests.helpers import run_script

ROOT = Path(__file__).resolve().parents[2]
DASK = str(Path(sys.executable).parent / "dask")
WAIT = 30  # seconds
# Every poll waits as long as any other wait here.
wait_until = functools.partial(helpers.wait_until, timeout=WAIT)


@contextmanager
def started(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process of ours, in a session of its own; stopped (SIGTERM, then SIGKILL) at the end."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "integrations")])}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextmanager
def cluster_at(address: str, logs: Path, *, threads: int = 1) -> Iterator[None]:
    """A `dask scheduler` at `address` and one worker, for the length of the block."""
    logs.mkdir()
    port = address.rpartition(":")[2]
    worker = [DASK, "worker", address, "--host", "127.0.0.1", "--nthreads", str(threads)]
    with (
        started(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
            logs / "scheduler.log",
        ),
        started([*worker, "--no-dashboard"], logs / "worker.log"),
    ):
        with Client(address, timeout=WAIT, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=WAIT)
        yield


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`dask scheduler` and one `dask worker` (two threads) on 127.0.0.1; the address."""
    address = f"tcp://127.0.0.1:{free_port()}"
    with cluster_at(address, tmp_path_factory.mktemp("dask") / "logs", threads=2):
        yield address


def burst(count: int) -> bytes:
    return json.dumps({"to": "reader@example.com", "count": count}).encode()


def settings(smtp: SmtpServer) -> SmtpSettings:
    return SmtpSettings("127.0.0.1", smtp.port, sender="cluster@example.com")


def test_the_fastapi_demo_sends_its_emails_from_the_cluster(scheduler: str) -> None:
    with smtp_server() as smtp:
        api = DemoApi(settings(smtp), drain_timeout=WAIT, dask_scheduler=scheduler)
        with TestClient(fastapi_app.create_app(api)) as client:
            one = client.post("/emails", json={"to": "a@example.com", "subject": "S", "body": "B"})
            many = client.post("/emails/bulk", content=burst(20))
            assert (one.status_code, many.status_code) == (202, 202)
            arrived = smtp.recorder.wait_for(21, WAIT)
            stats = client.get("/stats").json()
            assert "Dask cluster at " + scheduler in client.get("/").text
        assert len(arrived) == 21
        assert {a.to for a in arrived} == {"a@example.com", "reader@example.com"}
        assert stats["failed"] == 0


def test_the_flask_demo_sends_its_emails_from_the_cluster(scheduler: str) -> None:
    with smtp_server() as smtp:
        api = DemoApi(settings(smtp), drain_timeout=WAIT, dask_scheduler=scheduler)
        app = flask_app.create_app(api)
        pool = flask_app.pool_of(app)
        try:
            client = app.test_client()
            assert client.post("/emails/bulk", data=burst(10)).status_code == 202
            assert len(smtp.recorder.wait_for(10, WAIT)) == 10
            assert pool.drain(WAIT).unfinished == ()
            assert pool.stats().succeeded == 10
        finally:
            pool.shutdown()
        assert pool.closed


def welcome(name: str) -> str:
    return f"welcome, {name}, from {os.getpid()}"


def test_the_flask_key_sends_tasks_to_the_cluster(scheduler: str) -> None:
    ext = flask_background.Background()
    app = Flask(__name__)
    app.config["BACKGROUND_DASK_SCHEDULER"] = scheduler
    ext.init_app(app)
    pool: Background = app.extensions["background"]
    try:
        with app.app_context():
            answer = ext.submit(welcome, "Ada").result(timeout=WAIT)

            def local() -> None: ...

            with pytest.raises(TaskNotImportable, match="module level"):
                ext.submit(local)
        assert answer.startswith("welcome, Ada, from ")
        assert answer != welcome("Ada")
    finally:
        pool.shutdown()


@pytest.mark.parametrize("value", ["127.0.0.1:8786", "", 8786])
def test_a_bad_flask_address_fails_at_init_app(value: object) -> None:
    app = Flask(__name__)
    app.config["BACKGROUND_DASK_SCHEDULER"] = value
    with pytest.raises((TypeError, ValueError), match="BACKGROUND_DASK_SCHEDULER"):
        flask_background.Background(app)


def test_the_lifespan_option_fails_startup_without_a_scheduler() -> None:
    app = fastapi_app.FastAPI(lifespan=lifespan(dask_scheduler=f"tcp://127.0.0.1:{free_port()}"))
    with pytest.raises(ClusterError, match="no Dask scheduler answered"), TestClient(app):
        pass


def test_lifespan_refuses_both_pool_and_dask_scheduler(scheduler: str) -> None:
    with Background(name="given") as pool, pytest.raises(TypeError, match="dask_scheduler"):
        lifespan(pool=pool, dask_scheduler=scheduler)
    with pytest.raises(ValueError, match="tcp://"):
        lifespan(dask_scheduler="nowhere")


def test_no_scheduler_is_an_error_within_the_connect_timeout() -> None:
    executor = dask_executor(f"tcp://127.0.0.1:{free_port()}", connect_timeout=1)
    with Background(name="unreachable", executor=executor, own_executor=True) as bg:
        with pytest.raises(ClusterError, match="dask scheduler"):
            bg.submit(welcome, "nobody")
        assert bg.stats().rejected == 1


def test_an_owned_client_fails_a_task_that_outlives_the_drain(
    scheduler: str, tmp_path: Path
) -> None:
    out, release = str(tmp_path / "out"), tmp_path / "release"
    bg = Background(name="owned", executor=dask_executor(scheduler), own_executor=True)
    try:
        running = bg.submit(tasks.note_after, out, "long", str(release))
        wait_until(running.running, "the task runs")
        began = time.monotonic()
        report = bg.shutdown(timeout=0.2)
        assert [task.state for task in report.unfinished] == ["running"]
        error = running.exception(timeout=5)  # resolved, not left pending
        assert time.monotonic() - began < 10
        assert isinstance(error, ClusterError)
        assert "may or may not have run" in str(error) or "may still run" in str(error)
    finally:
        release.touch()  # the task still runs on the worker: let it end


def test_concurrent_submissions_without_a_scheduler_fail_together() -> None:
    executor = dask_executor(f"tcp://127.0.0.1:{free_port()}", connect_timeout=2)
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            executor.submit(welcome, "nobody")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=submit) for _ in range(5)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT)
    elapsed = time.monotonic() - began
    assert [type(error) for error in errors] == [ClusterError] * 5
    assert elapsed < 5, elapsed  # one connection attempt of 2 s, not five in a row
    began = time.monotonic()
    with pytest.raises(ClusterError, match="no Dask scheduler answered"):
        executor.submit(welcome, "again")  # within the back-off: at once
    assert time.monotonic() - began < 1
    executor.shutdown()


def test_start_reports_resume_after_the_scheduler_restarts(tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    address = f"tcp://127.0.0.1:{free_port()}"
    executor = dask_executor(address, connect_timeout=WAIT)
    try:
        for run in ("first", "second"):
            release = tmp_path / f"release-{run}"
            with cluster_at(address, tmp_path / run):
                wait_until(lambda: executor.client.status == "running", "the client connects")
                future = executor.submit(tasks.note_after, out, run, str(release))
                wait_until(future.running, f"the {run} scheduler reports the start")
                assert not future.cancel()
                release.touch()
                assert future.result(timeout=WAIT) != os.getpid()
            # The client loses its scheduler, then reconnects to a new one on the same port.
    finally:
        executor.shutdown()
    assert [line.split(maxsplit=1)[1] for line in tasks.lines(out)] == [
        "start first",
        "done first",
        "start second",
        "done second",
    ]


def test_a_forked_child_connects_afresh(scheduler: str, tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        f"""
        import os, threading
        from background_core.dask import dask_executor
        from tests.dask import tasks

        executor = dask_executor({scheduler!r})
        assert executor.submit(tasks.pid).result(timeout=30) != os.getpid()
        # Another thread holds the executor's lock at the fork: the child makes its own.
        held, fork_done = threading.Event(), threading.Event()

        def hold():
            with executor._lock:
                held.set()
                fork_done.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        held.wait(10)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = 0 if executor.submit(tasks.pid).result(timeout=30) != os.getpid() else 2
                executor.shutdown()
            finally:
                os._exit(code)
        fork_done.set()
        holder.join()
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
        executor.shutdown()
        """,
        timeout=WAIT * 2,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "0", proc.stdout + proc.stderr
