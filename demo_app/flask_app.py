"""The demo as a Flask app: routes to `DemoApi`, the pool from `flask_background`."""

from __future__ import annotations

import json
from http import HTTPStatus

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Response as WerkzeugResponse

import background_core
from flask_background import Background

from . import telemetry
from .api import RETRY_AFTER, TOO_LARGE, DemoApi, Reply
from .payloads import MAX_REQUEST_BYTES


def create_app(api: DemoApi, *, otel: str | None = None) -> Flask:
    """The app, with its pool (``BACKGROUND_WORKERS = api.threads``) made by the extension.

    The extension's exit hook drains the pool at process exit; whoever stops the app
    earlier shuts it down (`servers` in gunicorn's ``worker_exit`` hook, tests at their end).

    With `otel` (``--otel``: ``console`` or an OTLP/HTTP URL), OpenTelemetry's SDK is set
    up in this process to export there (`telemetry.start`), Flask's official
    instrumentation makes each request's span, and ``BACKGROUND_OTEL`` each email task's
    span, in the request's trace. Call it in the process that serves (gunicorn's worker,
    after the fork); `telemetry.stop` flushes the spans.
    """
    if otel is not None:
        telemetry.start(otel)
    app = Flask("demo_app")  # the package: its pool is named "demo_app" too
    # Werkzeug answers 413 for a Content-Length over this, before reading. A chunked body
    # (gunicorn lets it count those) it cuts at this length without a word (werkzeug
    # 3.1): one byte over the cap, so `_body` sees that it went over.
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES + 1
    app.config["BACKGROUND_WORKERS"] = api.threads
    app.config["BACKGROUND_MAX_QUEUE"] = api.max_queue
    app.config["BACKGROUND_RETRY_AFTER"] = RETRY_AFTER
    app.config["BACKGROUND_DRAIN_TIMEOUT"] = api.drain_timeout
    app.config["BACKGROUND_DASK_SCHEDULER"] = api.dask_scheduler
    app.config["BACKGROUND_OTEL"] = otel is not None
    Background(app)
    if otel is not None:
        _instrument(app)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(RequestEntityTooLarge, _too_large)

    @app.get("/")
    def page() -> str:
        return api.get_page()

    @app.get("/favicon.ico")
    def favicon() -> Response:
        icon, headers = api.get_favicon()
        return Response(icon, headers=headers)

    @app.post("/emails")
    def post_email() -> tuple[Response, int]:
        raw = _body()
        return _json(TOO_LARGE if raw is None else api.post_email(pool_of(app), raw))

    @app.post("/emails/bulk")
    def post_bulk() -> tuple[Response, int]:
        raw = _body()
        return _json(TOO_LARGE if raw is None else api.post_bulk(pool_of(app), raw))

    @app.get("/emails/<email_id>")
    def get_email(email_id: str) -> tuple[Response, int]:
        return _json(api.get_email(pool_of(app), email_id))

    @app.get("/stats")
    def stats() -> tuple[Response, int]:
        return _json(api.get_stats(pool_of(app)))

    @app.get("/inbox")
    def inbox() -> tuple[Response, int]:
        return _json(api.get_inbox())

    return app


def _instrument(app: Flask) -> None:
    """A span for each request but the page's polls, by OpenTelemetry's instrumentation."""
    from opentelemetry.instrumentation.flask import FlaskInstrumentor  # noqa: PLC0415

    instrumentor = FlaskInstrumentor()
    instrumentor.instrument_app(  # type: ignore[no-untyped-call]  # it has no annotations
        app, excluded_urls=telemetry.EXCLUDED_URLS
    )


def pool_of(app: Flask) -> background_core.Background:
    """The app's pool, as `flask_background` stores it."""
    pool: background_core.Background = app.extensions["background"]
    return pool


def _http_error(error: HTTPException) -> WerkzeugResponse:
    """An error Flask answers itself (404, 405, ...), as JSON like FastAPI's.

    The body is ``{"detail": reason}``; the error's headers stay (a 405's ``Allow``).
    """
    response = error.get_response()
    response.set_data(json.dumps({"detail": HTTPStatus(response.status_code).phrase}))
    response.content_type = "application/json"
    return response


def _body() -> bytes | None:
    """The request's body, or None if it is over `MAX_REQUEST_BYTES`."""
    raw = request.get_data()
    return None if len(raw) > MAX_REQUEST_BYTES else raw


def _too_large(error: RequestEntityTooLarge) -> tuple[Response, int]:
    """A body over `MAX_REQUEST_BYTES`: the API's own 413, as FastAPI's app answers it."""
    return _json(TOO_LARGE)


def _json(reply: Reply) -> tuple[Response, int]:
    status, payload = reply
    response = jsonify(payload)
    if "retry_after" in payload:
        response.headers["Retry-After"] = str(payload["retry_after"])
    return response, status
