"""What travels with a task: the caller's contextvars, and what context capturers carry."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

import pytest

from background_core import (
    Background,
    PoolClosed,
    add_context_capturer,
    remove_context_capturer,
)
from tests.helpers import WAIT

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")
scratch: contextvars.ContextVar[str] = contextvars.ContextVar("scratch", default="clean")

Capturer = Callable[[], "AbstractContextManager[object] | None"]
C = TypeVar("C", bound=Capturer)


class Register(Protocol):
    def __call__(self, capturer: C, /) -> C: ...


@contextlib.contextmanager
def setting(var: contextvars.ContextVar[str], value: str) -> Iterator[None]:
    """Set `var` in the caller (the test) for the duration of the block."""
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


@pytest.fixture
def capturers() -> Iterator[Register]:
    """Register capturers through the public API; every one is removed after the test."""
    added: list[Capturer] = []

    def add(capturer: C) -> C:
        added.append(capturer)
        add_context_capturer(capturer)
        return capturer

    yield add
    for capturer in added:
        remove_context_capturer(capturer)


class Recorder:
    """A capturer whose context managers record (event, thread name) in order."""

    def __init__(self, label: str = "cm") -> None:
        self.label = label
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def record(self, event: str) -> None:
        with self.lock:
            self.events.append((event, threading.current_thread().name))

    def __call__(self) -> AbstractContextManager[object]:
        self.record(f"capture {self.label}")
        return self.manager()

    @contextlib.contextmanager
    def manager(self) -> Iterator[None]:
        self.record(f"enter {self.label}")
        try:
            yield
        finally:
            self.record(f"exit {self.label}")

    def names(self) -> list[str]:
        with self.lock:
            return [event for event, _ in self.events]


# -- contextvars -----------------------------------------------------------------------


def test_task_sees_the_callers_contextvar(pool: Background) -> None:
    with setting(request_id, "req-1"):
        future = pool.submit(request_id.get)
    assert future.result(timeout=WAIT) == "req-1"


def test_contextvars_are_captured_at_submission(pool: Background) -> None:
    gate = threading.Event()

    def read_after_gate() -> str:
        assert gate.wait(WAIT)
        return request_id.get()

    with setting(request_id, "at-submission"):
        future = pool.submit(read_after_gate)
        with setting(request_id, "changed-later"):
            gate.set()
            assert future.result(timeout=WAIT) == "at-submission"


def test_decorated_task_captures_contextvars_per_call(pool: Background) -> None:
    @pool.task
    def read() -> str:
        return request_id.get()

    with setting(request_id, "first"):
        first = read()
    with setting(request_id, "second"):
        second = read()
    third = read()
    assert first.result(timeout=WAIT) == "first"
    assert second.result(timeout=WAIT) == "second"
    assert third.result(timeout=WAIT) == "unset"


def test_tasks_submitted_where_no_variable_is_set_each_run_in_their_own_context() -> None:
    # Their snapshots are one shared empty context (see _context.snapshot): what each task
    # sets stays its own, sync or async, on one worker or several, retried or not.
    def mark(tag: str) -> str:
        seen = scratch.get()
        scratch.set(tag)
        return seen

    async def mark_async(tag: str) -> str:
        return mark(tag)

    def submit_all(bg: Background) -> list[Future[str]]:
        futures = [bg.submit(mark, f"sync-{i}") for i in range(200)]
        futures += [bg.submit(mark_async, f"async-{i}") for i in range(50)]
        futures += [bg.using(retries=1).submit(mark, f"planned-{i}") for i in range(20)]
        return futures

    for workers in (1, 2):
        with Background(workers, name=f"empty-context-{workers}") as bg:
            futures = contextvars.Context().run(submit_all, bg)
            assert [f.result(timeout=WAIT) for f in futures] == ["clean"] * len(futures)
    with Background(1, name="empty-context-eager", eager=True) as bg:
        futures = contextvars.Context().run(submit_all, bg)
        assert [f.result(timeout=WAIT) for f in futures] == ["clean"] * len(futures)


def test_task_set_never_leaks_into_the_next_task_on_the_same_worker() -> None:
    def dirty() -> int:
        scratch.set("dirty")
        request_id.set("overwritten")
        return threading.get_ident()

    def look() -> tuple[int, str, str]:
        return threading.get_ident(), scratch.get(), request_id.get()

    with Background(1, name="ctx-one") as bg, setting(request_id, "caller"):
        first = bg.submit(dirty)
        second = bg.submit(look)
        first_thread = first.result(timeout=WAIT)
        second_thread, seen_scratch, seen_request = second.result(timeout=WAIT)
    assert first_thread == second_thread  # one worker ran both
    assert seen_scratch == "clean"
    assert seen_request == "caller"
    # ... nor into the caller.
    assert scratch.get() == "clean"
    assert request_id.get() == "unset"


# -- capturers -------------------------------------------------------------------------


def test_capturer_runs_at_submission_and_its_manager_wraps_the_task(
    pool: Background, capturers: Register
) -> None:
    recorder = capturers(Recorder())
    gate = threading.Event()
    caller = threading.current_thread().name

    def task() -> str:
        assert gate.wait(WAIT)
        recorder.record("task")
        return threading.current_thread().name

    future = pool.submit(task)
    # Captured before submit() returned, in the caller's thread; the task waits (a worker
    # may have entered the manager already: the first one starts with the first task).
    assert recorder.events[0] == ("capture cm", caller)
    assert all(event != "task" for event, _ in recorder.events)
    gate.set()
    worker = future.result(timeout=WAIT)
    assert worker.startswith("background-test-")
    assert recorder.events == [
        ("capture cm", caller),
        ("enter cm", worker),
        ("task", worker),
        ("exit cm", worker),
    ]


def test_capturer_carries_a_value_from_the_caller_to_the_worker(
    pool: Background, capturers: Register
) -> None:
    tenant = threading.local()

    @contextlib.contextmanager
    def use_tenant(name: str) -> Iterator[None]:
        tenant.name = name
        try:
            yield
        finally:
            del tenant.name

    def capture_tenant() -> AbstractContextManager[object] | None:
        name = getattr(tenant, "name", None)  # read in the submitting thread
        return None if name is None else use_tenant(name)

    capturers(capture_tenant)

    def current() -> str | None:
        return getattr(tenant, "name", None)

    tenant.name = "acme"
    try:
        with_tenant = pool.submit(current)
    finally:
        del tenant.name
    without_tenant = pool.submit(current)
    assert with_tenant.result(timeout=WAIT) == "acme"
    assert without_tenant.result(timeout=WAIT) is None


def test_capturer_returning_none_carries_nothing(pool: Background, capturers: Register) -> None:
    calls: list[str] = []

    def nothing() -> None:
        calls.append(threading.current_thread().name)

    capturers(nothing)
    future = pool.submit(lambda: 42)
    assert future.result(timeout=WAIT) == 42
    assert calls == [threading.current_thread().name]


def test_managers_nest_in_registration_order_and_none_is_skipped(
    pool: Background, capturers: Register
) -> None:
    order: list[str] = []

    def log(label: str) -> Capturer:
        def capture() -> AbstractContextManager[object]:
            @contextlib.contextmanager
            def manager() -> Iterator[None]:
                order.append(f"enter {label}")
                yield
                order.append(f"exit {label}")

            return manager()

        return capture

    capturers(log("outer"))
    capturers(lambda: None)
    capturers(log("inner"))
    pool.submit(order.append, "task").result(timeout=WAIT)
    assert order == ["enter outer", "enter inner", "task", "exit inner", "exit outer"]


def test_manager_sees_the_tasks_exception_and_the_future_carries_it(
    capturers: Register,
) -> None:
    seen: list[type[BaseException] | None] = []

    class Watch:
        def __enter__(self) -> None:
            return None

        def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
            seen.append(exc_type)

    capturers(Watch)

    def fail() -> None:
        raise KeyError("boom")

    errors: list[BaseException] = []
    with Background(1, name="ctx-fail", on_error=lambda e, _t: errors.append(e)) as bg:
        future = bg.submit(fail)
        assert isinstance(future.exception(timeout=WAIT), KeyError)
        bg.drain(WAIT)
    assert seen == [KeyError]
    assert len(errors) == 1


def test_adding_a_capturer_twice_registers_it_once(pool: Background, capturers: Register) -> None:
    recorder = Recorder()
    capturers(recorder)
    capturers(recorder)
    pool.submit(int).result(timeout=WAIT)
    assert recorder.names() == ["capture cm", "enter cm", "exit cm"]


def test_removed_capturer_is_no_longer_called(pool: Background, capturers: Register) -> None:
    recorder = capturers(Recorder())
    pool.submit(int).result(timeout=WAIT)
    assert recorder.names() == ["capture cm", "enter cm", "exit cm"]
    remove_context_capturer(recorder)
    pool.submit(int).result(timeout=WAIT)
    pool.drain(WAIT)
    assert recorder.names() == ["capture cm", "enter cm", "exit cm"]


def test_removing_an_unregistered_capturer_does_nothing(pool: Background) -> None:
    remove_context_capturer(Recorder())
    assert pool.submit(int, "7").result(timeout=WAIT) == 7


@pytest.mark.parametrize("not_callable", [None, 42, "capture", object()])
def test_non_callable_capturer_raises_type_error(not_callable: object) -> None:
    with pytest.raises(TypeError, match="context capturer must be callable"):
        add_context_capturer(not_callable)  # type: ignore[arg-type]


def test_bound_method_capturer_can_be_removed(pool: Background) -> None:
    class Adapter:
        def __init__(self) -> None:
            self.calls = 0

        def capture(self) -> None:
            self.calls += 1

    adapter = Adapter()
    registered = adapter.capture
    add_context_capturer(registered)
    add_context_capturer(adapter.capture)  # equal to the first: not registered again
    remove_context_capturer(adapter.capture)
    try:
        pool.submit(int).result(timeout=WAIT)
        assert adapter.calls == 0
    finally:
        remove_context_capturer(registered)  # the very object registered: this one works


def test_capturer_wraps_a_coroutine_task_on_the_loop_thread(
    pool: Background, capturers: Register
) -> None:
    recorder = capturers(Recorder())

    async def task() -> str:
        recorder.record("task")
        await asyncio.sleep(0)
        return threading.current_thread().name

    with setting(request_id, "async-caller"):
        future = pool.submit(task)
    loop_thread = future.result(timeout=WAIT)
    assert loop_thread == "background-test-loop"
    assert recorder.events == [
        ("capture cm", threading.current_thread().name),
        ("enter cm", loop_thread),
        ("task", loop_thread),
        ("exit cm", loop_thread),
    ]


def test_a_pools_own_capturer_runs_after_the_global_ones_for_that_pool_only() -> None:
    order: list[str] = []

    @contextlib.contextmanager
    def mark(tag: str) -> Iterator[None]:
        order.append(f"enter {tag}")
        yield
        order.append(f"exit {tag}")

    def global_capturer() -> contextlib.AbstractContextManager[None]:
        return mark("global")

    add_context_capturer(global_capturer)
    try:
        with (
            Background(1, name="own", capturer=lambda: mark("own")) as own,
            Background(1, name="plain") as plain,
        ):
            own.submit(order.append, "task").result(timeout=10)
            assert order == ["enter global", "enter own", "task", "exit own", "exit global"]
            order.clear()
            plain.submit(order.append, "task").result(timeout=10)
            assert order == ["enter global", "task", "exit global"]
    finally:
        remove_context_capturer(global_capturer)


def test_a_pools_own_capturer_must_be_callable() -> None:
    with pytest.raises(TypeError, match="capturer must be callable"):
        Background(1, capturer=42)  # type: ignore[arg-type]


def test_excluded_contextvars_do_not_travel_but_the_others_do() -> None:
    private: contextvars.ContextVar[str] = contextvars.ContextVar("private")
    public: contextvars.ContextVar[str] = contextvars.ContextVar("public")

    def read() -> tuple[str, str]:
        return private.get("unset"), public.get("unset")

    def submit_with_both_set(bg: Background) -> tuple[str, str]:
        private.set("request object")
        public.set("trace id")
        return bg.submit(read).result(timeout=10)

    with Background(1, name="excl", exclude_contextvars=[private]) as bg:
        assert contextvars.copy_context().run(submit_with_both_set, bg) == ("unset", "trace id")
    with Background(1, name="incl") as bg:
        assert contextvars.copy_context().run(submit_with_both_set, bg) == (
            "request object",
            "trace id",
        )


def test_a_context_of_excluded_variables_only_travels_empty() -> None:
    private: contextvars.ContextVar[str] = contextvars.ContextVar("private")

    def submit_with_only_it_set(bg: Background) -> dict[str, object]:
        private.set("request object")
        future = bg.submit(lambda: {var.name: v for var, v in contextvars.copy_context().items()})
        return future.result(timeout=10)

    with Background(1, name="only", exclude_contextvars=[private]) as bg:
        # A fresh context holds the one variable: a Flask request's holds only Flask's.
        assert contextvars.Context().run(submit_with_only_it_set, bg) == {}


def test_a_raising_capturer_fails_the_submission_loudly_and_it_is_counted() -> None:
    def broken() -> contextlib.AbstractContextManager[None]:
        raise LookupError("no tenant")

    with Background(1, name="capfail", capturer=broken) as bg:
        with pytest.raises(LookupError, match="no tenant"):
            bg.submit(int)
        stats = bg.stats()
        assert (stats.submitted, stats.rejected) == (0, 1)
    # Closed comes first: the capturer's error would hide it.
    with pytest.raises(PoolClosed):
        bg.submit(int)


def test_exclude_contextvars_takes_only_contextvars() -> None:
    with pytest.raises(TypeError, match=r"exclude_contextvars takes contextvars\.ContextVar"):
        Background(1, exclude_contextvars=["request"])  # type: ignore[list-item]
