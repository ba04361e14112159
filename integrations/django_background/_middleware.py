"""`QueueFullMiddleware`: a full pool's refusal answered as the other adapters answer it,
503 Service Unavailable with ``Retry-After``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from background_core import QueueFull

RETRY_AFTER = 1
"""Seconds a 503 for a full queue tells the client to wait (its ``Retry-After``)."""


class QueueFullMiddleware:
    """Answers a `QueueFull` that escapes a view (``task.enqueue()`` on a full pool) with
    503 and ``Retry-After``, instead of a 500.

    Add ``"django_background.QueueFullMiddleware"`` to ``MIDDLEWARE``. Works under WSGI
    and ASGI. The client sees a generic message; the refusal is logged by the pool, as a
    summary (one WARNING per 10 s with its count). Subclass to change `retry_after`.
    """

    retry_after: int = RETRY_AFTER
    # Django's flags: without async_capable, Django runs the middleware of an ASGI
    # request in a thread of its own, whatever __init__ marks.
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)  # an async stack stays async: no thread per request

    def __call__(self, request: HttpRequest) -> Any:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """The 503 for a `QueueFull`; None (Django's usual handling) for anything else."""
        if not isinstance(exception, QueueFull):
            return None
        response = HttpResponse(
            "The server is busy with background work. Retry later.\n",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
        response["Retry-After"] = str(self.retry_after)
        return response
