from __future__ import annotations

import os

from django.http import HttpRequest, HttpResponse
from tasks import record


def fire(request: HttpRequest, i: int) -> HttpResponse:
    """Enqueue task `i`; answer with the pid of the process that enqueued it."""
    record.enqueue(str(i))
    return HttpResponse(f"ok {os.getpid()}", content_type="text/plain")


def pid(request: HttpRequest) -> HttpResponse:
    """The pid of the process that serves (the autoreloader's child)."""
    return HttpResponse(str(os.getpid()), content_type="text/plain")
