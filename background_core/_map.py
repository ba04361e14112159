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

from ._options import check_seconds

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
    chunksize: int,
) -> Iterator[R]:
    """Submit ``fn(*args)`` for each ``args`` of ``zip(*iterables)``; iterate the results.

    Raises:
        TypeError, ValueError: `timeout` is not seconds, or `chunksize` not an int >= 1.
    """
    end = None if timeout is None else time.monotonic() + check_seconds(timeout, "timeout")
    if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
        raise ValueError("chunksize must be an int >= 1 (threads take no chunks: leave it out)")
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
    except FuturesTimeout:
        future.cancel()
        raise MapTimeout("map() timed out waiting for a result") from None
    except BaseException:
        if not future.done():  # interrupted while it waited
            future.cancel()
        raise
    finally:
        del future  # the exception's traceback would hold it
