"""Process exit: drain every running pool at interpreter exit and on SIGTERM.

At exit an `atexit` hook drains each pool whose shutdown has not finished (open ones, and
those shut down with ``wait=False``) for at most its ``drain_timeout`` while its daemon
workers still live, then shuts it down; tasks still unfinished are logged, and the
process exits even if one hangs forever. A plain SIGTERM runs no exit hook at all, so
`install_sigterm_handler()` (opt-in) drains first and then ends the process as SIGTERM would.
All pools' deadlines count from the first exit request: a drain at SIGTERM followed by
one at exit never waits twice (a SIGTERM means the process is to end soon).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

from ._future import in_critical_section as futures_locked
from ._pool import Background, running_pools
from ._report import log_fields

logger = logging.getLogger("background")

_exit_began: float | None = None
_previous_handler: Any = None


def _deadlines() -> list[tuple[Background, float]]:
    """Each running pool with its deadline, counted from the first exit request."""
    global _exit_began
    if _exit_began is None:
        _exit_began = time.monotonic()
    return [(pool, _exit_began + pool.drain_timeout) for pool in running_pools()]


def drain_open_pools() -> None:
    """Drain each running pool until its deadline; close nothing (the process goes on)."""
    for pool, deadline in _deadlines():
        pool.drain(max(0.0, deadline - time.monotonic()))


def shutdown_open_pools() -> None:
    """Drain each running pool until its deadline, then shut it down, logging what is left.

    Pools stay open while others drain: tasks may still submit follow-ups.
    """
    deadlines = _deadlines()
    for pool, deadline in deadlines:
        pool.drain(max(0.0, deadline - time.monotonic()))
    for pool, deadline in deadlines:
        try:
            pool.shutdown(timeout=max(0.0, deadline - time.monotonic()))
        except BaseException:  # one pool's trouble must not keep the others from stopping
            logger.exception(
                "shutting down pool %r at exit failed", pool.name, extra=log_fields(pool.name)
            )


atexit.register(shutdown_open_pools)


def _at_thread_shutdown() -> None:
    """threading's own exit hook (where the stdlib drains its thread pools): in a
    `multiprocessing` child, the only one that runs, as the child ends by ``os._exit``.

    Servers whose workers are such children (granian's WSGI workers, hypercorn's) would
    otherwise end them with every queued task lost. In any other process the `atexit`
    hook drains, once the last non-daemon thread has ended.
    """
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is not None and multiprocessing.parent_process() is not None:
        shutdown_open_pools()


# A private hook of the stdlib's (concurrent.futures.thread uses it too); where it is
# missing, multiprocessing children are left to the SIGTERM handler.
_register_at_thread_shutdown = getattr(threading, "_register_atexit", None)
if _register_at_thread_shutdown is not None:
    _register_at_thread_shutdown(_at_thread_shutdown)


def _reset_in_child() -> None:
    global _exit_began
    _exit_began = None


os.register_at_fork(after_in_child=_reset_in_child)


def install_sigterm_handler() -> None:
    """On SIGTERM, drain every running pool within its deadline, then go on as SIGTERM would.

    If a Python handler was installed before, it is called next (a server's graceful
    shutdown, say); otherwise the process ends by SIGTERM, like it would have without
    this handler. If SIGTERM was ignored, it stays ignored. Idempotent. Must be called
    from the main thread.

    Raises:
        RuntimeError: Called from a thread other than the main thread.
    """
    global _previous_handler
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError(
            "install_sigterm_handler() must be called from the main thread: "
            "Python lets only the main thread set signal handlers."
        )
    current = signal.getsignal(signal.SIGTERM)
    if current is _on_sigterm:
        return
    _previous_handler = current
    signal.signal(signal.SIGTERM, _on_sigterm)


def _interrupted_a_pool() -> bool:
    """True if the main thread, which this handler interrupted, holds a pool's lock (or a
    future's, which a pool's cancel may need)."""
    return futures_locked() or any(pool.in_critical_section() for pool in running_pools())


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    previous = _previous_handler
    if previous == signal.SIG_IGN:
        return
    if _interrupted_a_pool():
        # Mid-submission: draining now would wait for a task not yet queued, and let other
        # threads into the interrupted critical section. Deliver the signal again shortly.
        retry = threading.Timer(0.05, os.kill, (os.getpid(), signum))
        retry.daemon = True
        retry.start()
        return
    if callable(previous):
        # The process goes on for now: pools stay open, the exit hook logs what is left.
        drain_open_pools()
        previous(signum, frame)
        return
    shutdown_open_pools()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
    os._exit(128 + signal.SIGTERM)  # not reached: the default action ends the process
