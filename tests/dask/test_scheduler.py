"""A cluster started as README says, `dask scheduler` and `dask worker` on 127.0.0.1, serving
the demo's emails configured by the Flask key and the FastAPI lifespan option."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
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
from demo_app import fastapi_app, flask_app
from demo_app.api import DemoApi
from demo_app.mail import SmtpSettings
from fastapi_background import lifespan
from tests.demo.smtp_server import SmtpServer, free_port, smtp_server

ROOT = Path(__file__).resolve().parents[2]
DASK = str(Path(sys.executable).parent / "dask")
WAIT = 30  # seconds


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


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`dask scheduler` and one `dask worker` (two threads) on 127.0.0.1; the address."""
    logs = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{free_port()}"
    port = address.rpartition(":")[2]
    with (
        started(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
            logs / "scheduler.log",
        ),
        started(
            [DASK, "worker", address, "--host", "127.0.0.1", "--nthreads", "2", "--no-dashboard"],
            logs / "worker.log",
        ),
    ):
        with Client(address, timeout=WAIT, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=WAIT)
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
