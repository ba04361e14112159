"""Views that enqueue, for the middleware's tests."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from tests.django.tasks import add


def enqueue(request: HttpRequest) -> HttpResponse:
    result = add.enqueue(1, 2)
    return HttpResponse(result.id, status=202)


async def aenqueue(request: HttpRequest) -> HttpResponse:
    result = await add.aenqueue(1, 2)
    return HttpResponse(result.id, status=202)


urlpatterns = [path("enqueue", enqueue), path("aenqueue", aenqueue)]
