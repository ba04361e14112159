"""The demo as a Django project, configured in code: no manage.py, no settings file.

`configure` sets Django up in this process with `settings_for` (Django's settings are the
process's, so once); `create_app` returns what uvicorn serves:
``django_background.lifespan(get_asgi_application())``, inside a thin ASGI layer of the
demo's own (the request body's cap, and what the demo prints as it stops).

Each accepted email is a Django task, `demo_app.django_views.send_email`, enqueued from
the view, which `django_background.BackgroundBackend` runs on a pool of this process:
``TASKS = {"default": {"BACKEND": "django_background.BackgroundBackend", "OPTIONS":
{"workers": ..., "max_queue": ..., "drain_timeout": ...}}}``, from the command line's
options as the other apps take them. The views and the task are in `django_views`, which
Django imports once it is set up (its ``@task`` looks its backend up in the settings).

uvicorn, not gunicorn: the backend's pool drains in the ASGI lifespan's shutdown, which
uvicorn runs on Ctrl-C and SIGTERM once it has answered its last request, as for FastAPI;
`django_background.lifespan` answers that lifespan, which Django's own ASGI application
does not. (Under gunicorn the worker's exit would drain it too, but the demo's gunicorn
runs Flask's app in a forked worker, with hooks of its own: `servers`.)
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

import django
from django.conf import settings
from django.core.asgi import get_asgi_application

import django_background
from background_core import Background, Stats

from . import telemetry
from .api import RETRYING, TOO_LARGE, DemoApi, Reply
from .farewell import draining, farewell
from .outbox import KEEP
from .payloads import MAX_REQUEST_BYTES

Scope = dict[str, object]
Message = dict[str, object]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Mapping[str, object]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BACKPORT = importlib.util.find_spec("django.tasks") is None
"""Django 5.2 (Python 3.10, 3.11): the tasks framework is the django-tasks backport."""

DEMO_SETTING = "BACKGROUND_DEMO"
"""The setting that holds this process's `DjangoDemo`, for the views and the task."""

RESULTS = KEEP * (RETRYING.retries + 1)
"""Results the backend keeps (``OPTIONS["results"]``): the latest attempt of each of the
last `KEEP` emails, each of up to ``RETRIES + 1`` attempts, is among them."""


class DjangoDemo:
    """The demo's state in this process: its `DemoApi`, the emails accepted (each one's
    latest attempt, by email id), and the attempts that a temporary failure re-enqueued.

    The pool is the backend's, looked up at first use (the lifespan's startup) and kept:
    once the lifespan has shut it down, the backend would make a new one.
    """

    def __init__(self, api: DemoApi, *, keep: int = KEEP) -> None:
        self.api = api
        self.keep = keep
        self._attempts: OrderedDict[str, tuple[str, int]] = OrderedDict()  # oldest first
        self._retried = 0
        self._pool: Background | None = None
        self._lock = threading.Lock()

    @property
    def pool(self) -> Background:
        """The backend's pool (``task_backends["default"].pool``)."""
        with self._lock:
            if self._pool is None:
                # Django's tasks API, once the settings are set up (not django_views, which
                # imports this module).
                tasks_api = importlib.import_module("django_tasks" if BACKPORT else "django.tasks")
                backend = tasks_api.task_backends["default"]
                if not isinstance(backend, django_background.BackgroundBackend):
                    raise TypeError(f"the demo's tasks need BackgroundBackend, got {backend!r}")
                self._pool = backend.pool
            return self._pool

    def attempt(self, email_id: str, result_id: str, number: int) -> None:
        """The email `email_id` is now attempt `number`, the task of result `result_id`;
        beyond `keep` emails, the oldest is forgotten."""
        with self._lock:
            self._attempts[email_id] = (result_id, number)
            self._attempts.move_to_end(email_id)
            while len(self._attempts) > self.keep:
                self._attempts.popitem(last=False)

    def latest(self, email_id: str) -> tuple[str, int] | None:
        """The result id and the number of the email's latest attempt, if it is known."""
        with self._lock:
            return self._attempts.get(email_id)

    def retried(self) -> None:
        """Count an attempt that failed for now and enqueued the next one."""
        with self._lock:
            self._retried += 1

    def stats(self) -> Stats:
        """The pool's counters, each email counted once, as the engine counts a retried
        task: to the pool, an attempt that re-enqueued the next one is a task submitted
        that succeeded; here it is a retry (``retried``), in neither count."""
        stats = self.pool.stats()
        with self._lock:
            retried = self._retried
        return replace(
            stats,
            submitted=max(0, stats.submitted - retried),
            succeeded=max(0, stats.succeeded - retried),
            retried=stats.retried + retried,
        )


def settings_for(demo: DjangoDemo) -> dict[str, Any]:
    """The project's settings: the tasks framework with our backend, the pool's options
    from the command line's, the views of `django_views`, and no database."""
    api = demo.api
    return {
        "DEBUG": False,
        "SECRET_KEY": "background-demo: no sessions, no signed data",
        # As the FastAPI and Flask apps: whatever Host the browser sends.
        "ALLOWED_HOSTS": ["*"],
        "INSTALLED_APPS": [*(["django_tasks"] if BACKPORT else []), "django_background"],
        # A QueueFull that escapes a view would be a 503 with Retry-After, not a 500; the
        # API's own answer comes first (it says how many of a burst were queued).
        "MIDDLEWARE": ["django_background.QueueFullMiddleware"],
        "ROOT_URLCONF": "demo_app.django_views",
        "DATABASES": {},
        "USE_TZ": True,
        "TASKS": {
            "default": {
                "BACKEND": "django_background.BackgroundBackend",
                "OPTIONS": {
                    "workers": api.threads,
                    "max_queue": api.max_queue,
                    "drain_timeout": api.drain_timeout,
                    "results": RESULTS,
                },
            }
        },
        # Django's own logging setup would print an INFO line per task (Django 6) and
        # mail errors to ADMINS: the demo's logging (cli.py) is the root logger's.
        "LOGGING_CONFIG": None,
        DEMO_SETTING: demo,
    }


def configure(api: DemoApi) -> DjangoDemo:
    """Set Django up in this process for `api`; once per process.

    Raises:
        RuntimeError: Django's settings are configured already.
    """
    demo = DjangoDemo(api)
    settings.configure(**settings_for(demo))
    django.setup()
    # The API's own 4xx and 503 answers are not Django's to log ("Not Found: /x"):
    # uvicorn's access log is off, as for FastAPI. A 500 is still logged, traceback and all.
    logging.getLogger("django.request").addFilter(_server_errors_only)
    return demo


def _server_errors_only(record: logging.LogRecord) -> bool:
    status = getattr(record, "status_code", 500)
    return isinstance(status, int) and status >= 500 and status != 503


def demo_of_settings() -> DjangoDemo:
    """The `DjangoDemo` the settings hold."""
    demo = getattr(settings, DEMO_SETTING, None)
    if not isinstance(demo, DjangoDemo):
        raise TypeError(f"settings.{DEMO_SETTING} must be the DjangoDemo that configure() made")
    return demo


def create_app(demo: DjangoDemo, *, otel: str | None = None) -> ASGIApp:
    """The ASGI app uvicorn serves, Django's set up with ``settings_for(demo)``.

    Its lifespan is `django_background.lifespan`'s: at startup the backend's pool starts,
    at shutdown (once uvicorn has answered its last request) it drains for up to the
    drain timeout, then shuts down; the demo says what it sends before, and what it sent
    after. Request bodies over `MAX_REQUEST_BYTES` are answered 413 before Django sees
    them (Django's ASGI handler reads a whole body before any view runs).

    With `otel` (``--otel``), OpenTelemetry's SDK is set up in this process
    (`telemetry.start`), Django's official instrumentation makes each request's span,
    and `background_core.otel.instrument` each email task's span, in the request's
    trace; the lifespan's shutdown flushes them once the pool has drained.
    """
    if otel is not None:
        telemetry.start(otel)
        _instrument()
    served = django_background.lifespan(get_asgi_application())

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(demo, served, scope, receive, send)
        elif scope["type"] == "http":
            await _capped(served, scope, receive, send)
        else:
            await served(scope, receive, send)

    return app


async def _lifespan(
    demo: DjangoDemo, served: ASGIApp, scope: Scope, receive: Receive, send: Send
) -> None:
    """`served`'s lifespan, with the demo's words around the drain, then the spans flushed."""

    async def receiving() -> Message:
        message = await receive()
        if message["type"] == "lifespan.shutdown":
            draining(demo.stats(), demo.pool.drain_timeout)
        return message

    async def sending(message: Mapping[str, object]) -> None:
        if message["type"] == "lifespan.startup.complete":
            demo.pool  # noqa: B018  (kept now: after the shutdown the backend makes another)
        elif message["type"] == "lifespan.shutdown.complete":
            farewell(demo.stats())
        await send(message)

    try:
        await served(scope, receiving, sending)
    finally:
        # Here, not after uvicorn.run(): a SIGTERM ends the process right after this.
        telemetry.stop()


async def _capped(served: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Read the request's body, up to `MAX_REQUEST_BYTES`, then hand it to `served`; a
    body over it is answered 413 at once: known from its ``Content-Length`` before
    reading, else (chunked) once that much has arrived."""
    headers = scope.get("headers")
    declared = b""
    if isinstance(headers, list):
        declared = next((v for k, v in headers if k.lower() == b"content-length"), b"")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        await _answer(send, TOO_LARGE)
        return
    body = bytearray()
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":  # the client is gone
            return
        chunk = message.get("body", b"")
        body += chunk if isinstance(chunk, bytes) else b""
        if len(body) > MAX_REQUEST_BYTES:
            await _answer(send, TOO_LARGE)
            return
        more = bool(message.get("more_body", False))
    whole: Message | None = {"type": "http.request", "body": bytes(body), "more_body": False}

    async def replay() -> Message:
        nonlocal whole
        if whole is not None:
            message, whole = whole, None
            return message
        return await receive()  # what comes next: the client's disconnect

    await served(scope, replay, send)


async def _answer(send: Send, reply: Reply) -> None:
    """Answer `reply` as JSON, without Django."""
    status, payload = reply
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _instrument() -> None:
    """A span for each request but the page's polls, by Django's OpenTelemetry
    instrumentation (its middleware, put first in ``MIDDLEWARE``), and one for each
    attempt of a task of any pool (`background_core.otel`)."""
    from opentelemetry.instrumentation.django import DjangoInstrumentor  # noqa: PLC0415

    from background_core.otel import instrument  # noqa: PLC0415  (only with --otel)

    DjangoInstrumentor().instrument(excluded_urls=telemetry.EXCLUDED_URLS)
    instrument()
