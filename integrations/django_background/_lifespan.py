"""`lifespan()`: the ASGI lifespan protocol around Django's ASGI application.

Django's ``ASGIHandler`` serves HTTP only: it raises for a ``lifespan`` scope, and uvicorn
(``--lifespan auto``) then runs without one. On SIGTERM uvicorn finishes its requests and
ends the process by SIGTERM again, so no exit hook runs: every task still queued would be
lost. Answering the lifespan lets the shutdown drain the pools first, as
fastapi_background's lifespan does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from ._lifecycle import shutdown_pools, start_pools

Scope = dict[str, object]
Message = dict[str, object]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Mapping[str, object]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def lifespan(application: ASGIApp, /) -> ASGIApp:
    """Django's ASGI application, with pools that start at the server's startup and drain
    at its shutdown: ``application = django_background.lifespan(get_asgi_application())``
    in ``asgi.py``.

    At the lifespan's startup the pool of every backend of ours in ``TASKS`` starts (a
    wrong ``OPTIONS`` fails the startup, naming its key); at its shutdown, once the server
    has answered its last request, every pool the backends made drains, each for at most
    its ``drain_timeout``, off the event loop, then shuts down, logging by name and id what
    did not finish. The next use makes a new pool, so the lifespan may run again. Every
    other scope goes to `application`; the lifespan never does (Django would raise).

    A server that runs no lifespan (daphne; uvicorn ``--lifespan off``) never calls it:
    the pools then start at first use and drain at the interpreter's exit, if it runs.
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _serve_lifespan(receive, send)
        else:
            await application(scope, receive, send)

    return app


async def _serve_lifespan(receive: Receive, send: Send) -> None:
    """Answer ``lifespan.startup`` and ``lifespan.shutdown``, each off the event loop."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            step, work = "startup", start_pools
        elif message["type"] == "lifespan.shutdown":
            step, work = "shutdown", shutdown_pools
        else:  # pragma: no cover - the protocol has no other message
            continue
        try:
            await asyncio.to_thread(work)
        except Exception as error:
            failure = f"{type(error).__name__}: {error}"
            await send({"type": f"lifespan.{step}.failed", "message": failure})
            return
        await send({"type": f"lifespan.{step}.complete"})
        if step == "shutdown":
            return
