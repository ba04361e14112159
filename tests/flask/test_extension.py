"""The Flask extension through Flask's test client and CLI runner."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Executor, Future

import pytest
from flask import Flask, current_app, g, request

import background_core
from flask_background import Background
from tests.helpers import WAIT


@pytest.fixture
def apps() -> Iterator[list[Flask]]:
    """Apps made by a test; their pools are shut down afterwards."""
    made: list[Flask] = []
    yield made
    for app in made:
        for key, pool in app.extensions.items():
            if key.startswith("background"):
                pool.shutdown()


def make_app(apps: list[Flask], name: str = "shop", **config: object) -> Flask:
    app = Flask(name)
    app.config.update(config)
    apps.append(app)
    return app


def test_init_app_stores_a_pool_configured_from_the_app(apps: list[Flask]) -> None:
    bg = Background()
    app = make_app(apps, BACKGROUND_WORKERS=3, BACKGROUND_MAX_QUEUE=50, BACKGROUND_DRAIN_TIMEOUT=5)
    bg.init_app(app)
    pool = app.extensions["background"]
    assert isinstance(pool, background_core.Background)
    assert pool.workers == 3
    assert pool.drain_timeout == 5
    assert pool.name == "shop"
    assert app.config["BACKGROUND_ON_FULL"] == "raise"
    assert app.config["BACKGROUND_EAGER"] is False
    assert app.config["BACKGROUND_COPY_REQUEST"] is False
    assert app.config["BACKGROUND_SIGTERM_HANDLER"] is False


def test_defaults_are_set_on_the_config(apps: list[Flask]) -> None:
    app = make_app(apps)
    Background(app)
    assert app.config["BACKGROUND_WORKERS"] is None
    assert app.extensions["background"].workers == background_core.usable_cpus()
    # A web app sheds load rather than stall a request (docs/overload.md).
    assert app.config["BACKGROUND_MAX_QUEUE"] == 10_000
    assert app.config["BACKGROUND_ON_FULL"] == "raise"
    assert app.config["BACKGROUND_BLOCK_TIMEOUT"] == 1.0
    assert app.config["BACKGROUND_RETRY_AFTER"] == 1
    assert app.config["BACKGROUND_DRAIN_TIMEOUT"] == 25.0


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("BACKGROUND_WORKERS", 0, ValueError),
        ("BACKGROUND_WORKERS", 10**9, ValueError),
        ("BACKGROUND_WORKERS", "8", TypeError),
        ("BACKGROUND_BLOCK_TIMEOUT", "1", TypeError),
        ("BACKGROUND_RETRY_AFTER", 0, ValueError),
        ("BACKGROUND_MAX_QUEUE", -5, ValueError),
        ("BACKGROUND_ON_FULL", "drop", ValueError),
        ("BACKGROUND_DRAIN_TIMEOUT", "30s", TypeError),
        ("BACKGROUND_DRAIN_TIMEOUT", -1, ValueError),
        ("BACKGROUND_EAGER", "yes", TypeError),
        ("BACKGROUND_COPY_REQUEST", 1, TypeError),
        ("BACKGROUND_SIGTERM_HANDLER", "on", TypeError),
    ],
)
def test_a_wrong_value_fails_at_init_app_naming_the_key(
    apps: list[Flask], key: str, value: object, error: type[Exception]
) -> None:
    app = make_app(apps, **{key: value})
    with pytest.raises(error, match=f"^{key} must be"):
        Background(app)
    assert "background" not in app.extensions


def test_registering_twice_on_one_app_says_to_reuse_the_instance(apps: list[Flask]) -> None:
    app = make_app(apps)
    bg = Background(app)
    for again in (bg, Background()):
        with pytest.raises(RuntimeError, match="reuse that extension instance"):
            again.init_app(app)


def test_a_handler_fires_a_task_that_runs_in_a_fresh_app_context(apps: list[Flask]) -> None:
    bg = Background()
    seen: dict[str, object] = {}
    done = threading.Event()

    @bg.task
    def record(user_id: int) -> None:
        seen["app"] = current_app.name
        seen["user"] = user_id
        seen["g_from_request"] = g.get("user")
        seen["thread"] = threading.current_thread().name
        g.task_value = "mine"

    app = make_app(apps)

    @app.teardown_appcontext
    def teardown(exc: BaseException | None) -> None:
        if g.get("task_value") == "mine":
            seen["torn_down"] = True
            done.set()

    @app.post("/signup")
    def signup() -> dict[str, str]:
        g.user = "from the request"
        future = record(42)
        assert isinstance(future, Future)
        return {"status": "queued"}

    bg.init_app(app)
    response = app.test_client().post("/signup")
    assert response.status_code == 200
    assert response.json == {"status": "queued"}
    assert done.wait(WAIT)
    assert seen == {
        "app": "shop",
        "user": 42,
        "g_from_request": None,
        "thread": seen["thread"],
        "torn_down": True,
    }
    assert str(seen["thread"]).startswith("background-shop-")


def test_teardown_runs_after_each_task_even_when_it_fails(apps: list[Flask]) -> None:
    app = make_app(apps)
    torn_down: list[str | None] = []

    @app.teardown_appcontext
    def teardown(exc: BaseException | None) -> None:
        torn_down.append(type(exc).__name__ if exc else None)

    bg = Background(app)

    @bg.task
    def boom() -> None:
        raise ValueError("boom")

    with app.app_context():
        futures = [bg.submit(int, "1"), boom()]
    assert futures[0].result(timeout=WAIT) == 1
    with pytest.raises(ValueError, match="boom"):
        futures[1].result(timeout=WAIT)
    assert app.extensions["background"].drain(WAIT).finished
    # The task's own contexts, not the one the test pushed and popped.
    assert sorted(torn_down, key=str) == [None, None, "ValueError"][: len(torn_down)]
    assert len(torn_down) >= 2


def test_the_extension_is_an_executor_of_the_current_apps_pool(apps: list[Flask]) -> None:
    bg = Background()
    app = make_app(apps, BACKGROUND_WORKERS=2)
    bg.init_app(app)
    assert isinstance(bg, Executor)  # as Flask-Executor's is: code written for one runs
    assert isinstance(app.extensions["background"], Executor)
    with app.app_context():
        assert bg.submit(pow, 2, 5).result(timeout=WAIT) == 32
        assert list(bg.map(lambda name: f"{name} in {current_app.name}", ["a", "b"])) == [
            "a in shop",
            "b in shop",
        ]
        bg.shutdown(wait=True)
    assert app.extensions["background"].closed


def test_submit_through_app_extensions_returns_a_future(apps: list[Flask]) -> None:
    app = make_app(apps)
    Background(app)

    @app.get("/sum")
    def total() -> str:
        future = current_app.extensions["background"].submit(sum, [1, 2, 3])
        return str(future.result(timeout=WAIT))

    assert app.test_client().get("/sum").text == "6"


def test_one_extension_serves_two_apps_from_a_factory(apps: list[Flask]) -> None:
    bg = Background()

    @bg.task
    def which_app() -> str:
        return current_app.name

    def create_app(name: str) -> Flask:
        app = make_app(apps, name, BACKGROUND_WORKERS=1)
        bg.init_app(app)
        return app

    first, second = create_app("first"), create_app("second")
    assert first.extensions["background"] is not second.extensions["background"]
    for app in (first, second):
        with app.app_context():
            assert which_app().result(timeout=WAIT) == app.name
            assert bg.pool is app.extensions["background"]
    with pytest.raises(RuntimeError, match="serves 2 apps and no app context is active"):
        which_app()


def test_outside_an_app_context_the_only_app_is_used(apps: list[Flask]) -> None:
    bg = Background()

    @bg.task
    def which_app() -> str:
        return current_app.name

    with pytest.raises(RuntimeError, match="serves no app yet"):
        which_app()
    app = make_app(apps, "solo")
    bg.init_app(app)
    assert which_app().result(timeout=WAIT) == "solo"


def test_an_app_without_the_extension_gets_a_clear_error(apps: list[Flask]) -> None:
    bg = Background(make_app(apps, "with"))
    other = make_app(apps, "without")
    with other.app_context(), pytest.raises(RuntimeError, match="call init_app"):
        bg.submit(int)


def test_eager_mode_runs_the_task_before_the_response(apps: list[Flask]) -> None:
    app = make_app(apps, BACKGROUND_EAGER=True)
    bg = Background(app)
    ran: list[tuple[str, str]] = []

    @bg.task
    def record(value: str) -> None:
        ran.append((current_app.name, threading.current_thread().name))

    @app.get("/")
    def index() -> str:
        assert record("x").done()
        return "ok"

    assert app.test_client().get("/").text == "ok"
    assert ran == [("shop", threading.current_thread().name)]


def test_a_second_pool_has_its_own_key_and_config(apps: list[Flask]) -> None:
    app = make_app(apps, BACKGROUND_WORKERS=2, BACKGROUND_EMAIL_WORKERS=1)
    default, email = Background(app), Background(app, name="email")
    assert app.extensions["background"].workers == 2
    assert app.extensions["background.email"].workers == 1
    assert app.extensions["background.email"].name == "shop.email"
    assert app.config["BACKGROUND_EMAIL_DRAIN_TIMEOUT"] == 25.0

    @email.task
    def send() -> str:
        return threading.current_thread().name

    with app.app_context():
        assert send().result(timeout=WAIT).startswith("background-shop.email-")
        assert default.pool is not email.pool


def test_request_data_is_not_carried_unless_asked(apps: list[Flask]) -> None:
    for copy in (False, True):
        app = make_app(apps, f"copy_{copy}".lower(), BACKGROUND_COPY_REQUEST=copy)
        bg = Background(app)

        @bg.task
        def look() -> tuple[str, str | None, str | None] | None:
            if not request:
                return None
            return request.path, request.args.get("q"), request.headers.get("X-Trace")

        @app.post("/search")
        def search() -> str:
            return repr(look().result(timeout=WAIT))

        response = app.test_client().post(
            "/search?q=books", data=b"body", headers={"X-Trace": "abc"}
        )
        expected = ("/search", "books", "abc") if copy else None
        assert response.text == repr(expected)


def test_a_cli_command_submits_in_its_app_context(apps: list[Flask]) -> None:
    app = make_app(apps, "cli")
    bg = Background(app)

    @bg.task
    def which_app() -> str:
        return current_app.name

    @app.cli.command("fire")
    def fire() -> None:
        print(which_app().result(timeout=WAIT))

    result = app.test_cli_runner().invoke(args=["fire"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "cli"


def test_async_tasks_run_in_the_app_context_too(apps: list[Flask]) -> None:
    app = make_app(apps, "aio")
    bg = Background(app)

    @bg.task
    async def which_app() -> str:
        return current_app.name

    with app.app_context():
        assert which_app().result(timeout=WAIT) == "aio"


def test_on_error_receives_failures_of_the_apps_tasks(apps: list[Flask]) -> None:
    failures: list[tuple[str, str]] = []
    app = make_app(apps, "errs")
    bg = Background(app, on_error=lambda error, task: failures.append((str(error), task.name)))

    @bg.task(name="explode")
    def explode() -> None:
        raise ValueError("boom")

    with app.app_context():
        explode()
    pool = app.extensions["background"]
    assert pool.drain(WAIT).finished
    assert pool.stats().failed == 1
    assert failures == [("boom", "explode")]
    with pytest.raises(TypeError, match="on_error must be callable"):
        Background(on_error="log")  # type: ignore[arg-type]


def test_a_pools_tasks_run_in_its_own_app_whatever_context_submits(apps: list[Flask]) -> None:
    bg = Background()
    owner, other = make_app(apps, "owner"), make_app(apps, "other")
    bg.init_app(owner)
    bg.init_app(other)
    with other.app_context():
        future = owner.extensions["background"].submit(lambda: current_app.name)
    assert future.result(timeout=WAIT) == "owner"


def test_a_collected_app_stops_its_pool() -> None:
    import gc

    app = Flask("short_lived")
    Background(app)
    pool = app.extensions["background"]
    assert pool.submit(int, "7").result(timeout=WAIT) == 7
    del app
    gc.collect()
    assert pool.closed


def test_init_app_off_the_main_thread_with_the_sigterm_handler_registers_nothing(
    apps: list[Flask],
) -> None:
    app = make_app(apps, "threaded", BACKGROUND_SIGTERM_HANDLER=True)
    bg = Background()
    errors: list[BaseException] = []

    def init() -> None:
        try:
            bg.init_app(app)
        except RuntimeError as error:
            errors.append(error)

    thread = threading.Thread(target=init)
    thread.start()
    thread.join(WAIT)
    assert len(errors) == 1
    assert "main thread" in str(errors[0])
    assert "background" not in app.extensions


def test_a_misspelt_key_is_named_with_the_one_it_resembles(
    apps: list[Flask], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(
        apps,
        BACKGROUND_WORKER=1,  # sic
        BACKGROUND_MAXQUEUE=5,  # sic
        BACKGROUND_MAX_WORKERS=4,  # ThreadPoolExecutor's habit
        BACKGROUND_EMAIL_WORKERS=2,  # a named pool's: not ours, and not a misspelling
        BACKGROUND_COLOR="blue",  # nothing like ours
    )
    Background(app)
    warnings = sorted(r.getMessage() for r in caplog.records if r.name == "background")
    assert warnings == [
        "app 'shop' sets BACKGROUND_MAXQUEUE, which is not a background setting and is "
        "ignored: did you mean BACKGROUND_MAX_QUEUE?",
        "app 'shop' sets BACKGROUND_MAX_WORKERS, which is not a background setting and is "
        "ignored: did you mean BACKGROUND_WORKERS?",
        "app 'shop' sets BACKGROUND_WORKER, which is not a background setting and is "
        "ignored: did you mean BACKGROUND_WORKERS?",
    ]


def test_a_misspelt_key_is_a_record_of_the_pool_it_would_configure(
    apps: list[Flask], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(apps, BACKGROUND_EMAIL_MAX_QEUE=5)  # sic
    Background(app, name="email")
    [record] = [r for r in caplog.records if r.name == "background"]
    assert record.getMessage().endswith("did you mean BACKGROUND_EMAIL_MAX_QUEUE?")
    fields = {key: record.__dict__[key] for key in ("pool", "task_name", "task_id", "attempt")}
    assert fields == {"pool": "shop.email", "task_name": None, "task_id": None, "attempt": None}
    assert app.extensions["background.email"].name == "shop.email"


def full_app(apps: list[Flask], **config: object) -> tuple[Flask, threading.Event]:
    """An app whose one worker is held and whose one queue slot is taken: full."""
    app = make_app(apps, BACKGROUND_WORKERS=1, BACKGROUND_MAX_QUEUE=1, **config)
    bg = Background(app)
    release = threading.Event()

    @app.get("/fire")
    def fire() -> str:
        bg.submit(int)
        return "queued"

    started = threading.Event()
    with app.app_context():
        bg.submit(lambda: started.set() or release.wait(WAIT))
        assert started.wait(WAIT)
        bg.submit(int)
    return app, release


def test_a_full_queue_answers_503_with_retry_after_as_abort_would(apps: list[Flask]) -> None:
    app, release = full_app(apps, BACKGROUND_RETRY_AFTER=7)
    try:
        response = app.test_client().get("/fire")
    finally:
        release.set()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"
    assert response.mimetype == "text/html"
    assert b"The server is busy with background work. Retry later." in response.data
    assert b"max_queue" not in response.data  # the pool's details are for the log


def test_the_apps_own_503_handler_answers_a_full_queue(apps: list[Flask]) -> None:
    app, release = full_app(apps)

    @app.errorhandler(503)
    def busy(error: Exception) -> tuple[dict[str, str], int]:
        assert isinstance(error, background_core.QueueFull)
        return {"error": "busy"}, 503

    try:
        response = app.test_client().get("/fire")
    finally:
        release.set()
    assert response.status_code == 503
    assert response.json == {"error": "busy"}


def test_async_tasks_interleaving_on_the_loop_keep_their_own_app_context(
    apps: list[Flask],
) -> None:
    app = make_app(apps)
    bg = Background(app)

    async def job(delay: float) -> str:
        await asyncio.sleep(delay)
        return f"{current_app.name} after {delay}"

    with app.app_context():
        slow, quick = bg.submit(job, 0.2), bg.submit(job, 0.05)  # quick ends first
        assert quick.result(timeout=WAIT) == "shop after 0.05"
        assert slow.result(timeout=WAIT) == "shop after 0.2"


def test_tasks_take_options_and_each_attempt_has_the_app_context(apps: list[Flask]) -> None:
    bg = Background()
    app = make_app(apps, BACKGROUND_WORKERS=1)
    bg.init_app(app)
    seen: list[str] = []

    @bg.task(retries=2, backoff=0.01, retry_on=ConnectionError)
    def notify(user: str) -> str:
        seen.append(current_app.name)  # each attempt runs in a fresh app context
        if len(seen) < 3:
            raise ConnectionError("SMTP busy")
        return f"notified {user}"

    @app.post("/notify/<user>")
    def endpoint(user: str) -> dict[str, str]:
        future = notify.using(delay=0.05)(user)
        return {"result": future.result(timeout=WAIT)}

    response = app.test_client().post("/notify/ada")
    assert response.json == {"result": "notified ada"}
    assert seen == ["shop", "shop", "shop"]
    stats = app.extensions["background"].stats()
    assert (stats.retried, stats.succeeded) == (2, 1)


def test_a_retried_task_gets_the_copied_request_at_each_attempt(apps: list[Flask]) -> None:
    bg = Background()
    app = make_app(apps, BACKGROUND_WORKERS=1, BACKGROUND_COPY_REQUEST=True)
    bg.init_app(app)
    paths: list[str] = []

    @bg.task(retries=1, backoff=0.01)
    def audit() -> str:
        paths.append(request.path)
        if len(paths) == 1:
            raise ConnectionError("audit log busy")
        return "logged"

    @app.post("/orders")
    def order() -> dict[str, str]:
        return {"audit": audit().result(timeout=WAIT)}

    assert app.test_client().post("/orders").json == {"audit": "logged"}
    assert paths == ["/orders", "/orders"]
