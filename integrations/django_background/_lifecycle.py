"""Starting and stopping the backends' pools with the server, and SIGTERM.

A pool starts at its backend's first use, in the process that serves: after gunicorn
forks its workers, in the autoreloader's child. It drains at the interpreter's exit
(gunicorn's workers, ``runserver``), at the end of an ASGI lifespan (`lifespan`: uvicorn
ends the process by SIGTERM after it, so no exit hook would run), or on SIGTERM where the
server installs no handler (``runserver --noreload``), with ``BACKGROUND_SIGTERM_HANDLER``.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time

from django.core.exceptions import ImproperlyConfigured

from background_core import Background, install_sigterm_handler, log_fields, warn_if_unguarded

from ._backend import BackgroundBackend, every_shared
from ._compat import task_backends
from ._options import read_options
from ._settings import SIGTERM_SETTING, sigterm_handler_wanted

logger = logging.getLogger("background")

FIX = f"Set {SIGTERM_SETTING} = True in settings"


def backends() -> list[BackgroundBackend]:
    """This thread's objects of every backend of ours in ``TASKS``."""
    return [backend for backend in task_backends.all() if isinstance(backend, BackgroundBackend)]


def start_pools() -> None:
    """Make and start the pool of every backend of ours now, not at its first use.

    Raises:
        ImproperlyConfigured: A backend's ``OPTIONS`` has a wrong key or value.
    """
    for backend in backends():
        backend.pool.start()


def shutdown_pools() -> None:
    """Drain every pool the backends made, then shut each down (logging what did not
    finish), all within their ``drain_timeout`` counted from now, as the exit hook does.

    The pools stay open while any drains, so a task may still enqueue a follow-up. Each
    backend makes a new pool at its next use: a lifespan may start again (tests).
    """
    began = time.monotonic()
    made = [(shared, pool) for shared in every_shared() if (pool := shared.made) is not None]
    for _, pool in made:
        pool.drain(_left(began, pool))
    for shared, pool in made:
        try:
            pool.shutdown(timeout=_left(began, pool))
        except BaseException:  # one pool's trouble must not keep the others from stopping
            logger.exception("shutting down pool %r failed", pool.name, extra=log_fields(pool.name))
        shared.forget(pool)


def _left(began: float, pool: Background) -> float:
    return max(0.0, began + pool.drain_timeout - time.monotonic())


def guard_sigterm() -> None:
    """At startup (`BackgroundConfig.ready`): install the SIGTERM handler if the settings
    ask for it; otherwise warn if this server would end the process at once on SIGTERM.

    Raises:
        ImproperlyConfigured: ``BACKGROUND_SIGTERM_HANDLER`` is not True or False, or is
            True and Django was set up off the main thread.
    """
    if sigterm_handler_wanted():
        try:
            install_sigterm_handler()
        except RuntimeError as error:  # off the main thread: it says so
            raise ImproperlyConfigured(f"{SIGTERM_SETTING} = True: {error}") from error
        return
    for name in pool_names():
        if not warn_if_unguarded(name, FIX) and _runserver_without_handler():
            logger.warning(
                "manage.py runserver --noreload installs no SIGTERM handler: a SIGTERM "
                "would end this process at once, with the tasks still queued in pool %r "
                "lost. %s to drain them first.",
                name,
                FIX,
                extra=log_fields(name),
            )


def pool_names() -> list[str]:
    """The names of our backends' pools, from their ``OPTIONS``, making no pool (a wrong
    one is left to Django's checks)."""
    configs = (read_options(backend.alias, backend.options)[0] for backend in backends())
    return [config.pool_options()["name"] for config in configs if config is not None]


def _runserver_without_handler() -> bool:
    """``manage.py runserver --noreload``, with SIGTERM's default action (the autoreloader
    handles SIGTERM with ``sys.exit``, whose exit hook drains)."""
    return (
        sys.argv[1:2] == ["runserver"]
        and "--noreload" in sys.argv
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    )
