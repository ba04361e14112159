"""Tasks sent to another executor (``Background(executor=...)``): their outcome comes back.

The pool still tracks, counts and drains them; the executor's future resolves the pool's.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from concurrent.futures import Executor, Future
from contextvars import copy_context
from typing import Any

from ._future import TaskFuture
from ._observe import rejected
from ._run import HANDED_OVER, Runner


def send(
    runner: Runner, future: TaskFuture[Any], executor: Executor, *, withdraw: bool = True
) -> None:
    """Submit the work to `executor`; its outcome resolves `future` (see `_relay`).

    The future was marked as being sent at admission, so a shutdown leaves it to the
    executor. Raises what the executor's submit raises, with the task withdrawn (unless
    not `withdraw`: a task that fell due is the pool's to fail, as it was accepted).
    """
    fn, args, kwargs, _, _ = future.take_work()
    try:
        sent = executor.submit(fn, *args, **kwargs)
    except BaseException:
        if withdraw:
            with runner.ledger.lock:
                runner.ledger.withdraw(future)
            rejected(runner.pool_name, future.task_name)
        else:
            future.sent_to = None
        raise
    finally:
        del fn, args, kwargs
    future.sent_to = sent
    # Weakly: `sent` keeps its callbacks, and `future` keeps `sent`.
    sent.add_done_callback(functools.partial(_relay, runner, weakref.ref(future)))


def _relay(runner: Runner, task: weakref.ref[TaskFuture[Any]], sent: Future[Any]) -> None:
    future = task()
    if future is None:  # cannot be while it is in flight: the ledger holds it
        return
    if sent.cancelled():  # by the executor's shutdown(cancel_futures=True), or by us
        future.cancel_and_notify()
        runner.record(runner.ledger.cancelled, future, None)
        return
    if not runner.begin(future, None):
        return
    error = sent.exception()
    result = None if error is not None else sent.result()
    if result is not None and inspect.isawaitable(result):
        result, error = runner.hand_over(future, result, copy_context())
        if result is HANDED_OVER:
            return
    runner.conclude(future, result, error, None)
    del future, result, error  # a traceback keeps this frame: see Runner.run
