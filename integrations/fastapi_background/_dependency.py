"""Finding the pool from a request: `background_of` (Starlette) and `get_background`."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from background_core import Background

from ._lifespan import STATE_KEY


def background_of(conn: HTTPConnection) -> Background:
    """The pool the app's lifespan runs, for a request or websocket.

    Raises:
        RuntimeError: The app has no background lifespan; the message says how to add it.
    """
    pool = getattr(conn.state, STATE_KEY, None)
    if not isinstance(pool, Background):
        raise RuntimeError(
            "no background pool on this request: install the lifespan, "
            "FastAPI(lifespan=fastapi_background.lifespan()) or "
            "Starlette(lifespan=fastapi_background.lifespan()); to keep your own "
            "lifespan, pass it in: lifespan(your_lifespan). If it is installed, it did "
            "not run: use `with TestClient(app):`, or asgi-lifespan's LifespanManager."
        )
    return pool


async def get_background(conn: HTTPConnection) -> Background:
    """FastAPI dependency: the app's pool. Async, so it takes no threadpool thread."""
    return background_of(conn)
