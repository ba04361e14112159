"""`map` for a pool: every call submitted at once, the results yielded in order.

The stdlib's semantics, on every Python: a deadline counted from the call, after which
the iterator raises `TimeoutError` and cancels what has not started; leaving the iterator
early cancels the calls not started. The iterator holds the futures, never the pool, and
drops each future (and its result) as soon as it has yielded it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Any, TypeVar

R = TypeVar("R")

if issubclass(FuturesTimeout, TimeoutError):  # Python 3.11+: one class
    MapTimeout = TimeoutError
else:

    class MapTimeout(FuturesTimeout, TimeoutError):  # type: ignore[no-redef]
        """`map`'s timeout on Python 3.10: both the builtin and `concurrent.futures`'."""


def map_in_order(
    submit: Callable[..., Future[R]],
    fn: Callable[..., R],
    iterables: tuple[Iterable[Any], ...],
    timeout: float | None,
) -> Iterator[R]:
    """Submit ``fn(*args)`` for each ``args`` of ``zip(*iterables)``; iterate the results.

    Raises:
        TypeError: `timeout` is not a number of seconds.
    """
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))):
        raise TypeError(
            f"timeout must be a number of seconds or None, got {type(timeout).__name__}"
        )
    end = None if timeout is None else time.monotonic() + timeout  # past already: at once
    futures = [submit(fn, *args) for args in zip(*iterables, strict=False)]
    return _in_order(futures, end)


def _in_order(futures: list[Future[R]], end: float | None) -> Iterator[R]:
    futures.reverse()
    try:
        while futures:
            yield _result(futures.pop(), end)  # no name in this frame holds the future
    finally:
        for future in futures:
            future.cancel()


def _result(future: Future[R], end: float | None) -> R:
    """`future`'s result by `end`; cancelled if the wait ends first."""
    try:
        return future.result(None if end is None else end - time.monotonic())
    except FuturesTimeout as error:
        if future.done() and not future.cancelled() and future.exception() is error:
            raise  # the task's own TimeoutError (a socket's, say): not the wait's
        future.cancel()
        raise MapTimeout("map() timed out waiting for a result") from None
    except BaseException:
        if not future.done():  # interrupted while it waited
            future.cancel()
        raise
    finally:
        del future  # the exception's traceback would hold it
