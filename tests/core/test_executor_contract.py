"""`Background` is a `concurrent.futures.ThreadPoolExecutor`: the stdlib's calls keep their
meaning. CPython's own tests check most of it (test_cpython_executor.py); these check what
they check through the stdlib's private attributes, and what they cannot see: `map` on every
Python, ``shutdown(wait=False)`` at exit, initializers, dropped pools, asyncio.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import gc
import logging
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from background_core import Background, BrokenPool, PoolClosed
from tests.helpers import (
    WAIT,
    Gate,
    noop,
    pool_threads,
    run_script,
    start_thread,
    thread_name,
    wait_for_thread_count,
    wait_until,
)


@pytest.fixture
def bg() -> Iterator[Background]:
    pool = Background(3, name="contract", drain_timeout=WAIT)
    yield pool
    pool.shutdown()


def test_it_is_an_executor_and_a_thread_pool(bg: Background) -> None:
    assert isinstance(bg, concurrent.futures.Executor)
    assert isinstance(bg, concurrent.futures.ThreadPoolExecutor)


# -- map ------------------------------------------------------------------------------


def test_map_yields_results_in_order_as_they_come(bg: Background) -> None:
    gate = Gate()
    with gate:
        results = bg.map(lambda i: gate(i) if i == 2 else i, range(4))
        assert next(results) == 0  # while the third call still waits at the gate
        assert next(results) == 1
        assert gate.started.wait(WAIT)
    assert list(results) == [2, 3]


class Result:
    """A result a weak reference can watch."""


def test_map_lets_each_result_go_once_the_caller_drops_it(bg: Background) -> None:
    """CPython's test_free_reference, with the retry CPython's own fix gives it (its
    issue 130957): a worker holds a result for a moment after setting it, any pool's does."""
    for result in bg.map(lambda _: Result(), range(50)):
        watched = weakref.ref(result)
        del result
        wait_until(lambda: watched() is None, "the result freed")  # noqa: B023  (this round's)


def test_map_takes_several_iterables_and_stops_at_the_shortest(bg: Background) -> None:
    assert list(bg.map(pow, [2, 3, 4], [5, 2])) == [32, 9]


def test_map_raises_the_first_failure_in_order(bg: Background) -> None:
    results = bg.map(divmod, [1, 1, 1], [2, 0, 3])
    assert next(results) == (0, 1)
    with pytest.raises(ZeroDivisionError):
        next(results)


def test_map_timeout_raises_the_builtin_timeout_error_and_cancels_the_rest() -> None:
    with Background(1, name="map-timeout") as pool, Gate() as gate:
        blocker = pool.submit(gate)
        assert gate.started.wait(WAIT)
        results = pool.map(noop, range(3), timeout=0.05)
        with pytest.raises(TimeoutError):  # the builtin, on 3.10 too
            next(results)
        with pytest.raises(concurrent.futures.TimeoutError):  # and the stdlib's name for it
            next(pool.map(noop, range(1), timeout=0))
        gate.open()
        assert blocker.result(timeout=WAIT) is None
        assert pool.drain(WAIT).finished
        stats = pool.stats()
    assert stats.cancelled >= 3  # the timed-out call, the two after it (and the last one)


def test_leaving_map_early_cancels_the_calls_not_started() -> None:
    ran: list[int] = []
    with Background(1, name="map-close") as pool, Gate() as gate:

        def work(i: int) -> None:
            if i == 1:
                gate()
            ran.append(i)

        results = pool.map(work, range(5))
        assert next(results) is None
        assert gate.started.wait(WAIT)
        results.close()  # 1 runs at the gate; 2, 3 and 4 never start
        gate.open()
        assert pool.drain(WAIT).finished
        assert ran == [0, 1]
        assert pool.stats().cancelled == 3


def test_map_submits_everything_even_if_nobody_iterates() -> None:
    ran: list[int] = []
    with Background(2, name="map-all") as pool:
        pool.map(ran.append, range(10))
    assert sorted(ran) == list(range(10))


def test_map_lets_a_tasks_own_timeout_error_through(bg: Background) -> None:
    def read(address: str) -> None:
        raise TimeoutError(f"socket read timed out for {address}")  # as socket.timeout does

    for timeout in (None, WAIT):
        with pytest.raises(TimeoutError, match="socket read timed out") as raised:
            list(bg.map(read, ["db"], timeout=timeout))
        assert raised.value.__traceback__ is not None


def test_map_takes_the_stdlib_arguments_as_the_stdlib_does(bg: Background) -> None:
    assert list(bg.map(abs, [-1, 2], chunksize=5)) == [1, 2]  # threads take no chunks
    assert list(bg.map(abs, [-1], chunksize=0)) == [1]
    with Gate() as gate:
        results = bg.map(gate, [1], timeout=-1)  # a deadline already past: at once
        with pytest.raises(TimeoutError):
            next(results)
    with pytest.raises(TypeError, match="timeout must be a number of seconds"):
        bg.map(noop, [], timeout="5")  # type: ignore[arg-type]


# -- shutdown -------------------------------------------------------------------------


def test_shutdown_takes_the_stdlib_arguments_positionally_too() -> None:
    for call in (
        lambda pool: pool.shutdown(True),
        lambda pool: pool.shutdown(False),
        lambda pool: pool.shutdown(wait=False, cancel_futures=True),
    ):
        pool = Background(1, name="stdlib-args")
        assert pool.submit(abs, -3).result(timeout=WAIT) == 3
        call(pool)
        assert pool.closed
        with pytest.raises(RuntimeError, match="closed"):
            pool.submit(noop)
        assert wait_for_thread_count("stdlib-args", 0) == []


def test_shutdown_without_wait_returns_at_once_and_still_runs_what_was_accepted() -> None:
    pool = Background(1, name="no-wait")
    ran: list[int] = []
    with Gate() as gate:
        pool.submit(gate)
        assert gate.started.wait(WAIT)
        futures = [pool.submit(ran.append, i) for i in range(5)]
        began = time.monotonic()
        report = pool.shutdown(wait=False)
        assert time.monotonic() - began < 1
        assert len(report.unfinished) == 6  # a snapshot: they still run
        with pytest.raises(PoolClosed):
            pool.submit(noop)
    concurrent.futures.wait(futures, timeout=WAIT)
    assert ran == [0, 1, 2, 3, 4]
    assert wait_for_thread_count("no-wait", 0) == []  # and then the threads end


def test_shutdown_without_wait_cancels_the_queue_when_asked() -> None:
    pool = Background(1, name="no-wait-cancel")
    with Gate() as gate:
        running = pool.submit(gate)
        assert gate.started.wait(WAIT)
        queued = [pool.submit(noop) for _ in range(3)]
        pool.shutdown(wait=False, cancel_futures=True)
        assert all(f.cancelled() for f in queued)
        assert not running.done()
    assert running.result(timeout=WAIT) is None
    assert wait_for_thread_count("no-wait-cancel", 0) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"wait": 5}, TypeError, r"wait=True or False.*shutdown\(timeout=seconds\)"),
        ({"wait": None}, TypeError, "wait=True or False"),
        ({"wait": False, "timeout": 1}, ValueError, "wait=False.*no timeout"),
        ({"cancel_futures": "yes"}, TypeError, "cancel_futures must be True or False"),
        ({"timeout": -1}, ValueError, "timeout must be >= 0"),
    ],
)
def test_contradictory_shutdown_arguments_are_refused(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    pool = Background(1, name="bad-shutdown")
    with pytest.raises(error, match=message):
        pool.shutdown(**kwargs)
    assert not pool.closed  # nothing happened
    pool.shutdown()


def test_the_exit_drain_bounds_a_shutdown_without_wait(tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        """
        import threading, time
        from background_core import Background

        bg = Background(1, name="no-wait-exit", drain_timeout=1)
        out = open("ran.txt", "w")
        bg.submit(lambda: [out.write(f"{i}\\n") for i in range(3)] and out.flush())
        bg.submit(threading.Event().wait)  # never returns
        bg.shutdown(wait=False)
        print("main done", time.monotonic(), flush=True)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("main done")
    assert (tmp_path / "ran.txt").read_text().split() == ["0", "1", "2"]
    assert "1 task unfinished (1 running, 0 not started): 'Event.wait' (id 2" in proc.stderr


def test_the_exit_drain_waits_for_a_shutdown_in_progress_in_another_thread(
    tmp_path: Path,
) -> None:
    proc = run_script(
        tmp_path,
        """
        import threading, time
        from background_core import Background

        bg = Background(1, name="second-path", drain_timeout=5)
        out = open("ran.txt", "w")

        def slow(i):
            time.sleep(0.2)
            out.write(f"{i}\\n")
            out.flush()

        for i in range(4):
            bg.submit(slow, i)
        closer = threading.Thread(target=bg.shutdown, daemon=True)
        closer.start()
        while not bg.closed:
            time.sleep(0.01)
        print("main done", flush=True)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "ran.txt").read_text().split() == ["0", "1", "2", "3"]
    assert "unfinished" not in proc.stderr


# -- initializer ----------------------------------------------------------------------


def test_the_initializer_runs_once_in_each_worker_thread() -> None:
    seen: list[tuple[str, str]] = []
    local = threading.local()
    all_three = threading.Barrier(3)

    def setup(tag: str) -> None:
        local.tag = tag
        seen.append((thread_name(), tag))

    def check(_: int) -> str:
        all_three.wait(WAIT)  # every worker takes one of the first three
        tag: str = local.tag
        return tag

    with Background(3, name="init", initializer=setup, initargs=("ready",)) as pool:
        assert list(pool.map(check, range(30))) == ["ready"] * 30
    names = sorted(name for name, _ in seen)
    assert names == [f"background-init-{n}" for n in (1, 2, 3)]


def test_the_initializer_also_prepares_the_event_loop_thread() -> None:
    local = threading.local()

    def setup() -> None:
        local.ready = True

    async def check() -> bool:
        return bool(getattr(local, "ready", False))

    with Background(1, name="init-loop", initializer=setup) as pool:
        assert pool.submit(check).result(timeout=WAIT) is True


def test_a_failing_initializer_breaks_the_pool_as_the_stdlib_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = threading.Event()

    def setup() -> None:
        started.wait(WAIT)  # let tasks queue up first
        raise ValueError("no database")

    pool = Background(2, name="broken", initializer=setup)
    futures = [pool.submit(noop) for _ in range(4)]
    started.set()
    for future in futures:
        with pytest.raises(BrokenPool, match="initializer raised ValueError") as raised:
            future.result(timeout=WAIT)
        assert isinstance(raised.value, concurrent.futures.thread.BrokenThreadPool)
        assert isinstance(raised.value.__cause__, ValueError)
    with pytest.raises(BrokenPool, match="'broken' is broken"):
        pool.submit(noop)
    assert pool.drain(WAIT).finished  # failures are counted once they were reported
    stats = pool.stats()
    assert (stats.failed, stats.rejected, stats.queued) == (4, 1, 0)
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 1
    assert "initializer of pool 'broken'" in critical[0].getMessage()
    pool.shutdown()
    assert wait_for_thread_count("broken", 0) == []


def test_a_submitter_blocked_on_a_full_queue_gets_the_broken_pool_error() -> None:
    go = threading.Event()

    def setup() -> None:
        go.wait(WAIT)
        raise ValueError("no database")

    pool = Background(1, name="broken-full", max_queue=1, initializer=setup)
    first = pool.submit(noop)  # queued behind the initializer: the queue is full
    outcome: list[BaseException] = []

    def second() -> None:
        try:
            pool.submit(noop)
        except BaseException as error:
            outcome.append(error)

    blocked = start_thread(second, "test-blocked")
    go.set()
    blocked.join(WAIT)
    assert isinstance(first.exception(timeout=WAIT), BrokenPool)
    assert len(outcome) == 1
    assert isinstance(outcome[0], BrokenPool)
    pool.shutdown()


def test_the_initializer_runs_in_the_pools_threads_only() -> None:
    calls: collections.Counter[str] = collections.Counter()

    def setup() -> None:
        calls[thread_name()] += 1

    with Background(1, name="own-full", max_queue=1, initializer=setup) as pool, Gate() as gate:

        def parent() -> None:
            pool.submit(gate)  # fills the queue
            pool.submit(noop)  # full, from the pool's own thread: runs inline here
            gate.open()

        pool.submit(parent).result(timeout=WAIT)
    with (
        Background(
            1, name="caller-runs", max_queue=1, on_full="caller_runs", initializer=setup
        ) as pool,
        Gate() as gate,
    ):
        pool.submit(gate)
        assert gate.started.wait(WAIT)
        pool.submit(gate)  # waits in the queue
        assert pool.submit(thread_name).result(timeout=0) == "MainThread"  # ran here
        gate.open()
    assert dict(calls) == {"background-own-full-1": 1, "background-caller-runs-1": 1}


def test_an_initializer_needs_the_pools_own_threads() -> None:
    with (
        concurrent.futures.ThreadPoolExecutor(1) as threads,
        pytest.raises(TypeError, match="give the initializer to that executor"),
    ):
        Background(1, name="x", executor=threads, initializer=noop)


def test_an_eager_pool_runs_the_initializer_once_before_the_first_task() -> None:
    calls: list[str] = []
    with Background(name="eager-init", eager=True, initializer=calls.append, initargs=("x",)) as p:
        assert p.submit(len, calls).result(timeout=0) == 1
        assert p.submit(len, calls).result(timeout=0) == 1


# -- the pool's threads ----------------------------------------------------------------


def test_threads_are_named_after_the_pool_and_end_after_shutdown() -> None:
    with Background(3, name="named") as pool:
        assert list(pool.map(lambda _: thread_name(), range(9)))
        names = sorted(t.name for t in pool_threads("named"))
        assert names == ["background-named-1", "background-named-2", "background-named-3"]
    assert wait_for_thread_count("named", 0) == []


def test_a_dropped_pool_runs_its_queue_then_stops_its_threads() -> None:
    pool = Background(2, name="dropped")
    results = pool.map(abs, range(-5, 5))  # holds the futures, not the pool
    threads = pool_threads("dropped")
    assert len(threads) == 2
    del pool
    gc.collect()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    assert list(results) == [abs(i) for i in range(-5, 5)]


def test_a_dropped_pool_with_tasks_in_flight_lives_until_they_are_done() -> None:
    pool = Background(1, name="in-flight")
    with Gate() as gate:
        future = pool.submit(gate, "done")
        assert gate.started.wait(WAIT)
        del pool
        gc.collect()
        assert len(pool_threads("in-flight")) == 1  # still working
    assert future.result(timeout=WAIT) == "done"
    assert wait_for_thread_count("in-flight", 0) == []


def test_a_dropped_pool_shuts_down_the_executor_it_owns() -> None:
    threads = concurrent.futures.ThreadPoolExecutor(1)
    pool = Background(name="dropped-owner", executor=threads, own_executor=True)
    future = pool.submit(abs, -1)
    pool.shutdown(wait=False)
    assert future.result(timeout=WAIT) == 1
    del pool, future
    gc.collect()
    with pytest.raises(RuntimeError, match="shutdown"):
        threads.submit(noop)


def test_a_background_pool_can_be_the_executor_of_another() -> None:
    with Background(2, name="inner") as inner, Background(1, name="outer", executor=inner) as bg:
        assert bg.submit(thread_name).result(timeout=WAIT).startswith("background-inner-")
        assert list(bg.map(abs, [-1, -2])) == [1, 2]
        assert bg.drain(WAIT).finished
        assert bg.stats().succeeded == 3
        assert inner.stats().succeeded == 3


# -- asyncio --------------------------------------------------------------------------


def test_run_in_executor_runs_on_the_pool(bg: Background) -> None:
    async def main() -> str:
        return await asyncio.get_running_loop().run_in_executor(bg, thread_name)

    assert asyncio.run(main()).startswith("background-contract-")


def test_a_pool_as_the_loops_default_executor_is_shut_down_by_asyncio_run() -> None:
    pool = Background(2, name="default-executor")

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(pool)
        return [
            await asyncio.to_thread(thread_name),
            await loop.run_in_executor(None, thread_name),
        ]

    names = asyncio.run(main())
    assert all(name.startswith("background-default-executor-") for name in names)
    assert pool.closed  # asyncio.run shut its default executor down, through ours
    assert wait_for_thread_count("default-executor", 0) == []


def test_submitting_from_many_threads_while_shutting_down_loses_nothing() -> None:
    pool = Background(2, name="race")
    accepted: list[concurrent.futures.Future[Any]] = []
    refused = 0
    lock = threading.Lock()

    def submit_many() -> None:
        nonlocal refused
        for _ in range(500):
            try:
                future = pool.submit(noop)
            except PoolClosed:
                with lock:
                    refused += 1
            else:
                with lock:
                    accepted.append(future)

    threads = [start_thread(submit_many, f"submitter-{i}") for i in range(4)]
    time.sleep(0.005)
    pool.shutdown(wait=False)
    for thread in threads:
        thread.join(WAIT)
    done, pending = concurrent.futures.wait(accepted, timeout=WAIT)
    assert not pending
    assert all(f.exception() is None for f in done)
    assert len(accepted) + refused == 2000
    assert pool.stats().rejected == refused
    assert wait_for_thread_count("race", 0) == []
