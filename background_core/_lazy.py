"""What the lazy futures share (see `_future`): the locks that guard their lazily built
condition, and `SETTLED`, what a future that finished before anything looked at it gets as
its condition, waiter list and callback list."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

_STRIPES = 64  # a power of two


def _new_locks() -> tuple[threading.RLock, ...]:
    return tuple(threading.RLock() for _ in range(_STRIPES))


# A future's lock guards a few attribute stores (never a call, an allocation or a wait),
# so futures share these: a lock of its own per future would be one more object per task
# for the garbage collector to walk. Reentrant, for a signal handler that interrupts one
# (see `in_critical_section`).
locks = _new_locks()


def lock_for(key: int) -> threading.RLock:
    """The lock of the future whose ``id()`` is `key`."""
    return locks[(key >> 4) & (_STRIPES - 1)]


def in_critical_section() -> bool:
    """True if the current thread holds a future's lock: only a signal handler that
    interrupted it sees that. Falls back to False where RLock has no `_is_owned`."""
    return any(getattr(lock, "_is_owned", bool)() for lock in locks)


def _reset_in_child() -> None:
    global locks
    locks = _new_locks()  # a parent's thread may have held one at fork()


os.register_at_fork(after_in_child=_reset_in_child)


class Settled:
    """The condition, waiter list and callback list of a future that finished before
    anything needed them: a finished future never changes again (`set_result` and the
    like refuse it), so locking, waiting and notifying have nothing to do, and a waiter
    that ``wait()`` adds to it would never be told anything. One shared instance."""

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
