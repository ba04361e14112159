"""Starting and stopping the pools: `django_background.lifespan` (the ASGI lifespan around
Django's application) and the app's ``ready()`` (``BACKGROUND_SIGTERM_HANDLER`` and the
startup WARNING). tests/django/test_servers.py runs them under real servers."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping

import pytest
from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

import django_background
from tests.django import tasks
from tests.django.conftest import api, backend_with, tasks_setting
from tests.helpers import WAIT, Gate, pool_threads

Message = dict[str, object]
Status = api.TaskResultStatus


async def django_stand_in(
    scope: dict[str, object],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Mapping[str, object]], Awaitable[None]],
) -> None:
    """Django's ASGI application as far as the lifespan can tell: HTTP only."""
    if scope["type"] != "http":
        raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def lifespan_steps(*steps: str) -> list[Message]:
    """Run the lifespan of the wrapped stand-in through `steps` ("startup", "shutdown");
    what it sent, and check that it returned after the shutdown."""
    app = django_background.lifespan(django_stand_in)
    incoming: asyncio.Queue[Message] = asyncio.Queue()
    sent: list[Message] = []

    async def send(message: Mapping[str, object]) -> None:
        sent.append(dict(message))

    scope: dict[str, object] = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    running = asyncio.ensure_future(app(scope, incoming.get, send))
    deadline = time.monotonic() + WAIT
    for answered, step in enumerate(steps, start=1):
        await incoming.put({"type": f"lifespan.{step}"})
        while len(sent) < answered and not running.done():
            assert time.monotonic() < deadline, f"no answer to {step}"
            await asyncio.sleep(0.005)
    if "shutdown" in steps:
        await asyncio.wait_for(running, WAIT)  # it returns after the shutdown
    else:
        running.cancel()
    return sent


def run_lifespan(*steps: str) -> list[str]:
    return [str(message["type"]) for message in asyncio.run(lifespan_steps(*steps))]


# -- the ASGI lifespan -------------------------------------------------------------------


def test_startup_starts_the_pool_and_shutdown_drains_it() -> None:
    with backend_with(workers=1) as backend, Gate() as gate:
        assert run_lifespan("startup") == ["lifespan.startup.complete"]
        assert len(pool_threads("django")) == 1, "the pool's worker started with the server"
        pool = backend.pool
        tasks.GATES["shutdown"] = gate
        running = tasks.wait_at.enqueue("shutdown")
        waiting = tasks.add.enqueue(1, 2)
        assert gate.started.wait(WAIT)
        threading.Timer(0.2, gate.open).start()

        began = time.monotonic()
        assert run_lifespan("shutdown") == ["lifespan.shutdown.complete"]
        assert time.monotonic() - began >= 0.15, "the shutdown waited for the task"

        assert pool.closed
        for result in (running, waiting):
            result.refresh()  # the results outlive their pool
            assert result.status == Status.SUCCESSFUL
        assert backend.pool is not pool, "the next use makes a new pool"
        assert run_lifespan("startup", "shutdown") == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]


def test_shutdown_drains_every_pool_within_its_deadline_counted_from_the_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    two = {alias: tasks_setting(alias, drain_timeout=0.5)[alias] for alias in ("default", "other")}
    with override_settings(TASKS=two), Gate() as first, Gate() as second:
        tasks.GATES["first"], tasks.GATES["second"] = first, second
        tasks.wait_at.enqueue("first")
        tasks.wait_at.using(backend="other").enqueue("second")
        assert first.started.wait(WAIT)
        assert second.started.wait(WAIT)
        pools = [api.task_backends[alias].pool for alias in ("default", "other")]

        began = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="background"):
            assert run_lifespan("shutdown") == ["lifespan.shutdown.complete"]
        took = time.monotonic() - began

        assert 0.45 <= took < 0.9, f"{took:.2f}s: the pools' deadlines added up"
        assert all(pool.closed for pool in pools)
        unfinished = [r.getMessage() for r in caplog.records if "unfinished" in r.getMessage()]
        named = sorted(text.split(" shut down with 1 task unfinished")[0] for text in unfinished)
        assert named == ["pool 'django'", "pool 'django.other'"], unfinished


def test_a_wrong_option_fails_the_startup_naming_its_key() -> None:
    with override_settings(TASKS=tasks_setting(workers=-1)):
        [message] = asyncio.run(lifespan_steps("startup"))
    assert message["type"] == "lifespan.startup.failed"
    assert str(message["message"]).startswith("ImproperlyConfigured: ")
    assert "TASKS['default']['OPTIONS']['workers']" in str(message["message"])


def test_other_scopes_go_to_django() -> None:
    app = django_background.lifespan(django_stand_in)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Mapping[str, object]) -> None:
        sent.append(dict(message))

    asyncio.run(app({"type": "http", "method": "GET", "path": "/"}, receive, send))
    assert [message["type"] for message in sent] == ["http.response.start", "http.response.body"]
    with pytest.raises(ValueError, match="not websocket"):
        asyncio.run(app({"type": "websocket"}, receive, send))


# -- ready(): BACKGROUND_SIGTERM_HANDLER and the startup WARNING --------------------------


@pytest.fixture
def sigterm() -> Iterator[None]:
    """SIGTERM's handler as it was, restored after the test."""
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


def ready() -> None:
    apps.get_app_config("django_background").ready()


def test_the_setting_installs_the_sigterm_handler(sigterm: None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with override_settings(BACKGROUND_SIGTERM_HANDLER=True):
        ready()
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL


def test_the_setting_must_be_a_bool() -> None:
    with (
        override_settings(BACKGROUND_SIGTERM_HANDLER="yes"),
        pytest.raises(ImproperlyConfigured, match="BACKGROUND_SIGTERM_HANDLER must be True or"),
    ):
        ready()


def test_the_setting_off_the_main_thread_says_so(sigterm: None) -> None:
    failed: list[BaseException] = []

    def setup() -> None:
        try:
            ready()
        except ImproperlyConfigured as error:
            failed.append(error)

    with override_settings(BACKGROUND_SIGTERM_HANDLER=True):
        thread = threading.Thread(target=setup)
        thread.start()
        thread.join(WAIT)
    assert [str(error) for error in failed] == [
        "BACKGROUND_SIGTERM_HANDLER = True: install_sigterm_handler() must be called from "
        "the main thread: Python lets only the main thread set signal handlers."
    ]


@pytest.mark.parametrize(
    ("argv", "warns"),
    [
        (["manage.py", "runserver", "--noreload", "8000"], True),
        (["manage.py", "runserver", "8000"], False),  # the autoreloader handles SIGTERM
        (["manage.py", "migrate"], False),
    ],
)
def test_runserver_without_the_reloader_warns_at_startup(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    sigterm: None,
    argv: list[str],
    warns: bool,
) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    monkeypatch.setattr(sys, "argv", argv)
    with caplog.at_level(logging.WARNING, logger="background"):
        ready()
    messages = [record.getMessage() for record in caplog.records]
    if not warns:
        assert messages == []
        return
    assert messages == [
        "manage.py runserver --noreload installs no SIGTERM handler: a SIGTERM would end this "
        "process at once, with the tasks still queued in pool 'django' lost. Set "
        "BACKGROUND_SIGTERM_HANDLER = True in settings to drain them first."
    ]
    assert caplog.records[0].pool == "django"  # type: ignore[attr-defined]


def test_the_checks_say_when_the_setting_goes_unread() -> None:
    backend = api.task_backends["default"]
    assert backend.check() == []
    without_the_app = [app for app in settings.INSTALLED_APPS if app != "django_background"]
    with override_settings(BACKGROUND_SIGTERM_HANDLER=True):
        assert backend.check() == []
        with override_settings(INSTALLED_APPS=without_the_app):
            [warning] = backend.check()
    assert warning.id == "django_background.W001"
    assert warning.level == checks.WARNING
    assert warning.msg.startswith(
        "BACKGROUND_SIGTERM_HANDLER = True, but 'django_background' is not in INSTALLED_APPS"
    )
