"""The demo as a FastAPI app: routes to `DemoApi`, the pool from `fastapi_background`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from fastapi_background import BackgroundDep, lifespan

from . import telemetry
from .api import RETRY_AFTER, TOO_LARGE, DemoApi, Reply
from .farewell import draining, farewell
from .payloads import MAX_REQUEST_BYTES


def create_app(api: DemoApi, *, otel: str | None = None) -> FastAPI:
    """The app. Its lifespan runs a pool of ``api.threads`` workers and drains it at exit.

    With `otel` (``--otel``: ``console`` or an OTLP/HTTP URL), OpenTelemetry's SDK is set
    up in this process to export there (`telemetry.start`), FastAPI's official
    instrumentation makes each request's span, and ``lifespan(otel=True)`` each email
    task's span, in the request's trace. Call it in the process that serves; the lifespan
    flushes the spans once the pool has drained.
    """
    if otel is not None:
        telemetry.start(otel)
    pool_lifespan = lifespan(
        name="demo_app",
        workers=api.threads,
        max_queue=api.max_queue,
        drain_timeout=api.drain_timeout,
        dask_scheduler=api.dask_scheduler,
        retry_after=RETRY_AFTER,
        otel=otel is not None,
    )

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        try:
            async with pool_lifespan(app) as state:
                yield dict(state or {})
                pool = app.state.background
                draining(pool.stats(), pool.drain_timeout)
            farewell(pool.stats())  # the pool_lifespan drained the pool
        finally:
            # Here, not after uvicorn.run(): a SIGTERM ends the process right after this.
            telemetry.stop()

    app = FastAPI(title="background demo", lifespan=run)

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return api.get_page()

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        icon, headers = api.get_favicon()
        return Response(icon, headers=headers)

    @app.post("/emails", status_code=202)
    async def post_email(request: Request, bg: BackgroundDep) -> JSONResponse:
        raw = await _capped_body(request)
        return _json(TOO_LARGE if raw is None else api.post_email(bg, raw))

    @app.post("/emails/bulk", status_code=202)
    async def post_bulk(request: Request, bg: BackgroundDep) -> JSONResponse:
        raw = await _capped_body(request)
        return _json(TOO_LARGE if raw is None else api.post_bulk(bg, raw))

    @app.get("/emails/{email_id}")
    async def get_email(email_id: str, bg: BackgroundDep) -> JSONResponse:
        return _json(api.get_email(bg, email_id))

    @app.get("/stats")
    async def stats(bg: BackgroundDep) -> JSONResponse:
        return _json(api.get_stats(bg))

    @app.get("/inbox")
    async def inbox() -> JSONResponse:
        return _json(api.get_inbox())

    if otel is not None:
        _instrument(app)
    return app


def _instrument(app: FastAPI) -> None:
    """A span for each request but the page's polls, by OpenTelemetry's instrumentation;
    none for each ASGI message received or sent, which would triple the spans."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: PLC0415

    FastAPIInstrumentor.instrument_app(
        app, excluded_urls=telemetry.EXCLUDED_URLS, exclude_spans=["receive", "send"]
    )


async def _capped_body(request: Request) -> bytes | None:
    """The request's body, or None if it is over `MAX_REQUEST_BYTES`: known from its
    ``Content-Length`` before reading, else (chunked) once that much has arrived."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            return None
    return bytes(body)


def _json(reply: Reply) -> JSONResponse:
    status, payload = reply
    headers = {"Retry-After": str(payload["retry_after"])} if "retry_after" in payload else None
    return JSONResponse(payload, status_code=status, headers=headers)
