"""What the lazy futures rest on (see `_future`): whether the stdlib's `Future` is the one
they know (`LAZY`), and `SETTLED`, what a future that finished (or that a shutdown
cancelled) before anything looked at it gets as its condition, waiter list and callback
list."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

_EXPECTED = {"_condition", "_state", "_result", "_exception", "_waiters", "_done_callbacks"}
LAZY_NAMES = frozenset({"_condition", "_waiters", "_done_callbacks"})


def _stdlib_future_matches() -> bool:
    probe: Future[None] = Future()
    return set(vars(probe)) == _EXPECTED and callable(getattr(probe, "_invoke_callbacks", None))


LAZY = (
    _stdlib_future_matches()
    and os.environ.get("BACKGROUND_EAGER_FUTURES") != "1"
    and getattr(sys, "_is_gil_enabled", lambda: True)()  # the GIL orders them: see _future
)
"""Whether futures build their condition lazily (see `_future`)."""


class Settled:
    """The condition, waiter list and callback list of a future that finished (or was
    cancelled and notified) before anything needed them: such a future never changes
    again (`set_result` and the like refuse it), so locking, waiting and notifying have
    nothing to do, and a waiter that ``wait()`` adds to it would never be told anything.
    One shared instance."""

    __slots__ = ()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return True

    def release(self) -> None:
        pass

    def __enter__(self) -> bool:
        return True

    def __exit__(self, *exc_info: object) -> None:
        pass

    def wait(self, timeout: float | None = None) -> bool:
        return True  # what it would wait for happened: the future finished

    def wait_for(self, predicate: Callable[[], Any], timeout: float | None = None) -> Any:
        return predicate()

    def notify(self, n: int = 1) -> None:
        pass

    def notify_all(self) -> None:
        pass

    def append(self, item: object) -> None:
        pass

    def remove(self, item: object) -> None:
        pass

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __len__(self) -> int:
        return 0


SETTLED: Any = Settled()
