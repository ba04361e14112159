"""`QueueFullMiddleware`: a full pool answered 503 with Retry-After, under WSGI and ASGI."""

from __future__ import annotations

import asyncio

from asgiref.sync import SyncToAsync, iscoroutinefunction
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client

from background_core import QueueFull
from django_background import QueueFullMiddleware
from tests.django import tasks
from tests.django.conftest import backend_with, finish
from tests.helpers import WAIT, Gate


def test_views_enqueue_through_the_request_cycle() -> None:
    with backend_with() as backend:
        response = Client().post("/enqueue")
        assert response.status_code == 202
        finish(backend)
        assert backend.get_result(response.content.decode()).return_value == 3


def test_a_full_queue_is_answered_503_with_retry_after() -> None:
    with backend_with(workers=1, max_queue=1) as backend, Gate() as gate:
        tasks.GATES["middleware"] = gate
        tasks.wait_at.enqueue("middleware")
        assert gate.started.wait(WAIT)
        tasks.add.enqueue(1, 1)  # the queue is full now

        sync = Client().post("/enqueue")
        asynchronous = asyncio.run(AsyncClient().post("/aenqueue"))
        for response in (sync, asynchronous):
            assert response.status_code == 503
            assert response["Retry-After"] == "1"
            assert response.content == b"The server is busy with background work. Retry later.\n"
        assert backend.pool.stats().rejected == 2
        gate.open()
        finish(backend)


def test_other_exceptions_are_left_to_django() -> None:
    middleware = QueueFullMiddleware(lambda request: HttpResponse())
    assert middleware.process_exception(HttpRequest(), RuntimeError("not ours")) is None
    answered = middleware.process_exception(HttpRequest(), QueueFull("pool 'django' is full"))
    assert answered is not None
    assert answered.status_code == 503


def test_retry_after_is_a_class_attribute() -> None:
    class Patient(QueueFullMiddleware):
        retry_after = 30

    response = Patient(lambda request: HttpResponse()).process_exception(
        HttpRequest(), QueueFull("full")
    )
    assert response is not None
    assert response["Retry-After"] == "30"


def test_an_async_stack_stays_async() -> None:
    async def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("async")

    middleware = QueueFullMiddleware(view)
    assert iscoroutinefunction(middleware)
    assert asyncio.run(middleware(HttpRequest())).content == b"async"


def test_django_builds_an_asgi_stack_with_no_thread_for_it() -> None:
    # Django reads the class's async_capable: without it, each ASGI request would run the
    # middleware in a thread of its own, calling back into the loop. Under daphne, a
    # request in flight at SIGTERM then left that thread waiting forever: no exit.
    chain = ASGIHandler()._middleware_chain  # MIDDLEWARE is this middleware alone
    assert not isinstance(chain, SyncToAsync)
