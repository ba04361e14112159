"""A full pool's refusal as Starlette answers it: 503, with Retry-After, keep-alive."""

from __future__ import annotations

from starlette.exceptions import HTTPException

from background_core import QueueFull


class QueueFullError(QueueFull, HTTPException):
    """`QueueFull` that escapes a handler as an ``HTTPException(503)`` with ``Retry-After``.

    FastAPI answers it in JSON (``{"detail": ...}``), plain Starlette in text; an
    exception handler of the app's for `QueueFull` (or a base of it: `BackgroundError`,
    `RuntimeError`) takes precedence. The client sees the generic detail; the message, for
    logs, names the pool.
    """

    def __init__(self, message: str, retry_after: int) -> None:
        HTTPException.__init__(
            self,
            status_code=503,
            detail="The server is busy with background work. Retry later.",
            headers={"Retry-After": str(retry_after)},
        )
        self.message = message

    def __str__(self) -> str:
        return self.message
