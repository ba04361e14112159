"""The FastAPI/Starlette adapter in process: TestClient, and httpx with asgi-lifespan."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import Route

from background_core import Background, QueueFull
from fastapi_background import BackgroundDep, background_of, get_background, lifespan, pool
from tests.helpers import WAIT, thread_name


def mailer(bg: BackgroundDep) -> Background:
    """A sub-dependency that needs the pool (module level: FastAPI resolves names here)."""
    return bg


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_handlers_get_the_pool_and_fire_tasks() -> None:
    app = FastAPI(lifespan=lifespan(workers=2, name="web"))
    fired = threading.Event()

    def send_welcome(email: str) -> None:
        assert email == "ada@example.com"
        fired.set()

    @app.post("/signup")
    async def signup(email: str, bg: BackgroundDep) -> dict[str, str]:
        future = bg.submit(send_welcome, email)
        assert not future.done() or fired.is_set()
        return {"status": "queued"}

    with TestClient(app) as client:
        response = client.post("/signup", params={"email": "ada@example.com"})
        assert response.json() == {"status": "queued"}
        assert fired.wait(WAIT)
        pool = app.state.background
        assert isinstance(pool, Background)
        assert pool.name == "web"
        assert pool.workers == 2
        assert not pool.closed
    assert pool.closed  # the lifespan made it, so the lifespan shut it down


def test_sync_handlers_and_sub_dependencies_get_the_same_pool() -> None:
    app = FastAPI(lifespan=lifespan(workers=1))

    @app.get("/sync")
    def sync_handler(
        bg: BackgroundDep, via: Annotated[Background, Depends(mailer)]
    ) -> dict[str, Any]:
        return {"same": bg is via, "thread": bg.submit(thread_name).result(timeout=WAIT)}

    @app.get("/plain-dependency")
    async def plain(bg: Annotated[Background, Depends(get_background)], request: Request) -> bool:
        return bg is request.state.background is request.app.state.background

    with TestClient(app) as client:
        assert client.get("/sync").json() == {"same": True, "thread": "background-app-1"}
        assert client.get("/plain-dependency").json() is True


def test_an_async_handler_awaits_a_result_without_blocking_the_loop() -> None:
    app = FastAPI(lifespan=lifespan(workers=1))
    release = threading.Event()

    def slow_square(x: int) -> int:
        assert release.wait(WAIT)
        return x * x

    @app.get("/square/{x}")
    async def square(x: int, bg: BackgroundDep) -> int:
        future = bg.submit(slow_square, x)
        # The loop stays free while the task waits: it can run this too.
        await asyncio.get_running_loop().run_in_executor(None, release.set)
        return await asyncio.wrap_future(future)

    with TestClient(app) as client:
        assert client.get("/square/7").json() == 49


def test_async_tasks_run_on_the_pools_loop_not_the_servers() -> None:
    app = FastAPI(lifespan=lifespan(workers=2, name="aio"))

    async def where() -> str:
        await asyncio.sleep(0)
        return thread_name()

    @app.get("/where")
    async def handler(bg: BackgroundDep) -> dict[str, str]:
        return {"task": await asyncio.wrap_future(bg.submit(where)), "handler": thread_name()}

    with TestClient(app) as client:
        body = client.get("/where").json()
    assert body["task"] == "background-aio-loop"
    assert body["handler"] != body["task"]


def test_the_apps_own_lifespan_runs_inside_and_its_state_is_merged() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def app_lifespan(app: FastAPI) -> AsyncIterator[dict[str, str]]:
        # Our pool already works here, at startup and at shutdown.
        pool = app.state.background
        events.append(f"startup sees pool: {pool.submit(int, '1').result(timeout=WAIT)}")
        yield {"db": "connection"}
        events.append(f"shutdown sees pool open: {not pool.closed}")

    app = FastAPI(lifespan=lifespan(app_lifespan, workers=1))

    @app.get("/state")
    async def state(request: Request, bg: BackgroundDep) -> dict[str, Any]:
        return {"db": request.state.db, "pool": request.state.background is bg}

    with TestClient(app) as client:
        assert client.get("/state").json() == {"db": "connection", "pool": True}
    assert events == ["startup sees pool: 1", "shutdown sees pool open: True"]


def test_a_plain_starlette_app() -> None:
    async def fire(request: StarletteRequest) -> JSONResponse:
        bg = background_of(request)
        return JSONResponse(await asyncio.wrap_future(bg.submit(sum, [1, 2, 3])))

    app = Starlette(routes=[Route("/", fire)], lifespan=lifespan(workers=1))
    with TestClient(app) as client:
        assert client.get("/").json() == 6


def test_without_the_lifespan_the_error_says_how_to_install_it() -> None:
    app = FastAPI()

    @app.get("/")
    async def handler(bg: BackgroundDep) -> None:
        raise AssertionError("not reached")

    with TestClient(app) as client, pytest.raises(RuntimeError, match="install the lifespan"):
        client.get("/")


def test_a_module_level_pool_with_its_tasks_serves_several_runs() -> None:
    bg = Background(1, name="module")
    ran: list[int] = []

    @bg.task
    def record(i: int) -> None:
        ran.append(i)

    app = FastAPI(lifespan=lifespan(pool=bg))

    @app.get("/record/{i}")
    async def handler(i: int) -> None:
        await asyncio.wrap_future(record(i))

    for i in range(2):  # two runs, as two tests with `with TestClient(app)` would do
        with TestClient(app) as client:
            assert app.state.background is bg
            client.get(f"/record/{i}")
        assert not bg.closed  # drained, left open for the next run
    assert ran == [0, 1]
    bg.shutdown()


def test_lifespan_options_are_checked_when_it_is_made() -> None:
    with pytest.raises(ValueError, match="workers must be at least 1"):
        lifespan(workers=0)
    with pytest.raises(TypeError, match="either pool= or Background options"):
        lifespan(pool=Background(1, name="x"), workers=2)


def test_an_owned_executor_stays_usable_until_the_app_shuts_down() -> None:
    threads = ThreadPoolExecutor(1)
    app = FastAPI(lifespan=lifespan(executor=threads, own_executor=True, name="owned"))
    assert threads.submit(abs, -1).result(timeout=WAIT) == 1  # not shut down by lifespan()

    @app.get("/")
    async def handler(bg: BackgroundDep) -> int:
        return await asyncio.wrap_future(bg.submit(abs, -2))

    with TestClient(app) as client:
        assert client.get("/").json() == 2
        assert threads.submit(abs, -3).result(timeout=WAIT) == 3
    with pytest.raises(RuntimeError, match="shutdown"):  # the app's shutdown shut it down
        threads.submit(abs, -4)


def test_the_pool_is_a_thread_pool_executor() -> None:
    app = FastAPI(lifespan=lifespan(workers=1))

    @app.get("/")
    async def handler(bg: BackgroundDep) -> list[int]:
        return list(bg.map(abs, [-1, -2]))

    with TestClient(app) as client:
        assert isinstance(app.state.background, ThreadPoolExecutor)
        assert client.get("/").json() == [1, 2]


def test_shutdown_logs_what_did_not_finish(caplog: pytest.LogCaptureFixture) -> None:
    app = FastAPI(lifespan=lifespan(workers=1, name="slow", drain_timeout=0.2))
    release = threading.Event()

    def stuck(secret: str) -> None:
        release.wait(WAIT)

    @app.get("/")
    async def handler(bg: BackgroundDep) -> None:
        bg.submit(stuck, "hunter2")

    try:
        with TestClient(app) as client:
            client.get("/")
    finally:
        release.set()
    warnings = [r.getMessage() for r in caplog.records if r.name == "background"]
    assert len(warnings) == 1
    assert "pool 'slow'" in warnings[0]
    assert ".stuck' (id 1, running" in warnings[0]
    assert "hunter2" not in warnings[0]


def test_a_pool_passed_in_reports_what_its_drain_left_as_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bg = Background(1, name="kept", drain_timeout=0.1)
    app = FastAPI(lifespan=lifespan(pool=bg))
    started, release = threading.Event(), threading.Event()

    @bg.task(name="stuck")
    def stuck(secret: str) -> None:
        started.set()
        release.wait(WAIT)

    @app.get("/")
    async def handler() -> None:
        stuck("hunter2")

    try:
        with TestClient(app) as client:
            client.get("/")
            assert started.wait(WAIT)  # running when the lifespan drains
    finally:
        release.set()
    [record] = [r for r in caplog.records if r.name == "background"]
    assert record.getMessage().endswith("at the end of the app's lifespan (the pool stays open)")
    fields = {key: record.__dict__[key] for key in ("pool", "task_name", "task_id", "attempt")}
    assert fields == {"pool": "kept", "task_name": None, "task_id": None, "attempt": None}
    assert record.__dict__["unfinished"] == [
        {"task_name": "stuck", "task_id": 1, "attempt": 1, "state": "running"}
    ]
    assert "hunter2" not in repr(record.__dict__)
    bg.shutdown()


def test_a_failing_app_lifespan_still_stops_the_pool() -> None:
    @asynccontextmanager
    async def broken(app: FastAPI) -> AsyncIterator[None]:
        raise ConnectionError("database unreachable")
        yield

    app = FastAPI(lifespan=lifespan(broken, workers=1, name="broken"))
    with pytest.raises(ConnectionError, match="database unreachable"), TestClient(app):
        pass
    assert app.state.background.closed


def test_the_pool_leaves_the_servers_threadpool_to_sync_endpoints() -> None:
    app = FastAPI(lifespan=lifespan(workers=2, name="busy"))
    release = threading.Event()

    @app.get("/fire")
    async def fire(bg: BackgroundDep) -> int:
        for _ in range(50):
            bg.submit(release.wait, WAIT)
        return bg.stats().queued + bg.stats().running

    @app.get("/sync")
    def sync_endpoint() -> str:
        return thread_name()

    try:
        with TestClient(app) as client:
            assert client.get("/fire").json() == 50
            # Both pool workers are stuck and 48 tasks wait: sync endpoints still run.
            assert not client.get("/sync").json().startswith("background-")
            release.set()
    finally:
        release.set()


@pytest.mark.anyio
async def test_httpx_with_asgi_lifespan() -> None:
    app = FastAPI(lifespan=lifespan(workers=1, name="httpx"))

    @app.get("/")
    async def handler(bg: BackgroundDep) -> str:
        return await asyncio.wrap_future(bg.submit(thread_name))

    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://test"
        ) as client,
    ):
        response = await client.get("/")
        assert response.json() == "background-httpx-1"
    assert app.state.background.closed


def test_an_app_lifespan_may_not_take_the_pools_state_key() -> None:
    @asynccontextmanager
    async def clashing(app: FastAPI) -> AsyncIterator[dict[str, str]]:
        yield {"background": "mine"}

    app = FastAPI(lifespan=lifespan(clashing, workers=1, name="clash"))
    with pytest.raises(RuntimeError, match="state key 'background'"), TestClient(app):
        pass
    assert app.state.background.closed


def full_pool(**options: Any) -> tuple[Background, threading.Event]:
    """A web pool whose one worker is held and whose one queue slot is taken: full."""
    bg = pool(workers=1, max_queue=1, name="full", **options)
    release, started = threading.Event(), threading.Event()
    bg.submit(lambda: started.set() or release.wait(WAIT))
    assert started.wait(WAIT)
    bg.submit(int)
    return bg, release


def test_a_full_queue_answers_503_json_with_retry_after() -> None:
    bg, release = full_pool(retry_after=7)
    app = FastAPI(lifespan=lifespan(pool=bg))

    @app.get("/fire")
    async def fire() -> str:
        bg.submit(int)
        return "queued"

    try:
        with TestClient(app) as client:
            response = client.get("/fire")
            release.set()  # before the lifespan's drain
    finally:
        release.set()
        bg.shutdown()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.json() == {"detail": "The server is busy with background work. Retry later."}


def test_the_apps_own_handler_for_queue_full_takes_precedence() -> None:
    bg, release = full_pool()
    app = FastAPI(lifespan=lifespan(pool=bg))

    @app.exception_handler(QueueFull)
    async def busy(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"error": "busy"}, status_code=429)

    @app.get("/fire")
    async def fire() -> str:
        bg.submit(int)
        return "queued"

    try:
        with TestClient(app) as client:
            response = client.get("/fire")
            release.set()  # before the lifespan's drain
    finally:
        release.set()
        bg.shutdown()
    assert (response.status_code, response.json()) == (429, {"error": "busy"})


def test_the_lifespans_pool_has_a_web_apps_defaults() -> None:
    app = FastAPI(lifespan=lifespan(workers=1))
    with TestClient(app):
        bg = app.state.background
        assert (bg.stats().workers, bg.name) == (1, "app")
    with pytest.raises(ValueError, match="retry_after must be at least 1"):
        lifespan(retry_after=0)
    with pytest.raises(TypeError, match="queue_full_error must be callable"):
        pool(queue_full_error=None)  # type: ignore[typeddict-item]


def test_handlers_submit_with_options_through_using() -> None:
    app = FastAPI(lifespan=lifespan(workers=1, name="web"))
    attempts: list[str] = []
    reminded = threading.Event()

    def send_welcome(email: str) -> str:
        attempts.append(email)
        if len(attempts) == 1:
            raise ConnectionError("SMTP busy")
        return "sent"

    @app.post("/signup")
    async def signup(email: str, bg: BackgroundDep) -> dict[str, str]:
        bg.using(retries=2, backoff=0.01).submit(send_welcome, email)
        bg.using(delay=0.2).submit(reminded.set)
        return {"status": "queued"}

    with TestClient(app) as client:
        assert client.post("/signup", params={"email": "ada@example.com"}).status_code == 200
        assert reminded.wait(WAIT)
        stats = app.state.background.stats()
    assert attempts == ["ada@example.com", "ada@example.com"]
    assert (stats.retried, stats.succeeded, stats.failed) == (1, 2, 0)


def test_a_module_level_pools_tasks_take_options() -> None:
    web_pool = pool(workers=1, name="module")
    app = FastAPI(lifespan=lifespan(pool=web_pool))
    calls: list[int] = []

    @web_pool.task(retries=1, backoff=0.01, timeout=5)
    async def fetch(n: int) -> int:
        calls.append(n)
        if len(calls) == 1:
            raise TimeoutError("upstream slow")
        return n * 2

    @app.get("/fetch/{n}")
    async def endpoint(n: int) -> dict[str, int]:
        return {"value": await asyncio.wrap_future(fetch(n))}

    try:
        with TestClient(app) as client:
            assert client.get("/fetch/21").json() == {"value": 42}
    finally:
        web_pool.shutdown()  # the app's lifespan did not make it, so it leaves it open
    assert calls == [21, 21]
