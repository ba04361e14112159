"""Serving the apps: FastAPI and Django under uvicorn, Flask under gunicorn (gthread), all
in-process.

uvicorn: on Ctrl-C or SIGTERM it stops accepting, finishes its requests, and runs the
lifespan's shutdown, where `fastapi_background` (for Django, `django_background.lifespan`)
drains the pool.

gunicorn: one worker process (the page's stats and inbox are that process's), whose
gthread workers serve requests on 8 threads while the pool's threads send email. On
SIGTERM, or Ctrl-C (which the master passes on as SIGQUIT), the worker stops taking
requests, finishes those in flight, and exits: its ``worker_exit`` hook drains the pool
first, within gunicorn's graceful timeout, which is set above the drain deadline. The
worker's signal handlers are the demo's own (see `_stop_safely`).
"""

from __future__ import annotations

import math
import signal
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from flask import Flask
from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

from . import telemetry
from .farewell import draining, farewell
from .flask_app import pool_of

REQUEST_THREADS = 8  # gunicorn's threads for requests, not the pool's


def run_uvicorn(app: FastAPI | Callable[..., Awaitable[None]], *, host: str, port: int) -> None:
    """Serve `app` (FastAPI's, or Django's ASGI app) until Ctrl-C or SIGTERM, without
    access logs (the page polls)."""
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info")


def run_gunicorn(load: Callable[[], Flask], *, host: str, port: int, drain_timeout: float) -> None:
    """Serve the app that `load` makes in gunicorn's worker process; never returns.

    `load` runs in the worker, after the fork: the app's pool and whatever `load` starts
    (the embedded SMTP server) live there.
    """
    options: dict[str, Any] = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": 1,
        "worker_class": "gthread",
        "threads": REQUEST_THREADS,
        # The master kills workers still alive after this: leave the drain its deadline.
        "graceful_timeout": math.ceil(drain_timeout) + 5,
        "proc_name": "background-demo",
        "control_socket_disable": True,  # gunicorn >= 25.1: no gunicornc socket for a demo
        "post_worker_init": _stop_safely,
        "worker_exit": _drain,
    }
    _Gunicorn(load, options).run()


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    """gunicorn's documented way to embed it: options in, the WSGI app from `load`."""

    def __init__(self, load: Callable[[], Flask], options: dict[str, Any]) -> None:
        self._load = load
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            if key in self.cfg.settings:  # older gunicorn lacks some settings
                self.cfg.set(key, value)

    def load(self) -> Flask:
        return self._load()


def _stop_safely(worker: Any) -> None:
    """gunicorn's ``post_worker_init`` hook: signal handlers that take no lock.

    gthread's own handlers of SIGTERM and SIGQUIT take locks (of its request threads'
    pool, of its callback queue) that the main thread, which they interrupt, may hold:
    a signal at the wrong moment deadlocks the worker, as Ctrl-C did here while the page
    polled (gunicorn 27). These handlers only tell the worker's loop, which checks every
    second, to stop taking requests; it then finishes those in flight, and exits.

    Ctrl-C in a terminal sends SIGINT to the whole process group, and the master answers
    it with SIGQUIT to its workers: the worker ignores the SIGINT and stops on the SIGQUIT.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        worker.alive = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGQUIT, stop)
    signal.signal(signal.SIGINT, _ignore)


def _ignore(signum: int, frame: FrameType | None) -> None:
    """A signal handler that does nothing (SIG_IGN would make Python report a signal
    that arrived while the handler changed)."""


def _drain(server: Any, worker: Any) -> None:
    """gunicorn's ``worker_exit`` hook: send what was accepted, then say what was sent, and
    flush the spans (``--otel``), the last tasks' included."""
    app = worker.wsgi
    try:
        if isinstance(app, Flask):  # None if the app failed to load
            pool = pool_of(app)
            draining(pool.stats(), pool.drain_timeout)
            pool.shutdown()
            farewell(pool.stats())
    finally:
        telemetry.stop()
