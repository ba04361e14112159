"""The futures a pool returns behave like stdlib futures under every public API.

Behaviour tests run the same assertions against a `Background` pool and against the
stdlib's `ThreadPoolExecutor`. They run in this process's future mode; `future_selfcheck.py`
runs them again in a fresh interpreter in each mode (lazily built conditions, and plain
futures under ``BACKGROUND_EAGER_FUTURES=1``), and on every Python 3.10+ found on PATH.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import gc
import re
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from background_core import Background, TaskInfo
from tests.helpers import WAIT, Gate, clean_env, fail, runnable_interpreter, wait_until

ROUNDS = 2000
SCRIPT_TIMEOUT = 50  # below pytest's 60 s per-test timeout, so a hang reports its output
HERE = Path(__file__).resolve().parent
SELFCHECK = HERE / "future_selfcheck.py"
INTERPRETERS = ("python3.10", "python3.11", "python3.12", "python3.13", "python3.14")
# The stdlib Future's private attributes the lazy futures rely on are the same on these:
LAZY_ON = {"3.10", "3.11", "3.12", "3.13"}

Submit = Callable[..., "cf.Future[Any]"]


class Runner:
    """Submits to a Background pool or to a stdlib ThreadPoolExecutor, the same way."""

    def __init__(self, kind: str, workers: int) -> None:
        self.kind = kind
        self.failures: list[tuple[BaseException, TaskInfo]] = []
        self.bg: Background | None = None
        self.stdlib: cf.ThreadPoolExecutor | None = None
        if kind == "background":
            self.bg = Background(
                workers,
                name="futures",
                drain_timeout=WAIT,
                on_error=lambda error, task: self.failures.append((error, task)),
            )
            self.submit: Submit = self.bg.submit
        else:
            self.stdlib = cf.ThreadPoolExecutor(workers, thread_name_prefix="stdlib-futures")
            self.submit = self.stdlib.submit

    def close(self) -> None:
        if self.bg is not None:
            self.bg.shutdown()
        if self.stdlib is not None:
            self.stdlib.shutdown(wait=True)


@pytest.fixture(params=["background", "stdlib"])
def runner_factory(request: pytest.FixtureRequest) -> Iterator[Callable[[int], Runner]]:
    runners: list[Runner] = []

    def make(workers: int) -> Runner:
        runner = Runner(request.param, workers)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.close()


@pytest.fixture
def runner(runner_factory: Callable[[int], Runner]) -> Runner:
    return runner_factory(2)


@pytest.fixture
def gates() -> Iterator[Callable[[], Gate]]:
    """Gates that are all opened after the test, so no task outlives it."""
    made: list[Gate] = []

    def make() -> Gate:
        made.append(Gate())
        return made[-1]

    yield make
    for gate in made:
        gate.opened.set()


@pytest.fixture
def parked(
    runner_factory: Callable[[int], Runner], gates: Callable[[], Gate]
) -> tuple[Runner, Gate]:
    """A one-worker runner whose worker waits at a gate: what is submitted next stays queued."""
    runner = runner_factory(1)
    gate = gates()
    runner.submit(gate)
    assert gate.started.wait(WAIT)
    return runner, gate


def resolved(runner: Runner, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
    """A future that finished while nothing looked at it (for ours: no condition built).

    Drains a Background pool: call it before parking any task at a gate.
    """
    future = runner.submit(fn, *args)
    if runner.bg is not None:
        assert runner.bg.drain(WAIT).finished
    else:
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())  # the stdlib has no drain
        assert done.wait(WAIT)
    return future


# -- the public Future API -------------------------------------------------------------


def test_pool_returns_stdlib_futures(pool: Background) -> None:
    future = pool.submit(abs, -1)
    assert isinstance(future, cf.Future)
    assert future.result(timeout=WAIT) == 1


def test_result_with_timeout(runner: Runner, gates: Callable[[], Gate]) -> None:
    finished = resolved(runner, pow, 3, 4)
    assert finished.result(timeout=WAIT) == 81
    assert finished.result(timeout=0) == 81

    gate = gates()
    pending = runner.submit(gate, "later")
    assert gate.started.wait(WAIT)
    with pytest.raises(cf.TimeoutError):
        pending.result(timeout=0.01)
    gate.opened.set()
    assert pending.result(timeout=WAIT) == "later"


def test_exception(runner: Runner, gates: Callable[[], Gate]) -> None:
    ok = resolved(runner, abs, -2)
    assert ok.exception(timeout=WAIT) is None

    bad = resolved(runner, fail, "broken")
    error = bad.exception(timeout=WAIT)
    assert isinstance(error, ValueError)
    assert str(error) == "broken"
    with pytest.raises(ValueError, match="broken") as raised:
        bad.result(timeout=WAIT)
    assert raised.value is error
    assert bad.done()
    assert not bad.cancelled()

    gate = gates()
    pending = runner.submit(gate)
    assert gate.started.wait(WAIT)
    with pytest.raises(cf.TimeoutError):
        pending.exception(timeout=0.01)
    gate.opened.set()
    assert pending.exception(timeout=WAIT) is None


def test_done_and_running(runner: Runner, gates: Callable[[], Gate]) -> None:
    gate = gates()
    future = runner.submit(gate, 1)
    assert gate.started.wait(WAIT)
    assert future.running()
    assert not future.done()
    assert not future.cancelled()
    assert "running" in repr(future)
    gate.opened.set()
    assert future.result(timeout=WAIT) == 1
    assert future.done()
    assert not future.running()
    assert "finished" in repr(future)


def test_cancel_a_queued_task(
    runner_factory: Callable[[int], Runner], gates: Callable[[], Gate]
) -> None:
    runner = runner_factory(1)
    ran: list[str] = []
    gate = gates()
    blocker = runner.submit(gate)
    assert gate.started.wait(WAIT)
    victim = runner.submit(ran.append, "victim")
    assert not victim.running()
    assert not victim.done()

    assert victim.cancel()
    assert victim.cancel()  # idempotent
    assert victim.cancelled()
    assert victim.done()
    assert not victim.running()
    assert "cancelled" in repr(victim)
    with pytest.raises(cf.CancelledError):
        victim.result(timeout=WAIT)
    with pytest.raises(cf.CancelledError):
        victim.exception(timeout=WAIT)
    assert not blocker.cancel()  # running: too late

    gate.opened.set()
    assert blocker.result(timeout=WAIT) is None
    assert not blocker.cancel()  # finished: too late
    assert not blocker.cancelled()
    if runner.bg is not None:
        assert runner.bg.drain(WAIT).finished
        stats = runner.bg.stats()
        assert (stats.submitted, stats.succeeded, stats.cancelled) == (2, 1, 1)
        assert (stats.queued, stats.running) == (0, 0)
    else:
        runner.close()  # the stdlib's drain: its workers have seen the cancelled item
    assert ran == []


def test_cancel_after_finish_is_refused(runner: Runner) -> None:
    future = resolved(runner, abs, -3)
    assert not future.cancel()
    assert not future.cancelled()
    assert future.result(timeout=WAIT) == 3


def test_done_callback_added_before_completion(runner: Runner, gates: Callable[[], Gate]) -> None:
    calls: list[tuple[cf.Future[Any], str]] = []
    gate = gates()
    future = runner.submit(gate, "v")
    assert gate.started.wait(WAIT)
    called = threading.Event()

    def callback(f: cf.Future[Any]) -> None:
        calls.append((f, threading.current_thread().name))
        called.set()

    future.add_done_callback(callback)
    assert calls == []
    gate.opened.set()
    assert called.wait(WAIT)
    assert future.result(timeout=WAIT) == "v"
    ((seen, thread),) = calls
    assert seen is future
    assert thread != threading.current_thread().name  # the thread that resolved it


def test_done_callback_added_after_completion_runs_at_once(runner: Runner) -> None:
    calls: list[tuple[cf.Future[Any], str]] = []
    future = resolved(runner, abs, -4)
    future.add_done_callback(lambda f: calls.append((f, threading.current_thread().name)))
    assert calls == [(future, threading.current_thread().name)]


def test_done_callback_on_a_cancelled_future(parked: tuple[Runner, Gate]) -> None:
    runner, _ = parked
    victim = runner.submit(abs, -1)
    before: list[cf.Future[Any]] = []
    victim.add_done_callback(before.append)
    assert victim.cancel()
    assert before == [victim]
    after: list[cf.Future[Any]] = []
    victim.add_done_callback(after.append)
    assert after == [victim]


def test_wait_over_pending_and_finished(runner: Runner, gates: Callable[[], Gate]) -> None:
    finished = [resolved(runner, abs, -i) for i in range(3)]
    failed = resolved(runner, fail, "early")
    gate = gates()
    pending = [runner.submit(gate, i) for i in range(2)]
    assert gate.started.wait(WAIT)
    everything = [*finished, failed, *pending]

    done, not_done = cf.wait(everything, timeout=0)
    assert (done, not_done) == ({*finished, failed}, set(pending))
    done, not_done = cf.wait(everything, timeout=WAIT, return_when=cf.FIRST_COMPLETED)
    assert (done, not_done) == ({*finished, failed}, set(pending))
    done, not_done = cf.wait(everything, timeout=WAIT, return_when=cf.FIRST_EXCEPTION)
    assert failed in done
    assert not_done == set(pending)

    opener = threading.Thread(target=gate.opened.set)
    opener.start()  # opens while wait() blocks
    done, not_done = cf.wait(everything, timeout=WAIT, return_when=cf.ALL_COMPLETED)
    opener.join(WAIT)
    assert done == set(everything)
    assert not not_done
    assert sorted(f.result(timeout=WAIT) for f in pending) == [0, 1]


def test_wait_first_exception_returns_when_one_fails(
    runner: Runner, gates: Callable[[], Gate]
) -> None:
    gate = gates()
    parked = runner.submit(gate)
    assert gate.started.wait(WAIT)
    failing = runner.submit(fail, "now")
    done, not_done = cf.wait([parked, failing], timeout=WAIT, return_when=cf.FIRST_EXCEPTION)
    assert done == {failing}
    assert not_done == {parked}


def test_as_completed_over_pending_and_finished(runner: Runner, gates: Callable[[], Gate]) -> None:
    finished = [resolved(runner, abs, -i) for i in range(3)]
    gate = gates()
    pending = [runner.submit(gate, i) for i in range(2)]
    assert gate.started.wait(WAIT)
    iterator = cf.as_completed([*pending, *finished], timeout=WAIT)
    # The finished ones come first, while the others still wait at the gate.
    assert {next(iterator) for _ in finished} == set(finished)
    gate.opened.set()
    assert set(iterator) == set(pending)


def test_as_completed_times_out_on_a_pending_future(
    runner: Runner, gates: Callable[[], Gate]
) -> None:
    finished = resolved(runner, abs, -1)
    gate = gates()
    pending = runner.submit(gate)
    assert gate.started.wait(WAIT)
    iterator = cf.as_completed([pending, finished], timeout=0.05)
    assert next(iterator) is finished
    with pytest.raises(cf.TimeoutError):
        next(iterator)


def test_asyncio_wrap_future(runner: Runner, gates: Callable[[], Gate]) -> None:
    finished = resolved(runner, abs, -7)
    failed = resolved(runner, fail, "wrapped")
    gate = gates()
    pending = runner.submit(gate, "pending")

    async def main() -> None:
        assert await asyncio.wait_for(asyncio.wrap_future(finished), WAIT) == 7
        with pytest.raises(ValueError, match="wrapped"):
            await asyncio.wait_for(asyncio.wrap_future(failed), WAIT)
        wrapped = asyncio.wrap_future(pending)
        assert not wrapped.done()
        gate.opened.set()
        assert await asyncio.wait_for(wrapped, WAIT) == "pending"

    asyncio.run(main())


def test_asyncio_wrap_future_of_a_cancelled_future(parked: tuple[Runner, Gate]) -> None:
    runner, _ = parked
    victim = runner.submit(abs, -1)

    async def main() -> None:
        wrapped = asyncio.wrap_future(victim)
        assert victim.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(wrapped, WAIT)

    asyncio.run(main())


def test_futures_a_shutdown_cancelled_behave_as_cancelled_ones(parked: tuple[Runner, Gate]) -> None:
    # Ours cancels the queued futures nothing looked at without building their condition.
    runner, gate = parked
    seen = runner.submit(abs, -1)
    told: list[cf.Future[Any]] = []
    seen.add_done_callback(told.append)  # looked at before the shutdown
    unseen = [runner.submit(abs, -i) for i in range(4)]

    executor: cf.Executor | None = runner.bg if runner.bg is not None else runner.stdlib
    assert executor is not None
    executor.shutdown(wait=False, cancel_futures=True)
    assert told == [seen]
    assert seen.cancelled()
    if runner.bg is not None:  # the stdlib leaves them CANCELLED, unnotified: wait() would
        # not count them done, and as_completed() would hang (CPython issues 109934, 87893)
        done, not_done = cf.wait(unseen, timeout=WAIT)
        assert (done, not_done) == (set(unseen), set())
        assert set(cf.as_completed(unseen, timeout=WAIT)) == set(unseen)
    first, second, third, fourth = unseen
    assert first.cancelled()
    assert first.done()
    assert not first.running()
    assert "cancelled" in repr(first)
    assert first.cancel()  # idempotent
    with pytest.raises(cf.CancelledError):
        second.result(timeout=0)
    with pytest.raises(cf.CancelledError):
        second.exception(timeout=0)
    third.add_done_callback(told.append)  # called at once, as on any done future
    assert told == [seen, third]

    async def main() -> None:
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.wrap_future(fourth), WAIT)

    asyncio.run(main())
    gate.opened.set()
    if runner.bg is not None:
        assert runner.bg.drain(WAIT).finished
        stats = runner.bg.stats()
        assert (stats.submitted, stats.succeeded, stats.cancelled) == (6, 1, 5)


def test_waiter_in_another_thread_is_woken(runner: Runner, gates: Callable[[], Gate]) -> None:
    gate = gates()
    future = runner.submit(gate, "woken")
    assert gate.started.wait(WAIT)
    with cf.ThreadPoolExecutor(3) as waiters:
        waiting = [waiters.submit(future.result, WAIT) for _ in range(3)]
        # Not a wait for a condition: gives the waiters time to block in result().
        done, _ = cf.wait(waiting, timeout=0.05)
        assert not done
        gate.opened.set()
        assert [w.result(timeout=WAIT) for w in waiting] == ["woken"] * 3


# -- races between a worker resolving a future and a thread looking at it --------------


def test_result_right_after_submit_race(pool: Background) -> None:
    for i in range(ROUNDS):
        assert pool.submit(int, i).result(timeout=WAIT) == i


def test_waiter_threads_race_the_workers(pool: Background) -> None:
    with cf.ThreadPoolExecutor(4) as waiters:
        futures = [pool.submit(abs, -i) for i in range(ROUNDS)]
        waiting = [waiters.submit(f.result, WAIT) for f in futures]
        assert [w.result(timeout=2 * WAIT) for w in waiting] == list(range(ROUNDS))


def test_done_callback_race_runs_each_callback_once(pool: Background) -> None:
    counts = [0] * ROUNDS
    lock = threading.Lock()

    def counter(i: int) -> Callable[[cf.Future[Any]], None]:
        def callback(_: cf.Future[Any]) -> None:
            with lock:
                counts[i] += 1

        return callback

    for i in range(ROUNDS):
        pool.submit(int).add_done_callback(counter(i))
    assert pool.drain(WAIT).finished
    assert counts == [1] * ROUNDS


def test_cancel_race_wins_exactly_when_the_task_never_ran(pool: Background) -> None:
    ran = [False] * ROUNDS
    cancelled: list[int] = []
    futures: list[cf.Future[Any]] = []
    for i in range(ROUNDS):
        future = pool.submit(ran.__setitem__, i, True)
        futures.append(future)
        if future.cancel():
            cancelled.append(i)
    assert pool.drain(WAIT).finished
    assert not any(ran[i] for i in cancelled)
    assert sum(ran) == ROUNDS - len(cancelled)
    assert [i for i, f in enumerate(futures) if f.cancelled()] == cancelled
    stats = pool.stats()
    assert stats.cancelled == len(cancelled)
    assert stats.succeeded == ROUNDS - len(cancelled)


def test_wait_and_as_completed_race_the_workers(pool: Background) -> None:
    for _ in range(50):
        futures = [pool.submit(abs, -i) for i in range(20)]
        done, not_done = cf.wait(futures, timeout=WAIT)
        assert not not_done
        assert len(done) == 20
        more = [pool.submit(abs, -i) for i in range(20)]
        assert sorted(f.result(timeout=0) for f in cf.as_completed(more, timeout=WAIT)) == list(
            range(20)
        )


# -- future_selfcheck.py in fresh interpreters -----------------------------------------


def run_selfcheck(
    python: str, tmp_path: Path, *, eager_futures: bool
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-W", "error", str(SELFCHECK)],
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        env=clean_env(**({"BACKGROUND_EAGER_FUTURES": "1"} if eager_futures else {})),
        cwd=tmp_path,
        check=False,
    )


def lazy_flag(proc: subprocess.CompletedProcess[str]) -> bool:
    assert proc.returncode == 0, f"selfcheck failed:\n{proc.stdout}\n{proc.stderr}"
    match = re.fullmatch(r"LAZY=(True|False) ok", proc.stdout.strip())
    assert match, f"unexpected output:\n{proc.stdout}\n{proc.stderr}"
    return match.group(1) == "True"


@pytest.mark.parametrize(
    ("eager_futures", "expected_lazy"),
    [pytest.param(False, True, id="lazy"), pytest.param(True, False, id="eager-futures")],
)
def test_selfcheck_in_each_future_mode(
    tmp_path: Path, eager_futures: bool, expected_lazy: bool
) -> None:
    version = "{}.{}".format(*sys.version_info[:2])
    if not eager_futures and version not in LAZY_ON:
        pytest.skip(f"lazy futures are only expected on {sorted(LAZY_ON)}, this is {version}")
    proc = run_selfcheck(sys.executable, tmp_path, eager_futures=eager_futures)
    assert lazy_flag(proc) is expected_lazy


def usable_interpreter(name: str) -> tuple[str, str]:
    """A runnable `name` and its `X.Y` version; skip, saying why, if none can run."""
    path, version_or_why = runnable_interpreter(name)
    if path is None:
        pytest.skip(version_or_why)
    return path, version_or_why


@pytest.mark.parametrize("name", INTERPRETERS)
def test_selfcheck_on_every_interpreter(tmp_path: Path, name: str) -> None:
    path, version = usable_interpreter(name)
    proc = run_selfcheck(path, tmp_path, eager_futures=False)
    lazy = lazy_flag(proc)
    if version in LAZY_ON:
        assert lazy, f"{name} ({path}): the stdlib Future should match, so futures be lazy"


def test_a_future_whose_result_raised_is_freed_without_the_collector(pool: Background) -> None:
    future = pool.submit(fail, "boom")
    with contextlib.suppress(ValueError):  # not pytest.raises, which keeps the traceback
        future.result(timeout=WAIT)
    ref = weakref.ref(future)
    gc.disable()
    try:
        del future
        # As the stdlib's: no cycle through the traceback. (The worker may hold it a
        # moment longer, until its task is counted.)
        wait_until(lambda: ref() is None, "the future is freed", timeout=2)
    finally:
        gc.enable()


def test_a_held_future_lock_is_seen_by_the_sigterm_handlers_check() -> None:
    # Futures share one lock (see _future): a SIGTERM handler that interrupted the main
    # thread inside one must not cancel futures (whose cancel may need the same lock).
    from background_core import _exit, _future

    assert not _future.in_critical_section()
    assert not _exit._interrupted_a_pool()
    with _future.TaskFuture._lock:
        assert _future.in_critical_section()
        assert _exit._interrupted_a_pool()
    assert not _future.in_critical_section()


def test_a_finished_future_waited_on_builds_no_condition(pool: Background) -> None:
    futures = [pool.submit(abs, -i) for i in range(100)]
    assert pool.drain(WAIT).finished
    done, not_done = cf.wait(futures, timeout=WAIT)
    assert done == set(futures)
    assert not not_done
    assert sorted(f.result() for f in cf.as_completed(futures, timeout=WAIT)) == list(range(100))
    conditions = {type(f._condition).__name__ for f in futures}  # type: ignore[attr-defined]
    from background_core import _future

    assert conditions == ({"Settled"} if _future.LAZY else {"Condition"})


@pytest.mark.parametrize("kind", ["light", "stdlib"])
def test_a_pending_futures_condition_behaves_like_threading_condition(kind: str) -> None:
    from background_core._condition import Condition

    condition: Any = Condition() if kind == "light" else threading.Condition()
    with pytest.raises(RuntimeError):
        condition.wait(0)
    with pytest.raises(RuntimeError):
        condition.notify()
    with pytest.raises(RuntimeError):
        condition.notify_all()
    with condition:
        with condition:  # reentrant
            assert condition.wait(0) is False
        assert condition.wait(0.001) is False
        condition.notify_all()  # nobody waits: nothing to do
    assert condition.acquire(False)
    condition.release()

    waiting = 0
    woken: list[bool] = []

    def waiter() -> None:
        nonlocal waiting
        with condition:
            waiting += 1
            woken.append(condition.wait(WAIT))

    threads = [threading.Thread(target=waiter) for _ in range(3)]
    for thread in threads:
        thread.start()

    def all_waiting() -> bool:
        with condition:  # a waiter holds the lock until its wait() lets go of it
            return waiting == 3

    wait_until(all_waiting, "three threads wait")
    with condition:
        condition.notify()
    wait_until(lambda: len(woken) == 1, "one thread woke")
    with condition:
        condition.notify_all()
    for thread in threads:
        thread.join(WAIT)
    assert woken == [True, True, True]


def test_futures_waited_on_while_pending_get_the_light_condition(pool: Background) -> None:
    from background_core import _condition, _future

    gate = Gate()
    futures = [pool.submit(gate, i) for i in range(20)]
    done, _ = cf.wait(futures, timeout=0)
    assert not done
    expected = _condition.Condition if _future.LAZY and _condition.LIGHT else threading.Condition
    assert all(type(f._condition) is expected for f in futures)  # type: ignore[attr-defined]
    opener = threading.Thread(target=gate.open)
    opener.start()
    assert sorted(f.result(timeout=WAIT) for f in cf.as_completed(futures, timeout=WAIT)) == list(
        range(20)
    )
    opener.join(WAIT)
