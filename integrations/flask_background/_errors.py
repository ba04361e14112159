"""A full pool's refusal as Flask answers it: 503 Service Unavailable, with Retry-After."""

from __future__ import annotations

from werkzeug.exceptions import ServiceUnavailable

from background_core import QueueFull


class QueueFullError(QueueFull, ServiceUnavailable):
    """`QueueFull` that escapes a handler as ``abort(503)`` would, with ``Retry-After``.

    An error handler of the app's for 503, or for `QueueFull` (or a base of it:
    `BackgroundError`, `RuntimeError`) takes precedence. The client sees the generic
    description; the message, for logs, names the pool.
    """

    description = "The server is busy with background work. Retry later."

    def __init__(self, message: str, retry_after: int) -> None:
        ServiceUnavailable.__init__(self, retry_after=retry_after)
        self.message = message

    def __str__(self) -> str:
        return self.message
