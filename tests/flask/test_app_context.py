"""The app context each task runs in: fresh, torn down, signalled as Flask's own.

Every test runs twice: the lean push and pop this Flask gets (`LEAN`), and the plain
``push`` and ``pop`` that any other Flask, or an app that overrides them, gets.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import pytest
from flask import Flask, current_app, g, url_for
from flask.ctx import AppContext
from flask.globals import app_ctx
from flask.signals import appcontext_popped, appcontext_pushed, appcontext_tearing_down

from flask_background import Background
from flask_background import _context as context_module
from tests.helpers import WAIT


@pytest.fixture(params=["lean", "plain"])
def make_app(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Makes apps with the extension (one worker), each way; shut down afterwards."""
    if request.param == "plain":
        monkeypatch.setattr(context_module, "LEAN", False)
    made: list[Flask] = []

    def make(app_class: type[Flask] = Flask, **config: object) -> Flask:
        app = app_class("ctx")
        app.config.update({"BACKGROUND_WORKERS": 1, **config})
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["background"].shutdown()


def test_this_flask_takes_the_lean_way() -> None:
    # Else every task pays for the plain push and pop: a new Flask fails here until its
    # AppContext.push and pop are compared with _AppContexts and the range is widened.
    assert context_module.LEAN, f"Flask {version('flask')}: check _replicates_push_and_pop"


def test_no_g_leaks_from_a_task_to_the_next_nor_from_the_request(make_app: Any) -> None:
    app = make_app()
    bg = Background(app)
    contexts: list[AppContext] = []

    def first() -> object:
        contexts.append(app_ctx._get_current_object())
        before = g.get("secret")
        g.secret = "first's"
        return before

    def second() -> object:
        contexts.append(app_ctx._get_current_object())
        return g.get("secret")

    @app.get("/")
    def handler() -> dict[str, object]:
        g.secret = "the request's"
        one, two = bg.submit(first), bg.submit(second)  # one worker: in turn
        return {"first": one.result(timeout=WAIT), "second": two.result(timeout=WAIT)}

    assert app.test_client().get("/").json == {"first": None, "second": None}
    assert contexts[0] is not contexts[1]
    assert all(type(context) is AppContext and context.app is app for context in contexts)


def test_teardown_runs_after_each_task_with_its_g_and_its_error(make_app: Any) -> None:
    app = make_app()
    torn_down: list[tuple[object, str | None]] = []

    @app.teardown_appcontext
    def teardown(exc: BaseException | None) -> None:
        torn_down.append((g.get("task"), type(exc).__name__ if exc else None))

    Background(app)

    def task(name: str) -> None:
        g.task = name
        if name == "fails":
            raise ValueError(name)

    pool = app.extensions["background"]  # no app context here: its teardown would count
    futures = [pool.submit(task, name) for name in ("one", "fails", "two")]
    assert futures[0].result(timeout=WAIT) is None
    assert isinstance(futures[1].exception(timeout=WAIT), ValueError)
    assert futures[2].result(timeout=WAIT) is None
    assert torn_down == [("one", None), ("fails", "ValueError"), ("two", None)]


def test_each_task_sends_the_app_context_signals_in_flasks_order(make_app: Any) -> None:
    app = make_app()
    bg = Background(app)
    sent: list[tuple[str, object, str]] = []
    three = threading.Event()

    def pushed(sender: Flask, **kwargs: object) -> None:
        sent.append(("pushed", sender, threading.current_thread().name))

    def tearing_down(sender: Flask, **kwargs: object) -> None:
        sent.append(("tearing_down", sender, type(kwargs["exc"]).__name__))

    def popped(sender: Flask, **kwargs: object) -> None:
        sent.append(("popped", sender, threading.current_thread().name))
        if len(sent) == 3:
            three.set()

    with (
        appcontext_pushed.connected_to(pushed),
        appcontext_tearing_down.connected_to(tearing_down),
        appcontext_popped.connected_to(popped),
    ):
        bg.submit(int, "1").result(timeout=WAIT)
        assert three.wait(WAIT)
    worker = sent[0][2]
    assert worker.startswith("background-ctx-")
    assert sent == [
        ("pushed", app, worker),
        ("tearing_down", app, "NoneType"),
        ("popped", app, worker),
    ]


def test_url_for_builds_urls_in_a_task_with_server_name(make_app: Any) -> None:
    app = make_app(SERVER_NAME="shop.example", PREFERRED_URL_SCHEME="https")

    @app.get("/orders/<int:number>")
    def order(number: int) -> str:
        return str(number)

    bg = Background(app)
    future = bg.submit(url_for, "order", number=7, _external=True)
    assert future.result(timeout=WAIT) == "https://shop.example/orders/7"


def test_async_tasks_interleaving_on_the_loop_each_have_their_own_g(make_app: Any) -> None:
    app = make_app(BACKGROUND_WORKERS=2)  # as many async tasks at once
    Background(app)
    torn_down: list[object] = []

    @app.teardown_appcontext
    def teardown(exc: BaseException | None) -> None:
        torn_down.append(g.get("name"))

    started = threading.Event()
    go: list[asyncio.Event] = []

    async def waits(name: str) -> object:
        g.name = name
        go.append(asyncio.Event())  # made on the pool's loop, where both tasks run
        started.set()
        await go[0].wait()
        return (g.name, current_app.name)

    async def quick(name: str) -> object:
        g.name = name
        go[0].set()
        return (g.name, current_app.name)

    pool = app.extensions["background"]  # no app context here: its teardown would count
    slow = pool.submit(waits, "slow")
    assert started.wait(WAIT)  # slow holds its context while fast starts and ends
    fast = pool.submit(quick, "fast")
    assert fast.result(timeout=WAIT) == ("fast", "ctx")
    assert slow.result(timeout=WAIT) == ("slow", "ctx")
    assert pool.drain(WAIT).finished
    assert sorted(map(str, torn_down)) == ["fast", "slow"]


def test_an_app_that_makes_its_own_contexts_gets_them(make_app: Any) -> None:
    class MyContext(AppContext):
        pass

    class MyFlask(Flask):
        def app_context(self) -> AppContext:
            return MyContext(self)

    app = make_app(MyFlask)
    bg = Background(app)
    future = bg.submit(lambda: type(app_ctx._get_current_object()).__name__)
    assert future.result(timeout=WAIT) == "MyContext"


def test_a_task_that_leaves_an_app_context_pushed_fails_as_flask_says(make_app: Any) -> None:
    app = make_app()
    bg = Background(app)

    def leaves() -> None:
        app.app_context().push()

    error = bg.submit(leaves).exception(timeout=WAIT)
    assert isinstance(error, AssertionError)
    assert "Popped wrong app context" in str(error)
    assert bg.submit(lambda: g.get("x")).result(timeout=WAIT) is None  # the worker goes on
