"""Task options through the public API: run later, retry with backoff, time out.

None of them holds a worker while it waits: the tests check that other work runs meanwhile,
that 10,000 waiting tasks add one thread, and what a shutdown does with a task that falls
due before or after its deadline.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import threading
import time
from concurrent.futures import CancelledError, ThreadPoolExecutor, as_completed
from concurrent.futures import wait as cf_wait
from pathlib import Path

import pytest

import background
from background_core import Background, BrokenPool, QueueFull, TaskOptions

from ..helpers import SECRET, WAIT, Gate, run_script, wait_until


class Flaky:
    """Fails its first `failures` calls with `error`, then returns its argument; records
    the monotonic time of each call."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionError) -> None:
        self.failures = failures
        self.error = error
        self.calls: list[float] = []

    def __call__(self, value: object = None) -> object:
        self.calls.append(time.monotonic())
        if len(self.calls) <= self.failures:
            raise self.error("temporarily down")
        return value


def test_a_retry_holds_no_worker_while_it_backs_off(caplog: pytest.LogCaptureFixture) -> None:
    # One worker: the task fails, backs off 1 s, and 50 other tasks finish in that second.
    with Background(1, name="one") as bg:
        flaky = Flaky(failures=1)
        task = bg.task(retries=1, backoff=1.0, jitter=False)(flaky)
        future = task("done")
        wait_until(lambda: bg.stats().scheduled == 1, "the first attempt failed")
        failed_at = flaky.calls[0]
        others = [bg.submit(time.monotonic) for _ in range(50)]
        finished = [f.result(timeout=WAIT) for f in others]
        assert not future.done()  # still backing off
        assert future.result(timeout=WAIT) == "done"
        retried_at = flaky.calls[1]
    assert retried_at - failed_at >= 1.0
    assert max(finished) < retried_at  # all 50 ran while it waited
    stats = bg.stats()
    assert (stats.retried, stats.succeeded, stats.failed, stats.scheduled) == (1, 51, 0, 0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "failed on attempt 1 of 2 (ConnectionError); retrying in 1 s" in warnings[0].message


def test_each_failed_attempt_warns_once_and_the_last_one_is_the_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with Background(2, name="mail") as bg:
        task = bg.task(retries=2, backoff=0.01, jitter=False)(Flaky(failures=100))
        future = task(SECRET)
        with pytest.raises(ConnectionError):
            future.result(timeout=WAIT)
        future = task(SECRET)  # a second one, never retrieved: logged when it fails
        wait_until(future.done, "the second task failed")
        del future
    levels = [(r.levelname, r.getMessage()) for r in caplog.records]
    attempts = [m for level, m in levels if level == "WARNING" and "retrying" in m]
    assert len(attempts) == 4  # two per task
    assert "task 'Flaky' (id 1) in pool 'mail' failed on attempt 2 of 3" in attempts[1]
    errors = [m for level, m in levels if level == "ERROR"]
    assert errors == ["task 'Flaky' (id 2) in pool 'mail' failed"]
    assert all(
        SECRET not in r.getMessage() and SECRET not in r.getMessage() for r in caplog.records
    )
    assert bg.stats().retried == 4


def test_an_error_not_in_retry_on_fails_at_once() -> None:
    with Background(1, name="picky") as bg:
        flaky = Flaky(failures=1, error=ValueError)
        task = bg.task(retries=3, retry_on=(ConnectionError, TimeoutError))(flaky)
        with pytest.raises(ValueError, match="temporarily down"):
            task().result(timeout=WAIT)
    assert len(flaky.calls) == 1
    assert bg.stats().retried == 0


def test_a_retried_task_can_be_cancelled_while_it_waits() -> None:
    with Background(1, name="cancel") as bg:
        flaky = Flaky(failures=1)
        future = bg.task(retries=1, backoff=30)(flaky)()
        # stats() counts it scheduled a moment before scheduled() lists it with its due time
        wait_until(bg.scheduled, "the first attempt failed")
        [waiting] = bg.scheduled()
        assert bg.stats().scheduled == 1
        assert (waiting.name, waiting.state, waiting.attempt) == ("Flaky", "scheduled", 2)
        assert waiting.due_at is not None
        assert waiting.due_at > time.time() + 10
        assert future.cancel()
        report = bg.drain(WAIT)
    assert report.finished
    assert report.elapsed < 1
    assert future.cancelled()
    assert len(flaky.calls) == 1
    stats = bg.stats()
    assert (stats.cancelled, stats.scheduled, stats.retried) == (1, 0, 1)


def test_a_delayed_task_runs_no_earlier_and_can_be_cancelled() -> None:
    with Background(1, name="later") as bg:
        ran_at: list[float] = []
        task = bg.task(lambda: ran_at.append(time.monotonic()))
        submitted = time.monotonic()
        soon = task.using(delay=0.3)()
        later = task.using(delay=60)()
        assert bg.stats().scheduled == 2
        assert bg.stats().queued == 0
        soon.result(timeout=WAIT)
        assert ran_at[0] - submitted >= 0.3
        assert later.cancel()
        with pytest.raises(CancelledError):
            later.result(timeout=0)
        assert bg.drain(WAIT).finished
    assert len(ran_at) == 1
    stats = bg.stats()
    assert (stats.succeeded, stats.cancelled, stats.scheduled) == (1, 1, 0)


def test_run_at_takes_an_aware_datetime() -> None:
    with Background(1, name="at") as bg:
        when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=0.2)
        future = bg.using(run_at=when).submit(datetime.datetime.now, datetime.timezone.utc)
        assert future.result(timeout=WAIT) >= when
        past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
        assert bg.using(run_at=past).submit(lambda: "now").result(timeout=WAIT) == "now"


def test_ten_thousand_delayed_tasks_add_one_thread() -> None:
    before = threading.active_count()
    with Background(4, name="many") as bg:
        task = bg.task(lambda: None).using(delay=600)
        futures = [task() for _ in range(10_000)]
        assert threading.active_count() <= before + 1  # the timer; no worker started yet
        stats = bg.stats()
        assert (stats.scheduled, stats.queued, stats.running) == (10_000, 0, 0)
        assert len(bg.scheduled()) == 10_000
        report = bg.shutdown(timeout=0.5)
    assert report.elapsed < 0.5  # nothing can fall due before the deadline: no waiting
    assert len(report.unfinished) == 10_000
    assert {task.state for task in report.unfinished} == {"scheduled"}
    assert all(f.cancelled() for f in futures)
    assert bg.stats().cancelled == 10_000


def test_shutdown_runs_what_falls_due_before_its_deadline_and_names_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bg = Background(1, name="closing")
    ran = threading.Event()
    due_soon = bg.task(name="due-soon")(ran.set).using(delay=0.3)()
    flaky = Flaky(failures=1)
    retry_late = bg.task(name="retry-late", retries=1, backoff=30, jitter=False)(flaky)()
    wait_until(lambda: bg.stats().scheduled == 2, "both wait")
    report = bg.shutdown(timeout=2)
    assert ran.is_set()
    assert due_soon.done()
    assert retry_late.cancelled()
    [left] = report.unfinished
    assert (left.name, left.state, left.attempt) == ("retry-late", "scheduled", 2)
    assert report.elapsed < 2  # it did not wait for a retry due after the deadline
    warning = [r.getMessage() for r in caplog.records if "shut down with" in r.getMessage()]
    assert warning == [
        "pool 'closing' shut down with 1 task unfinished (0 running, 0 not started, "
        f"1 scheduled for later): 'retry-late' (id 2, scheduled, {left.age:.1f}s old); "
        "those not started were cancelled"
    ]


def test_a_sync_task_times_out_while_its_thread_still_runs() -> None:
    with Gate() as gate, Background(1, name="slow") as bg:
        future = bg.task(timeout=0.2)(gate)()
        with pytest.raises(TimeoutError, match=r"'Gate' \(id 1\) in pool 'slow' timed out"):
            future.result(timeout=WAIT)
        assert gate.started.is_set()
        assert not gate.opened.is_set()
        assert bg.stats().running == 1  # the thread is still busy: the pool says so
        [running] = bg.running()
        assert running.name == "Gate"
        gate.open()
        wait_until(lambda: bg.stats().failed == 1, "its thread returned")
    stats = bg.stats()
    assert (stats.running, stats.failed, stats.succeeded) == (0, 1, 0)


def test_a_hung_sync_task_past_its_timeout_is_reported_at_shutdown() -> None:
    with Gate() as gate:
        bg = Background(1, name="hung")
        future = bg.task(name="hangs", timeout=0.1)(gate)()
        with pytest.raises(TimeoutError):
            future.result(timeout=WAIT)
        report = bg.shutdown(timeout=0.2)
        assert [(t.name, t.state) for t in report.unfinished] == [("hangs", "running")]


def test_an_async_task_is_cancelled_at_its_timeout() -> None:
    cancelled = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(WAIT)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with Background(2, name="aio") as bg:
        future = bg.task(timeout=0.1)(slow)()
        with pytest.raises(TimeoutError, match=r"timed out after 0\.1 s and was cancelled"):
            future.result(timeout=WAIT)
        assert cancelled.is_set()
        assert bg.stats().failed == 1


def test_an_async_task_that_times_out_is_retried() -> None:
    attempts: list[int] = []

    async def sometimes_slow() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            await asyncio.sleep(WAIT)
        return "fast enough"

    with Background(1, name="aio-retry") as bg:
        task = bg.task(timeout=0.1, retries=1, backoff=0.01)(sometimes_slow)
        assert task().result(timeout=WAIT) == "fast enough"
    assert len(attempts) == 2
    assert bg.stats().retried == 1


def test_an_eager_pool_retries_inline_and_runs_delayed_tasks_at_once() -> None:
    with Background(1, name="eager", eager=True) as bg:
        flaky = Flaky(failures=2)
        future = bg.task(retries=2, backoff=30)(flaky).using(delay=600)("ok")
        assert future.done()
        assert future.result() == "ok"
    assert len(flaky.calls) == 3


def test_the_default_pool_takes_options_too() -> None:
    flaky = Flaky(failures=1)
    task = background.task(retries=1, backoff=0.01)(flaky)
    assert task.options == TaskOptions(retries=1, backoff=0.01)
    assert task("seed").result(timeout=WAIT) == "seed"
    assert task.using(delay=0.05)("later").result(timeout=WAIT) == "later"


def test_a_plain_task_has_no_options_and_using_keeps_the_tasks_own() -> None:
    with Background(1, name="plain") as bg:
        plain = bg.task(lambda: None)
        assert plain.options is None
        assert bg.task(retries=0)(lambda: None).options is None  # all defaults: plain
        planned = bg.task(retries=3, timeout=5)(lambda: None).using(delay=10)
        assert planned.options == TaskOptions(retries=3, timeout=5.0, delay=10.0)
        assert planned.using(run_at=None).options == planned.options
        planned.using(delay=0)().result(timeout=WAIT)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"retries": -1}, ValueError, "retries must be >= 0"),
        ({"retries": 1.5}, TypeError, "retries must be an int"),
        ({"retry_on": "ValueError"}, TypeError, "retry_on must be an exception class"),
        ({"retry_on": ()}, TypeError, "retry_on must be an exception class"),
        ({"backoff": -1}, ValueError, "backoff must be a finite number of seconds, >= 0"),
        ({"backoff": 10, "backoff_max": 1}, ValueError, "backoff_max must be >= backoff"),
        ({"timeout": 0}, ValueError, "timeout must be > 0 seconds"),
        ({"timeout": float("inf")}, ValueError, "timeout must be a finite number"),
        ({"jitter": 1}, TypeError, "jitter must be True or False"),
    ],
)
def test_a_bad_option_names_itself_at_decoration(
    options: dict[str, object], error: type[Exception], message: str
) -> None:
    with Background(1, name="bad") as bg, pytest.raises(error, match=message):
        bg.task(**options)(lambda: None)  # type: ignore[call-overload]


def test_a_bad_time_names_itself_per_call() -> None:
    with Background(1, name="bad-time") as bg:
        task = bg.task(lambda: None)
        naive = datetime.datetime.now()
        with pytest.raises(ValueError, match="run_at must be an aware datetime"):
            task.using(run_at=naive)
        with pytest.raises(ValueError, match="give delay= or run_at=, not both"):
            task.using(delay=1, run_at=naive)
        with pytest.raises(TypeError, match="delay must be a number of seconds"):
            task.using(delay="10")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="delay must be a finite number"):
            bg.using(delay=float("inf"))
        aware = datetime.datetime.now(datetime.timezone.utc)
        with pytest.raises(ValueError, match="give delay= or run_at=, not both"):
            bg.using(delay=1, run_at=aware)


def test_backoff_doubles_up_to_its_cap_with_jitter_below_it() -> None:
    fixed = TaskOptions(backoff=1.0, backoff_max=5.0, jitter=False)
    assert [fixed.wait_before(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    jittered = TaskOptions(backoff=2.0, backoff_max=60.0)
    waits = [jittered.wait_before(2) for _ in range(200)]
    assert all(2.0 <= w <= 4.0 for w in waits)
    assert len(set(waits)) > 100
    assert TaskOptions(backoff=1.0, backoff_max=1e9, jitter=False).wait_before(10_000) == 1e9


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_a_forked_child_inherits_no_scheduled_task(tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        """
        import os
        from background_core import Background

        bg = Background(1, name="forky", drain_timeout=5)
        waiting = bg.task(lambda: print("ran in", os.getpid())).using(delay=0.5)
        futures = [waiting() for _ in range(3)]
        pid = os.fork()
        if pid == 0:
            stats = bg.stats()
            assert stats.scheduled == 0 and stats.submitted == 0, stats
            assert bg.shutdown().finished
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        for f in futures:
            f.result(timeout=5)
        print("parent", os.getpid())
        """,
    )
    assert proc.returncode == 0, proc.stderr
    parent = proc.stdout.split()[-1]
    assert proc.stdout.count(f"ran in {parent}") == 3
    assert proc.stdout.count("ran in") == 3


def test_a_timed_out_task_fired_and_forgotten_is_logged_once_its_thread_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    timed_out = threading.Event()
    with Gate() as gate, Background(1, name="forgotten") as bg:
        bg.callback(lambda _future: timed_out.set())  # resolved at its deadline
        bg.using(timeout=0.1).submit(gate)  # nobody keeps the future
        assert timed_out.wait(WAIT)
        assert not caplog.records  # its thread still runs: the pool still holds it
        gate.open()
        # Logged when the pool lets go of it, once its thread returned: no GC needed.
        wait_until(lambda: any(r.levelno == logging.ERROR for r in caplog.records), "ERROR")
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.getMessage() == "task 'Gate' (id 1) in pool 'forgotten' failed"
    assert bg.stats().failed == 1


def test_a_timeout_on_a_pool_that_sends_sync_tasks_elsewhere_is_refused() -> None:
    with ThreadPoolExecutor(1) as elsewhere, Background(1, executor=elsewhere) as bg:
        with pytest.raises(ValueError, match="timeout= needs pool 'default'"):
            bg.using(timeout=1).submit(time.sleep, 0)
        assert bg.using(retries=1).submit(len, "ab").result(timeout=WAIT) == 2


def test_tasks_to_run_later_count_in_max_queue() -> None:
    with Background(1, name="bounded", max_queue=2, on_full="block") as bg:
        later = bg.using(delay=60)
        first, second = later.submit(len, "a"), later.submit(len, "b")
        with pytest.raises(QueueFull, match="Tasks to run later count in it"):
            later.submit(len, "c")
        assert bg.stats().rejected == 1
        first.cancel()
        later.submit(len, "d").cancel()
        second.cancel()


def test_a_retry_on_a_pool_with_an_executor_can_be_cancelled_while_it_waits() -> None:
    with ThreadPoolExecutor(1) as elsewhere, Background(1, executor=elsewhere) as bg:
        future = bg.using(retries=1, backoff=30).submit(Flaky(failures=1))
        wait_until(lambda: bg.stats().scheduled == 1, "the first attempt failed")
        assert future.cancel()
        assert bg.drain(WAIT).finished


def test_a_retry_that_comes_after_the_shutdown_gave_up_is_cancelled() -> None:
    gate = Gate()
    bg = Background(1, name="late-retry")

    def fails_when_let_go() -> None:
        gate()
        raise ConnectionError("down")

    future = bg.using(retries=1, backoff=0.01).submit(fails_when_let_go)
    assert gate.started.wait(WAIT)
    report = bg.shutdown(timeout=0.1)  # it still runs at the deadline
    assert [task.state for task in report.unfinished] == ["running"]
    gate.open()  # now it fails, after the shutdown: its retry cannot be scheduled
    with pytest.raises(CancelledError):
        future.result(timeout=WAIT)
    wait_until(lambda: bg.stats().cancelled == 1, "counted")


def test_wait_and_as_completed_wake_for_a_cancelled_scheduled_task() -> None:
    with Background(1, name="waiters") as bg:
        future = bg.using(delay=60).submit(len, "a")
        waiter = threading.Thread(target=lambda: cf_wait([future], timeout=WAIT))
        waiter.start()
        assert future.cancel()
        waiter.join(WAIT / 2)
        assert not waiter.is_alive()
        assert [f for f in as_completed([future], timeout=1)] == [future]


def test_a_task_that_falls_due_where_the_executor_refuses_it_fails_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    elsewhere = ThreadPoolExecutor(1)
    with Background(1, name="refused", executor=elsewhere) as bg:
        future = bg.using(delay=0.05).submit(len, "a")
        elsewhere.shutdown()  # it refuses what comes now
        with pytest.raises(RuntimeError, match="fell due, but its pool could not run it"):
            future.result(timeout=WAIT)
        stats = bg.stats()
    assert (stats.submitted, stats.failed, stats.rejected) == (1, 1, 0)


def test_a_task_that_falls_due_in_a_broken_pool_fails() -> None:
    def broken() -> None:
        raise OSError("no database")

    with Background(1, name="broken", initializer=broken) as bg:
        future = bg.using(delay=0.05).submit(len, "a")
        with pytest.raises(BrokenPool):
            future.result(timeout=WAIT)


def test_an_eager_pool_retries_many_times_without_recursing() -> None:
    with Background(1, name="eager-many", eager=True) as bg:
        flaky = Flaky(failures=600)
        future = bg.using(retries=600, backoff=0).submit(flaky, "done")
        assert future.result(timeout=0) == "done"
    assert len(flaky.calls) == 601


def test_tasks_that_fall_due_after_shutdown_without_waiting_run_on_one_thread() -> None:
    bg = Background(4, name="no-wait")
    ran: list[str] = []
    task = bg.task(lambda: ran.append(threading.current_thread().name))
    futures = [task.using(delay=0.2)() for _ in range(300)]
    bg.shutdown(wait=False)  # the accepted ones still run, as the stdlib's do
    most = 0
    deadline = time.monotonic() + WAIT
    while not all(f.done() for f in futures) and time.monotonic() < deadline:
        most = max(most, len([t for t in threading.enumerate() if "no-wait" in t.name]))
        threading.Event().wait(0.01)
    assert all(f.done() and f.exception() is None for f in futures)
    assert len(ran) == 300
    assert len(set(ran)) <= 2  # one thread for late tasks (and one more if it left once)
    assert most <= 3  # that thread, the timer, and perhaps one leaving
    assert bg.shutdown().finished
