"""Finding the pool from a request: `background_of` (Starlette) and `get_background`."""

from __future__ import annotations

import logging
import sys
import threading

from starlette.requests import HTTPConnection

from background_core import Background, log_fields

from ._lifespan import STATE_KEY


def background_of(conn: HTTPConnection) -> Background:
    """The pool the app's lifespan runs, for a request or websocket.

    Raises:
        RuntimeError: The app has no background lifespan; the message says how to add it.
    """
    try:  # the lifespan state of this request (what conn.state reads), without a State
        pool = conn.scope["state"][STATE_KEY]
    except (KeyError, TypeError):
        pool = getattr(conn.state, STATE_KEY, None)
    if not isinstance(pool, Background):
        error = RuntimeError(_no_pool_reason())
        if not _said.is_set():  # a server may hide the 500's traceback (daphne does): once
            _said.set()
            logger.error("%s", error, extra=log_fields(None))
        raise error
    return pool


def _no_pool_reason() -> str:
    if "daphne" in sys.modules:
        return (
            "no background pool on this request: daphne runs no ASGI lifespan, so the "
            "pool of fastapi_background.lifespan() never started. Serve the app with "
            "uvicorn, hypercorn or granian, or make a pool at module level with "
            "fastapi_background.pool() and submit to it directly (it drains at exit)."
        )
    return (
        "no background pool on this request: install the lifespan, "
        "FastAPI(lifespan=fastapi_background.lifespan()) or "
        "Starlette(lifespan=fastapi_background.lifespan()); to keep your own "
        "lifespan, pass it in: lifespan(your_lifespan). If it is installed, it did "
        "not run: use `with TestClient(app):`, or asgi-lifespan's LifespanManager."
    )


_said = threading.Event()
logger = logging.getLogger("background")


async def get_background(conn: HTTPConnection) -> Background:
    """FastAPI dependency: the app's pool. Async, so it takes no threadpool thread."""
    return background_of(conn)
