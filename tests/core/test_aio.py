"""`async def` tasks: one event-loop thread per pool, at most `workers` coroutines at once."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import gc
import logging
import re
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from background_core import Background
from tests.helpers import WAIT, Gate, wait_for_thread_count, wait_until

trace_id: contextvars.ContextVar[str] = contextvars.ContextVar("trace_id", default="unset")


def test_decorated_async_function_returns_a_concurrent_future(pool: Background) -> None:
    @pool.task
    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    future = add(2, 3)
    assert isinstance(future, Future)
    assert future.result(timeout=WAIT) == 5


def test_submitted_coroutine_function_returns_a_concurrent_future(pool: Background) -> None:
    async def greet(name: str, *, punctuation: str) -> str:
        await asyncio.sleep(0)
        return f"hello {name}{punctuation}"

    future = pool.submit(greet, "ada", punctuation="!")
    assert isinstance(future, Future)
    assert future.result(timeout=WAIT) == "hello ada!"


def test_async_method_is_a_task(pool: Background) -> None:
    class Greeter:
        def __init__(self, greeting: str) -> None:
            self.greeting = greeting

        @pool.task
        async def greet(self, name: str) -> str:
            await asyncio.sleep(0)
            return f"{self.greeting} {name}"

    assert Greeter("hi").greet("bob").result(timeout=WAIT) == "hi bob"


def test_coroutines_run_on_one_loop_thread_never_the_callers(pool: Background) -> None:
    async def where() -> tuple[str, int, bool]:
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        return threading.current_thread().name, threading.get_ident(), loop.is_running()

    futures = [pool.submit(where) for _ in range(5)]
    seen = {future.result(timeout=WAIT) for future in futures}
    assert seen == {(name, ident, True) for name, ident, _ in seen}
    assert len(seen) == 1
    ((name, ident, _),) = seen
    assert name == "background-test-loop"
    assert ident != threading.get_ident()


def test_sync_and_async_tasks_share_a_pool(pool: Background) -> None:
    async def coro() -> str:
        return threading.current_thread().name

    def plain() -> str:
        return threading.current_thread().name

    async_name = pool.submit(coro).result(timeout=WAIT)
    sync_name = pool.submit(plain).result(timeout=WAIT)
    assert async_name == "background-test-loop"
    assert sync_name.startswith("background-test-")
    assert sync_name != async_name


def test_never_more_than_workers_coroutines_at_once(pool: Background) -> None:
    assert pool.workers == 2
    state = {"active": 0, "max": 0}
    loops: list[asyncio.AbstractEventLoop] = []
    gate = asyncio.Event()
    two_running = threading.Event()

    async def tracked(i: int) -> int:
        # Every coroutine runs on the same loop thread: no lock needed.
        state["active"] += 1
        state["max"] = max(state["max"], state["active"])
        loops.append(asyncio.get_running_loop())
        if state["active"] == 2:
            two_running.set()
        try:
            await asyncio.wait_for(gate.wait(), WAIT)
            await asyncio.sleep(0.001)  # let a third one start, if the limit were broken
        finally:
            state["active"] -= 1
        return i

    futures = [pool.submit(tracked, i) for i in range(6)]
    assert two_running.wait(WAIT)
    stats = pool.stats()
    assert (stats.running, stats.queued) == (2, 4)
    assert state["max"] == 2
    loops[0].call_soon_threadsafe(gate.set)
    assert [f.result(timeout=WAIT) for f in futures] == list(range(6))
    assert state["max"] == 2
    assert pool.stats().succeeded == 6


def grow_while_coroutines_wait(bg: Background, wait: float) -> bool:
    """Park `bg.workers` coroutines, grow the pool by one, and tell whether one more started."""
    state = {"active": 0}
    loops: list[asyncio.AbstractEventLoop] = []
    gate = asyncio.Event()
    target = bg.workers
    reached = {target: threading.Event(), target + 1: threading.Event()}

    async def parked() -> None:
        state["active"] += 1
        loops.append(asyncio.get_running_loop())
        if state["active"] in reached:
            reached[state["active"]].set()
        try:
            await asyncio.wait_for(gate.wait(), WAIT)
        finally:
            state["active"] -= 1

    futures = [bg.submit(parked) for _ in range(target + 2)]
    try:
        assert reached[target].wait(WAIT)
        bg.workers = target + 1
        return reached[target + 1].wait(wait)
    finally:
        loops[0].call_soon_threadsafe(gate.set)
        for future in futures:
            future.result(timeout=WAIT)


def test_growing_a_started_pool_lets_more_coroutines_run() -> None:
    with Background(1, name="aio-grow-started") as bg:
        bg.start()  # thread workers running too
        assert grow_while_coroutines_wait(bg, WAIT)


def test_growing_a_coroutine_only_pool_lets_more_coroutines_run() -> None:
    with Background(1, name="aio-grow") as bg:
        assert grow_while_coroutines_wait(bg, 2.0)


def test_failing_coroutine_resolves_the_future(
    pool: Background, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode() -> None:
        await asyncio.sleep(0)
        raise ValueError("async boom")

    with caplog.at_level(logging.ERROR, logger="background"):
        future = pool.submit(explode)
        error = future.exception(timeout=WAIT)
        assert isinstance(error, ValueError)
        assert str(error) == "async boom"
        with pytest.raises(ValueError, match="async boom"):
            future.result(timeout=WAIT)
        pool.drain(WAIT)
        del future, error
        gc.collect()
    assert [r for r in caplog.records if r.name == "background"] == []  # retrieved
    stats = pool.stats()
    assert (stats.failed, stats.succeeded) == (1, 0)


def test_a_failing_coroutine_nobody_awaits_is_logged_once(
    pool: Background, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode() -> None:
        await asyncio.sleep(0)
        raise ValueError("async boom")

    with caplog.at_level(logging.ERROR, logger="background"):
        pool.submit(explode)
        wait_until(lambda: caplog.records, "the failure is logged")
        pool.drain(WAIT)
    records = [r for r in caplog.records if r.name == "background"]
    assert len(records) == 1
    (record,) = records
    assert record.levelno == logging.ERROR
    assert "explode" in record.getMessage()
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "async boom"


def test_failing_coroutine_reaches_on_error() -> None:
    seen: list[tuple[BaseException, str]] = []

    async def explode() -> None:
        raise LookupError("nope")

    with Background(1, name="aio-hook", on_error=lambda e, t: seen.append((e, t.name))) as bg:
        future = bg.submit(explode)
        assert isinstance(future.exception(timeout=WAIT), LookupError)
        bg.drain(WAIT)
    assert len(seen) == 1
    assert isinstance(seen[0][0], LookupError)
    assert seen[0][1].endswith("explode")


def test_drain_waits_for_coroutine_tasks(pool: Background) -> None:
    finished: list[int] = []

    async def slow(i: int) -> None:
        await asyncio.sleep(0.02)
        finished.append(i)

    for i in range(4):
        pool.submit(slow, i)
    report = pool.drain(WAIT)
    assert report.finished
    assert report.completed == 4
    assert sorted(finished) == [0, 1, 2, 3]


def test_drain_reports_an_unfinished_coroutine(pool: Background) -> None:
    loops: list[asyncio.AbstractEventLoop] = []
    gate = asyncio.Event()
    started = threading.Event()

    async def parked() -> str:
        loops.append(asyncio.get_running_loop())
        started.set()
        await asyncio.wait_for(gate.wait(), WAIT)
        return "done"

    future = pool.submit(parked)
    assert started.wait(WAIT)
    report = pool.drain(0.05)
    assert not report.finished
    ((task,),) = (report.unfinished,)
    assert task.name.endswith("parked")
    assert task.state == "running"
    loops[0].call_soon_threadsafe(gate.set)
    assert future.result(timeout=WAIT) == "done"
    assert pool.drain(WAIT).finished


def test_coroutine_sees_contextvars_captured_at_submission(pool: Background) -> None:
    gate = threading.Event()

    async def read() -> str:
        while not gate.is_set():
            await asyncio.sleep(0.001)
        return trace_id.get()

    token = trace_id.set("at-submission")
    try:
        future = pool.submit(read)
        trace_id.set("changed-later")
        gate.set()
        assert future.result(timeout=WAIT) == "at-submission"
    finally:
        trace_id.reset(token)


def test_coroutine_contextvar_set_does_not_leak(pool: Background) -> None:
    async def dirty() -> None:
        trace_id.set("dirty")

    async def look() -> str:
        return trace_id.get()

    pool.submit(dirty).result(timeout=WAIT)
    assert pool.submit(look).result(timeout=WAIT) == "unset"
    assert trace_id.get() == "unset"


def test_await_the_future_from_another_event_loop(pool: Background) -> None:
    async def double(x: int) -> int:
        await asyncio.sleep(0.001)
        return 2 * x

    def plain(x: int) -> int:
        return x + 1

    async def main() -> tuple[int, int, str]:
        from_coro = await asyncio.wait_for(asyncio.wrap_future(pool.submit(double, 21)), WAIT)
        from_thread = await asyncio.wait_for(asyncio.wrap_future(pool.submit(plain, 1)), WAIT)
        return from_coro, from_thread, threading.current_thread().name

    assert asyncio.run(main()) == (42, 2, threading.current_thread().name)


def test_queued_coroutine_can_be_cancelled() -> None:
    ran: list[str] = []
    loops: list[asyncio.AbstractEventLoop] = []
    gate = asyncio.Event()
    started = threading.Event()

    async def blocker() -> None:
        loops.append(asyncio.get_running_loop())
        started.set()
        await asyncio.wait_for(gate.wait(), WAIT)

    async def victim() -> None:
        ran.append("victim")

    with Background(1, name="aio-cancel") as bg:
        first = bg.submit(blocker)
        assert started.wait(WAIT)
        second = bg.submit(victim)
        assert second.cancel()
        assert second.cancelled()
        loops[0].call_soon_threadsafe(gate.set)
        first.result(timeout=WAIT)
        assert bg.drain(WAIT).finished
        stats = bg.stats()
    assert ran == []
    assert (stats.succeeded, stats.cancelled) == (1, 1)


def test_shutdown_stops_the_loop_thread() -> None:
    bg = Background(2, name="aio-stop")
    try:

        async def where() -> str:
            return threading.current_thread().name

        assert bg.submit(where).result(timeout=WAIT) == "background-aio-stop-loop"
        (loop_thread,) = [t for t in threading.enumerate() if t.name == "background-aio-stop-loop"]
        assert loop_thread.is_alive()
    finally:
        bg.shutdown()
    loop_thread.join(WAIT)
    assert not loop_thread.is_alive()


def test_shutdown_waits_for_running_coroutines() -> None:
    finished: list[str] = []

    async def slow() -> None:
        await asyncio.sleep(0.05)
        finished.append("slow")

    bg = Background(1, name="aio-drain", drain_timeout=WAIT)
    future = bg.submit(slow)
    report = bg.shutdown()
    assert report.finished
    assert future.done()
    assert finished == ["slow"]


# -- whatever makes an awaitable is awaited on the pool's loop ---------------------------


class Greeter:
    """A callable object whose ``__call__`` is ``async def``."""

    async def __call__(self, name: str) -> str:
        await asyncio.sleep(0)
        return f"hello {name} from {threading.current_thread().name}"


def hides_async(fn: Any) -> Any:
    """A decorator that returns a plain function: its calls return the coroutine."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


@hides_async
async def hidden(events: list[str]) -> str:
    events.append("the body ran")
    await asyncio.sleep(0)
    return threading.current_thread().name


def test_an_object_with_async_call_runs_on_the_loop(pool: Background) -> None:
    greeting = pool.submit(Greeter(), "ada").result(timeout=WAIT)
    assert greeting == "hello ada from background-test-loop"
    task = pool.task(Greeter())
    assert task("bob").result(timeout=WAIT) == "hello bob from background-test-loop"


def test_a_sync_call_that_returns_a_coroutine_is_awaited_not_returned(
    pool: Background,
) -> None:
    events: list[str] = []
    for future in (pool.submit(hidden, events), pool.task(hidden)(events)):
        assert future.result(timeout=WAIT) == "background-test-loop"  # not a coroutine
    assert events == ["the body ran", "the body ran"]
    assert pool.drain(WAIT).finished
    stats = pool.stats()
    assert (stats.succeeded, stats.failed, stats.running) == (2, 0, 0)


def test_an_awaited_result_runs_inside_the_tasks_context(pool: Background) -> None:
    flavor: contextvars.ContextVar[str] = contextvars.ContextVar("flavor", default="plain")

    @hides_async
    async def read() -> str:
        return flavor.get()

    flavor.set("vanilla")
    assert pool.submit(read).result(timeout=WAIT) == "vanilla"


def test_an_awaited_failure_fails_the_future(pool: Background) -> None:
    @hides_async
    async def explode() -> None:
        raise KeyError("inside")

    with pytest.raises(KeyError, match="inside"):
        pool.submit(explode).result(timeout=WAIT)
    assert pool.drain(WAIT).finished
    assert pool.stats().failed == 1


def generate() -> Any:
    yield 1


async def generate_async() -> Any:
    yield 1


@pytest.mark.parametrize(
    ("fn", "kind"), [(generate, "a generator"), (generate_async, "an async generator")]
)
def test_generator_functions_are_refused_naming_the_function(
    pool: Background, fn: Any, kind: str
) -> None:
    message = f"task '{fn.__qualname__}' is {kind} function: a call only creates a generator"
    with pytest.raises(TypeError, match=re.escape(message)):
        pool.submit(fn)
    with pytest.raises(TypeError, match=re.escape(message)):
        pool.task(fn)
    with pytest.raises(TypeError, match=re.escape(message)):
        pool.submit(functools.partial(fn))
    assert pool.stats().submitted == 0


def test_an_awaitable_returned_during_shutdown_is_still_awaited() -> None:
    bg = Background(1, name="late")
    with Gate() as gate:
        bg.submit(gate)
        assert gate.started.wait(WAIT)
        asyncio_first = bg.submit(Greeter(), "early")  # the loop exists
        assert asyncio_first.result(timeout=WAIT).startswith("hello early")
        late = bg.submit(hidden, [])  # queued behind the gate: returns its coroutine late
        bg.shutdown(wait=False)
    assert late.result(timeout=WAIT) == "background-late-loop"  # the loop waited for it
    assert wait_for_thread_count("late", 0) == []


def test_an_awaitable_with_no_loop_left_fails_its_task_by_name() -> None:
    bg = Background(1, name="no-loop")
    with Gate() as gate:
        bg.submit(gate)
        assert gate.started.wait(WAIT)
        late = bg.submit(hidden, [])  # the pool never had a loop, and makes none now
        bg.shutdown(wait=False)
    with pytest.raises(RuntimeError, match="task 'hidden' returned an awaitable that pool"):
        late.result(timeout=WAIT)
    assert wait_for_thread_count("no-loop", 0) == []
    assert bg.stats().failed == 1


def test_an_awaitable_does_not_enter_the_tasks_context_managers_twice() -> None:
    entered: list[str] = []

    @contextlib.contextmanager
    def once() -> Iterator[None]:  # a generator-based manager: good for one use only
        entered.append("in")
        yield

    with Background(1, name="once", capturer=once) as bg:
        assert bg.submit(hidden, []).result(timeout=WAIT) == "background-once-loop"
    assert entered == ["in"]


def test_an_eager_async_failure_is_left_for_the_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def explode() -> None:
        raise ValueError("eager async boom")

    with Background(1, name="eager-async", eager=True) as bg:
        caplog.set_level(logging.ERROR, logger="background")
        bg.submit(explode)  # waited for, not retrieved: nobody has it, so it is logged
        gc.collect()
        future = bg.submit(explode)
        assert isinstance(future.exception(timeout=0), ValueError)  # retrieved: not logged
        del future
        gc.collect()
    messages = [r.getMessage() for r in caplog.records if r.name == "background"]
    assert messages == [
        "task 'test_an_eager_async_failure_is_left_for_the_caller.<locals>"
        ".explode' (id 1) in pool 'eager-async' failed"
    ]
