"""`_workers`: many tasks from many threads, and resizing the pool under load."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from concurrent.futures import Future
from typing import Any

import pytest

from background_core import (
    Background,
)
from tests.helpers import (
    WAIT,
    Gate,
    noop,
    pool_threads,
    start_thread,
    thread_name,
    wait_for_thread_count,
)

# -- load -------------------------------------------------------------------------------


def test_fifty_thousand_tasks_from_eight_threads(pool: Background) -> None:
    threads_count, per_thread = 8, 6250
    barrier = threading.Barrier(threads_count)
    futures: list[list[Future[Any]]] = [[] for _ in range(threads_count)]
    errors: list[BaseException] = []

    def submitter(index: int) -> None:
        try:
            barrier.wait(timeout=WAIT)
            mine = futures[index]
            submit = pool.submit
            for _ in range(per_thread):
                mine.append(submit(noop))
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    began = time.monotonic()
    threads = [
        start_thread(lambda i=i: submitter(i), f"test-submitter-{i}") for i in range(threads_count)
    ]
    for thread in threads:
        thread.join(30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    all_futures = [f for mine in futures for f in mine]
    assert len(all_futures) == 50_000
    _, not_done = concurrent.futures.wait(all_futures, timeout=30)
    assert not not_done
    assert pool.drain(timeout=30).finished
    stats = pool.stats()
    assert stats.submitted == 50_000 == stats.succeeded
    assert (stats.failed, stats.cancelled, stats.rejected) == (0, 0, 0)
    assert (stats.queued, stats.running) == (0, 0)
    assert all(f.result(timeout=0) is None for f in all_futures)
    assert time.monotonic() - began < 45


# -- resize -----------------------------------------------------------------------------


def test_resize_under_load_loses_no_task() -> None:
    names: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)
    pause = threading.Event()  # never set: each task waits briefly on it

    def work(i: int) -> None:
        with lock:
            names.append(thread_name())
        if i < 4:
            # Only passes when four workers run at once: proves the pool grew.
            barrier.wait(timeout=WAIT)
        else:
            pause.wait(0.002)

    with Background(1, name="resize", drain_timeout=30) as bg:
        futures = [bg.submit(work, i) for i in range(200)]
        assert len(pool_threads("resize")) == 1
        bg.workers = 4
        assert bg.workers == 4
        assert bg.stats().workers == 4
        # The first four tasks only finish together, on four different workers.
        for future in futures[:4]:
            assert future.result(timeout=WAIT) is None
        bg.workers = 1
        assert bg.workers == 1
        assert bg.stats().workers == 1
        report = bg.drain(timeout=30)
        assert report.finished
        assert all(f.result(timeout=0) is None for f in futures)
        assert len(names) == 200
        assert len(set(names[:4])) == 4
        stats = bg.stats()
        assert stats.submitted == stats.succeeded == 200
        alive = wait_for_thread_count("resize", 1)
        assert len(alive) == 1
        # The survivor still works.
        assert bg.submit(thread_name).result(timeout=WAIT) == alive[0].name
    assert wait_for_thread_count("resize", 0) == []


def test_resize_before_start_sets_the_worker_count() -> None:
    with Background(1, name="presize") as bg:
        bg.workers = 3
        assert pool_threads("presize") == []
        bg.start()
        assert len(pool_threads("presize")) == 3
        bg.workers = 2
        assert bg.stats().workers == 2
        assert len(wait_for_thread_count("presize", 2)) == 2


def test_shrink_then_grow_keeps_the_right_number_of_workers() -> None:
    with Background(4, name="flip") as bg:
        bg.start()
        bg.workers = 1
        bg.workers = 3
        assert len(wait_for_thread_count("flip", 3)) == 3
        futures = [bg.submit(noop) for _ in range(30)]
        assert all(f.result(timeout=WAIT) is None for f in futures)
        assert len(pool_threads("flip")) == 3


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (2.5, TypeError),
        ("2", TypeError),
        (True, TypeError),
        (None, TypeError),
    ],
)
def test_resize_refuses_bad_values(pool: Background, value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="workers"):
        pool.workers = value
    assert pool.workers == 2


def test_a_shrink_under_load_then_a_shutdown_without_wait_runs_every_queued_task() -> None:
    pool = Background(2, name="shrink-stop")
    ran: list[int] = []
    with Gate() as first, Gate() as second:
        pool.submit(first)
        pool.submit(second)
        assert first.started.wait(WAIT)
        assert second.started.wait(WAIT)
        pool.workers = 1  # both busy: the call to retire waits in the queue
        futures = [pool.submit(ran.append, i) for i in range(5)]
        pool.shutdown(wait=False)
    concurrent.futures.wait(futures, timeout=WAIT)
    assert ran == [0, 1, 2, 3, 4]
    assert wait_for_thread_count("shrink-stop", 0) == []


def test_a_shrink_then_a_grow_leaves_every_worker_to_the_end() -> None:
    pool = Background(2, name="shrink-grow")
    with Gate() as first, Gate() as second:
        pool.submit(first)
        pool.submit(second)
        assert first.started.wait(WAIT)
        assert second.started.wait(WAIT)
        pool.workers = 1
        pool.workers = 2  # the retirement is called off; its call stays in the queue
    assert pool.drain(WAIT).finished
    with Gate() as a, Gate() as b:
        pool.submit(a)
        pool.submit(b)
        assert a.started.wait(WAIT)  # two workers still there
        assert b.started.wait(WAIT)
    pool.shutdown()


def test_a_pool_whose_threads_cannot_all_start_stays_truthful(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The OS refuses a third thread, as it does when a process hits its thread limit.
    start = threading.Thread.start
    started = []

    def refuse_after_two(thread: threading.Thread) -> None:
        if thread.name.startswith("background-capped-"):
            if len(started) == 2:
                raise RuntimeError("can't start new thread")
            started.append(thread)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", refuse_after_two)
    with Background(8, name="capped") as bg:
        assert bg.submit(thread_name).result(timeout=WAIT).startswith("background-capped-")
        assert bg.workers == 2
        assert bg.stats().workers == 2
        assert len(pool_threads("capped")) == 2
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "background"]
    assert warning.startswith("pool 'capped' could start 2 of 8 more worker threads")
    assert warning.endswith("it goes on with 2")
