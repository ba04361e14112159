"""Check that the futures a `Background` pool returns behave like stdlib futures.

A plain script, no pytest, runnable on any Python the package supports:

    PYTHONPATH=<repository root> python tests/core/future_selfcheck.py

It exercises the public `concurrent.futures.Future` API on the pool's futures, in whichever
mode `background_core._future` chose (lazily built conditions, or plain futures under
``BACKGROUND_EAGER_FUTURES=1`` or where the stdlib `Future` differs), prints
``LAZY=<bool> ok`` when every check passed, and exits non-zero on the first failure.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import faulthandler
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from background_core import Background, TaskInfo, _future
from tests.helpers import WAIT, Gate, fail

ROUNDS = 2000  # submissions per race check
STDLIB_FUTURE_ATTRIBUTES = {
    "_condition",
    "_state",
    "_result",
    "_exception",
    "_waiters",
    "_done_callbacks",
}


FAILURES: list[tuple[BaseException, str]] = []


def record_failure(error: BaseException, task: TaskInfo) -> None:
    """The pools' `on_error`: the checks expect some failures; keep stderr for real ones."""
    FAILURES.append((error, task.name))


def pool(workers: int, name: str) -> Background:
    return Background(workers, name=f"selfcheck-{name}", on_error=record_failure)


def raises(kind: type[BaseException], call: Callable[[], object]) -> BaseException:
    try:
        call()
    except kind as error:
        return error
    raise AssertionError(f"{call} did not raise {kind.__name__}")


def finished_untouched(bg: Background, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
    """A future resolved by the worker while nothing looked at it."""
    future = bg.submit(fn, *args)
    assert bg.drain(WAIT).finished
    if _future.LAZY:
        # The point of the lazy mode: a future nobody waited on never built its condition,
        # and it never needs one: it finished.
        assert not future._built  # type: ignore[attr-defined]
    return future


def check_settled() -> None:
    """A future that finished untouched gets the shared `Settled` stand-ins when something
    looks: waiting on many of them allocates nothing per future, and every API still works."""
    with pool(2, "settled") as bg:
        done = [finished_untouched(bg, abs, -i) for i in range(50)]
        failed = finished_untouched(bg, fail, "settled")
        gate = Gate()
        pending = bg.submit(gate, "p")
        everything = [*done, failed, pending]
        finished, not_finished = cf.wait(everything, timeout=0)
        assert finished == {*done, failed}
        assert not_finished == {pending}
        if _future.LAZY:
            assert all(f._condition is _future.SETTLED for f in done)  # type: ignore[attr-defined]
            assert pending._condition is not _future.SETTLED  # type: ignore[attr-defined]
        # A wait that installs waiters on done and pending futures alike, and removes them.
        opener = threading.Thread(target=gate.open)
        opener.start()
        finished, not_finished = cf.wait(everything, timeout=WAIT)
        opener.join(WAIT)
        assert finished == set(everything)
        assert not not_finished
        assert [f.result(timeout=0) for f in as_completed_sorted(everything[:50])] == list(
            range(50)
        )
        calls: list[cf.Future[Any]] = []
        done[0].add_done_callback(calls.append)
        assert calls == [done[0]]
        assert not done[0].cancel()
        assert not done[0].running()
        assert done[0].done()
        assert "finished" in repr(done[0])
        raises(ValueError, lambda: failed.result(timeout=0))
        raises(cf.InvalidStateError, lambda: done[1].set_result(1))
        assert done[1].result(timeout=0) == 1
        # Several threads waiting on the same done futures at once.
        with cf.ThreadPoolExecutor(4) as waiters:
            outcomes = list(waiters.map(lambda _: cf.wait(everything, timeout=WAIT), range(8)))
        assert all(d == set(everything) and not n for d, n in outcomes)


def as_completed_sorted(futures: list[cf.Future[Any]]) -> list[cf.Future[Any]]:
    return sorted(cf.as_completed(futures, timeout=WAIT), key=lambda f: int(f.result()))


def check_mode() -> None:
    matches = set(vars(cf.Future())) == STDLIB_FUTURE_ATTRIBUTES
    forced = os.environ.get("BACKGROUND_EAGER_FUTURES") == "1"
    assert (matches and not forced) == _future.LAZY, (_future.LAZY, matches, forced)
    with pool(1, "mode") as bg:
        future = bg.submit(int)
        assert isinstance(future, cf.Future)
        assert future.result(timeout=WAIT) == 0


def check_result_exception_done_running() -> None:
    with pool(2, "basic") as bg:
        ok = finished_untouched(bg, pow, 2, 10)
        assert ok.done()
        assert not ok.running()
        assert not ok.cancelled()
        assert ok.result(timeout=WAIT) == 1024
        assert ok.exception(timeout=WAIT) is None
        assert "finished" in repr(ok)

        bad = finished_untouched(bg, fail, "bad")
        error = bad.exception(timeout=WAIT)
        assert isinstance(error, ValueError)
        assert str(error) == "bad"
        assert raises(ValueError, lambda: bad.result(timeout=WAIT)) is error
        assert bad.done()
        assert not bad.cancelled()

        gate = Gate()
        pending = bg.submit(gate, "late")
        assert gate.started.wait(WAIT)
        assert pending.running()
        assert not pending.done()
        raises(cf.TimeoutError, lambda: pending.result(timeout=0.01))
        raises(cf.TimeoutError, lambda: pending.exception(timeout=0.01))
        assert not pending.cancel()  # running: cannot be cancelled
        gate.open()
        assert pending.result(timeout=WAIT) == "late"
        assert pending.done()
        assert not pending.running()


def check_cancel() -> None:
    ran: list[str] = []
    with pool(1, "cancel") as bg:
        gate = Gate()
        blocker = bg.submit(gate)
        assert gate.started.wait(WAIT)
        victim = bg.submit(ran.append, "victim")
        called: list[cf.Future[Any]] = []
        victim.add_done_callback(called.append)
        assert not victim.running()
        assert victim.cancel()
        assert victim.cancel()  # again: still True, like the stdlib's
        assert victim.cancelled()
        assert victim.done()
        assert not victim.running()
        assert called == [victim]
        raises(cf.CancelledError, lambda: victim.result(timeout=WAIT))
        raises(cf.CancelledError, lambda: victim.exception(timeout=WAIT))
        late: list[cf.Future[Any]] = []
        victim.add_done_callback(late.append)
        assert late == [victim]
        gate.open()
        assert blocker.result(timeout=WAIT) is None
        assert not blocker.cancel()  # finished: cannot be cancelled
        assert bg.drain(WAIT).finished
        stats = bg.stats()
    assert ran == [], ran
    assert (stats.cancelled, stats.succeeded, stats.queued) == (1, 1, 0), stats


def check_callbacks() -> None:
    with pool(1, "callbacks") as bg:
        gate = Gate()
        future = bg.submit(gate, 5)
        before: list[tuple[cf.Future[Any], str]] = []
        future.add_done_callback(lambda f: before.append((f, threading.current_thread().name)))
        assert before == []
        gate.open()
        assert future.result(timeout=WAIT) == 5
        assert bg.drain(WAIT).finished
        assert before == [(future, "background-selfcheck-callbacks-1")], before

        done = finished_untouched(bg, abs, -5)
        after: list[tuple[cf.Future[Any], str]] = []
        done.add_done_callback(lambda f: after.append((f, threading.current_thread().name)))
        assert after == [(done, threading.current_thread().name)], after


def check_wait_and_as_completed() -> None:
    with pool(2, "wait") as bg:
        finished = [finished_untouched(bg, abs, -i) for i in range(3)]
        failed = finished_untouched(bg, fail, "early")
        gate = Gate()
        pending = [bg.submit(gate, i) for i in range(2)]
        assert gate.started.wait(WAIT)
        everything = [*finished, failed, *pending]

        done, not_done = cf.wait(everything, timeout=0)
        assert done == {*finished, failed}
        assert not_done == set(pending)
        done, not_done = cf.wait(everything, timeout=WAIT, return_when=cf.FIRST_COMPLETED)
        assert done == {*finished, failed}
        assert not_done == set(pending)
        done, _ = cf.wait(everything, timeout=WAIT, return_when=cf.FIRST_EXCEPTION)
        assert failed in done

        iterator = cf.as_completed(everything, timeout=WAIT)
        first = {next(iterator) for _ in range(4)}
        assert first == {*finished, failed}
        gate.open()
        assert set(iterator) == set(pending)

        done, not_done = cf.wait(everything, timeout=WAIT)
        assert done == set(everything)
        assert not not_done

        # Futures that finish while wait() blocks on them.
        gate = Gate()
        late = [bg.submit(gate, i) for i in range(4)]
        opener = threading.Thread(target=gate.open)
        opener.start()
        done, not_done = cf.wait(late, timeout=WAIT, return_when=cf.ALL_COMPLETED)
        opener.join(WAIT)
        assert done == set(late)
        assert not not_done
        assert [f.result(timeout=WAIT) for f in late] == [0, 1, 2, 3]


def check_wrap_future() -> None:
    with pool(2, "asyncio") as bg:
        finished = finished_untouched(bg, abs, -7)
        failed = finished_untouched(bg, fail, "wrapped")
        gate = Gate()
        pending = bg.submit(gate, "pending")

        async def main() -> None:
            assert await asyncio.wait_for(asyncio.wrap_future(finished), WAIT) == 7
            outcome: list[object] = await asyncio.gather(
                asyncio.wait_for(asyncio.wrap_future(failed), WAIT), return_exceptions=True
            )
            error = outcome[0]
            assert isinstance(error, ValueError), error
            assert str(error) == "wrapped"
            wrapped = asyncio.wrap_future(pending)
            assert not wrapped.done()
            gate.open()
            assert await asyncio.wait_for(wrapped, WAIT) == "pending"

        asyncio.run(main())


def check_waiter_races() -> None:
    with pool(2, "race") as bg:
        # The caller waits right after submitting: it races the worker resolving it.
        for i in range(ROUNDS):
            assert bg.submit(int, i).result(timeout=WAIT) == i

        # Other threads wait, while the worker resolves.
        futures = [bg.submit(abs, -i) for i in range(ROUNDS)]
        with cf.ThreadPoolExecutor(4) as waiters:
            results = list(waiters.map(lambda f: f.result(timeout=WAIT), futures))
        assert results == list(range(ROUNDS))

        # A callback registered while the worker resolves runs exactly once.
        counts = [0] * ROUNDS
        lock = threading.Lock()

        def count(i: int) -> Callable[[cf.Future[Any]], None]:
            def callback(_: cf.Future[Any]) -> None:
                with lock:
                    counts[i] += 1

            return callback

        for i in range(ROUNDS):
            bg.submit(int).add_done_callback(count(i))
        assert bg.drain(WAIT).finished
        assert counts == [1] * ROUNDS, [i for i, n in enumerate(counts) if n != 1][:10]

        # cancel() races the worker starting it: it wins exactly when the task never ran.
        ran = [False] * ROUNDS
        cancelled = []
        for i in range(ROUNDS):
            future = bg.submit(ran.__setitem__, i, True)
            if future.cancel():
                cancelled.append(i)
        assert bg.drain(WAIT).finished
        assert not any(ran[i] for i in cancelled)
        assert sum(ran) == ROUNDS - len(cancelled)
        stats = bg.stats()
    assert stats.cancelled == len(cancelled), (stats, len(cancelled))


def check_planned() -> None:
    # A task with options keeps its own lock for its attempts, in either future mode.
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 2:
            raise ConnectionError("down")
        return "up"

    with pool(1, "planned") as bg:
        assert bg.task(retries=1, backoff=0.01)(flaky)().result(timeout=WAIT) == "up"
        late = bg.using(delay=0.01).submit(int, "7")
        assert late.result(timeout=WAIT) == 7


CHECKS = (
    check_mode,
    check_result_exception_done_running,
    check_cancel,
    check_callbacks,
    check_wait_and_as_completed,
    check_settled,
    check_wrap_future,
    check_waiter_races,
    check_planned,
)


def main() -> int:
    faulthandler.dump_traceback_later(120, exit=True)  # a hang fails, with stacks
    for check in CHECKS:
        check()
    assert [str(error) for error, _ in FAILURES] == ["bad", "early", "settled", "wrapped"], FAILURES
    assert {name for _, name in FAILURES} == {"fail"}, FAILURES
    faulthandler.cancel_dump_traceback_later()
    print(f"LAZY={_future.LAZY} ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
