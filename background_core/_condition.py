"""`new_condition`: the condition a lazy future builds when something needs it (see
`_future`) while it is still pending: ``wait()`` and ``as_completed()`` over many futures
kept by the caller build one per future not yet done.

`threading.Condition` is a Python object with six attributes, five of them bound methods,
and a deque: about 1.5 µs and eight objects for the garbage collector per future. This one
is the same algorithm over the same reentrant lock, with two slots, and a waiter list made
only when a thread waits: about a tenth of the cost. It relies on the RLock's
``_release_save``, ``_acquire_restore`` and ``_is_owned``, present from CPython 3.10 to
3.13, which `threading.Condition` itself uses; where they are missing, futures get a
`threading.Condition`.
"""

from __future__ import annotations

import threading
from _thread import allocate_lock
from typing import Any


class Condition:
    """`threading.Condition` over its own RLock, as futures use it (``with``, `acquire`,
    `release`, `wait`, `notify`, `notify_all`)."""

    __slots__ = ("_lock", "_waiters")

    def __init__(self) -> None:
        self._lock: Any = threading.RLock()
        self._waiters: list[Any] | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return bool(self._lock.acquire(blocking, timeout))

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return bool(self._lock.acquire())

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        """As `threading.Condition.wait`."""
        lock = self._lock
        if not lock._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        waiter = allocate_lock()
        waiter.acquire()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        saved = lock._release_save()
        got = False
        try:  # restore the lock whatever happens (KeyboardInterrupt, say)
            if timeout is None:
                got = waiter.acquire()
            elif timeout > 0:
                got = waiter.acquire(True, timeout)
            else:
                got = waiter.acquire(False)
            return got
        finally:
            lock._acquire_restore(saved)
            if not got and waiter in self._waiters:  # under the lock again: no race
                self._waiters.remove(waiter)

    def notify(self, n: int = 1) -> None:
        """As `threading.Condition.notify`."""
        if not self._lock._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        waiters = self._waiters
        while waiters and n > 0:
            waiter = waiters[0]
            try:
                waiter.release()
            except RuntimeError:  # it timed out meanwhile
                pass
            else:
                n -= 1
            if waiter in waiters:
                waiters.remove(waiter)

    def notify_all(self) -> None:
        """As `threading.Condition.notify_all`."""
        if self._waiters or not self._lock._is_owned():
            self.notify(len(self._waiters or ()))


def _rlock_has_internals() -> bool:
    probe = threading.RLock()
    return all(hasattr(probe, name) for name in ("_release_save", "_acquire_restore", "_is_owned"))


LIGHT = _rlock_has_internals()

new_condition: Any = Condition if LIGHT else threading.Condition
"""A condition for a pending future: this module's, or `threading.Condition`."""
