"""A real request's trace goes on into the task it fired: Flask under werkzeug's server
and FastAPI under uvicorn, each on 127.0.0.1 in this process (so the SDK's in-memory
exporter sees both sides), with OpenTelemetry's official instrumentation of the
framework making the request's span."""

from __future__ import annotations

import asyncio
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from tests.helpers import WAIT, wait_until

from .conftest import Recorded

flask = pytest.importorskip("flask")
pytest.importorskip("opentelemetry.instrumentation.flask")
pytest.importorskip("opentelemetry.instrumentation.fastapi")

from fastapi import FastAPI  # noqa: E402
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: E402
from opentelemetry.instrumentation.flask import FlaskInstrumentor  # noqa: E402

from fastapi_background import BackgroundDep, lifespan  # noqa: E402
from flask_background import Background  # noqa: E402


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=WAIT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def one_trace(recorded: Recorded, task_name: str) -> tuple[ReadableSpan, ReadableSpan]:
    """The server's span of the request and the span of the task it fired (a function
    named `task_name`: its span is named after its qualified name)."""

    def tasks() -> list[ReadableSpan]:
        return [s for s in recorded.spans() if s.name.endswith(("." + task_name, " " + task_name))]

    def servers() -> list[ReadableSpan]:
        return [s for s in recorded.spans() if s.kind is SpanKind.SERVER]

    # The server's span may end after the task's: the response went out before.
    wait_until(lambda: tasks() and servers(), f"the spans of the request and {task_name!r}")
    (task,) = tasks()
    (server,) = servers()
    return server, task


@contextmanager
def werkzeug_serving(app: Any) -> Iterator[str]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="werkzeug", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(WAIT)


@contextmanager
def uvicorn_serving(app: Any) -> Iterator[str]:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, "uvicorn's startup")
        (port,) = {sock.getsockname()[1] for s in server.servers for sock in s.sockets}
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(WAIT)


def test_a_flask_request_and_its_task_are_one_trace(recorded: Recorded) -> None:
    app = flask.Flask("otel")
    bg = Background(app)
    FlaskInstrumentor().instrument_app(app, tracer_provider=recorded.tracer_provider)
    done = threading.Event()

    @bg.task
    def send_welcome(address: str) -> None:
        done.set()

    @bg.task
    def send_broken(address: str) -> None:
        raise ConnectionRefusedError("no SMTP server")

    @app.post("/signup")
    @app.get("/signup")
    def signup() -> dict[str, str]:
        send_welcome("ada@example.com")
        return {"queued": "yes"}

    @app.get("/broken")
    def broken() -> dict[str, str]:
        send_broken("ada@example.com")
        return {"queued": "yes"}

    try:
        with werkzeug_serving(app) as url:
            assert get(f"{url}/signup")[0] == 200
            assert done.wait(WAIT)
            server, task = one_trace(recorded, "send_welcome")
            assert server.name == "GET /signup"
            assert task.context.trace_id == server.context.trace_id
            assert task.parent is not None
            assert task.parent.span_id == server.context.span_id
            assert task.attributes is not None
            assert task.attributes["background.pool"] == "otel"

            recorded.exporter.clear()
            assert get(f"{url}/broken")[0] == 200
            server, task = one_trace(recorded, "send_broken")
            assert server.status.status_code is StatusCode.UNSET  # the request went well
            assert task.status.status_code is StatusCode.ERROR
            assert task.parent is not None
            assert task.parent.span_id == server.context.span_id
    finally:
        FlaskInstrumentor().uninstrument_app(app)
        app.extensions["background"].shutdown()


def test_a_fastapi_request_and_its_task_are_one_trace(recorded: Recorded) -> None:
    app = FastAPI(lifespan=lifespan())
    FastAPIInstrumentor.instrument_app(app, tracer_provider=recorded.tracer_provider)

    def send_welcome(address: str) -> None:
        pass

    async def send_receipt(address: str) -> None:
        await asyncio.sleep(0)
        raise ConnectionRefusedError("no SMTP server")

    @app.post("/signup")
    async def signup(bg: BackgroundDep) -> dict[str, str]:
        bg.submit(send_welcome, "ada@example.com")
        return {"queued": "yes"}

    @app.post("/order")
    def order(bg: BackgroundDep) -> dict[str, str]:  # a sync handler: on a thread
        bg.submit(send_receipt, "ada@example.com")
        return {"queued": "yes"}

    try:
        with uvicorn_serving(app) as url:
            request = urllib.request.Request(f"{url}/signup", method="POST")
            with urllib.request.urlopen(request, timeout=WAIT) as response:
                assert response.status == 200
            server, task = one_trace(recorded, "send_welcome")
            assert server.name == "POST /signup"
            assert task.parent is not None
            assert task.parent.span_id == server.context.span_id
            assert task.attributes is not None
            assert task.attributes["background.pool"] == "app"
            assert task.status.status_code is StatusCode.UNSET

            recorded.exporter.clear()
            request = urllib.request.Request(f"{url}/order", method="POST")
            with urllib.request.urlopen(request, timeout=WAIT) as response:
                assert response.status == 200
            server, task = one_trace(recorded, "send_receipt")
            assert task.parent is not None
            assert task.parent.span_id == server.context.span_id
            assert task.status.status_code is StatusCode.ERROR
    finally:
        FastAPIInstrumentor.uninstrument_app(app)
