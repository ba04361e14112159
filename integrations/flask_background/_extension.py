"""`Background`: the Flask extension. One `background_core.Background` pool per app.

The extension object holds no app: each app's pool lives in ``app.extensions`` and the
apps it serves in a weak set, so one object serves app factories and tests alike.
"""

from __future__ import annotations

import difflib
import functools
import logging
import weakref
from collections.abc import Callable, Coroutine, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar, overload

from flask import Flask, current_app

import background_core
from background_core import ErrorHook, TaskMaker, check_count, check_option, log_fields

from ._context import APP_CONTEXT, FLASK_CONTEXTVARS, task_context
from ._errors import QueueFullError

P = ParamSpec("P")
R = TypeVar("R")

# Config key suffix -> (Background option, default). The prefix is the extension's.
# The defaults shed load rather than stall a request: a full queue answers 503 at once.
_OPTIONS: dict[str, tuple[str, object]] = {
    "WORKERS": ("workers", None),
    "MAX_QUEUE": ("max_queue", 10_000),
    "ON_FULL": ("on_full", "raise"),
    # With "block": well under gunicorn's --timeout (30 s), after which it kills the worker.
    "BLOCK_TIMEOUT": ("block_timeout", 1.0),
    # Below gunicorn's default --graceful-timeout (30 s), after which it kills workers.
    "DRAIN_TIMEOUT": ("drain_timeout", 25.0),
    "EAGER": ("eager", False),
}
_SWITCHES = ("COPY_REQUEST", "SIGTERM_HANDLER", "OTEL")  # booleans the extension reads
_OTHERS = ("RETRY_AFTER", "DASK_SCHEDULER")
_SUFFIXES = (*_OPTIONS, *_SWITCHES, *_OTHERS)
# Words that make a misspelt setting (BACKGROUND_MAX_WORKERS), not a pool's name.
_NOT_POOL_NAMES = {"MAX", "MIN", "NUM", "NUMBER", "THREAD", "THREADS", "POOL", "QUEUE", "DEFAULT"}
RETRY_AFTER = 1
"""Seconds a 503 for a full queue tells the client to wait (its ``Retry-After``)."""

logger = logging.getLogger("background")


class Background(Executor):
    """Run functions in background threads from Flask handlers and CLI commands.

    ``Background(app)`` or ``bg = Background()`` then ``bg.init_app(app)``. Tasks run
    inside a fresh app context of the app that submitted them. It is a
    `concurrent.futures.Executor` (as Flask-Executor's is): ``submit``, ``map`` and
    ``shutdown`` act on the current app's pool (`pool`), itself an Executor.

    Args:
        app: The app to serve now; more can be added with `init_app`.
        name: Names a second pool (``"email"``): it is stored at
            ``app.extensions["background.email"]`` and configured with
            ``BACKGROUND_EMAIL_*`` keys. The default pool is ``app.extensions["background"]``
            with ``BACKGROUND_*`` keys.
        on_error: Called with a failed task's exception and `TaskInfo` (report to an
            error tracker, say); the default logs it at ERROR on logger "background".
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        name: str = "default",
        on_error: ErrorHook | None = None,
    ) -> None:
        check_option("name", name)
        if on_error is not None and not callable(on_error):
            raise TypeError(f"on_error must be callable, got {type(on_error).__name__}")
        self.name = name
        self._on_error = on_error
        if name == "default":
            self.extension_key = "background"
            self.config_prefix = "BACKGROUND"
        else:
            self.extension_key = f"background.{name}"
            self.config_prefix = f"BACKGROUND_{name.upper().replace('-', '_').replace('.', '_')}"
        self._apps: weakref.WeakSet[Flask] = weakref.WeakSet()
        self.task = TaskMaker(self._pool_now)
        """Decorate a function so each call runs it on the current app's pool.

        Usable at module level before any app exists; the pool is found at each call
        (see `pool`). A call returns a `concurrent.futures.Future` at once.
        """
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Read the app's configuration once and make its pool.

        The pool's workers start when the first task is submitted, in the process that
        serves (after gunicorn forks, or in the reloader's child).

        Raises:
            RuntimeError: The extension is already registered on `app`.
            TypeError, ValueError: A configuration value is wrong; the message names the key.
        """
        if self.extension_key in app.extensions:
            raise RuntimeError(
                f"app {app.name!r} already has app.extensions[{self.extension_key!r}]: "
                "call init_app once per app, and reuse that extension instance everywhere."
            )
        options: dict[str, Any] = {}
        for suffix, (option, default) in _OPTIONS.items():
            key = f"{self.config_prefix}_{suffix}"
            value = app.config.setdefault(key, default)
            check_option(option, value, key)
            options[option] = value
        switches = {}
        for suffix in _SWITCHES:
            key = f"{self.config_prefix}_{suffix}"
            value = app.config.setdefault(key, False)
            check_option("eager", value, key)  # the same rule: True or False
            switches[suffix] = value
        retry_key = f"{self.config_prefix}_RETRY_AFTER"
        retry_after = app.config.setdefault(retry_key, RETRY_AFTER)
        check_count(retry_after, retry_key)
        pool_name = app.name if self.name == "default" else f"{app.name}.{self.name}"
        self._warn_of_unknown_keys(app, pool_name)
        if switches["OTEL"]:  # before the Dask client: it fails first if not installed
            _instrument()
        scheduler_key = f"{self.config_prefix}_DASK_SCHEDULER"
        scheduler = app.config.setdefault(scheduler_key, None)
        if scheduler is not None:
            options["executor"] = _dask_executor(scheduler, scheduler_key)
            options["own_executor"] = True  # its client closes when the pool shuts down
        if switches["SIGTERM_HANDLER"]:
            background_core.install_sigterm_handler()  # raises off the main thread
        else:
            fix = f"Set {self.config_prefix}_SIGTERM_HANDLER = True"
            background_core.warn_if_unguarded(pool_name, fix)
        pool = background_core.Background(
            name=pool_name,
            on_error=self._on_error,
            capturer=task_context(app, copy_request=switches["COPY_REQUEST"]),
            exclude_contextvars=FLASK_CONTEXTVARS,
            queue_full_error=functools.partial(QueueFullError, retry_after=retry_after),
            **options,
        )
        app.extensions[self.extension_key] = pool
        self._apps.add(app)
        # Flask has no app teardown: stop the workers once the app is collected (tests).
        # Not at interpreter exit, where the engine's drain must run first.
        weakref.finalize(app, pool.shutdown, timeout=0).atexit = False

    def _warn_of_unknown_keys(self, app: Flask, pool_name: str) -> None:
        """Log each config key that looks like a misspelt one of ours (``..._WORKER``),
        as a record of the pool it would configure, `pool_name`."""
        known = {f"{self.config_prefix}_{suffix}" for suffix in _SUFFIXES}
        for key in app.config:
            if key in known or not key.startswith(self.config_prefix + "_"):
                continue
            if self.name == "default" and self._named_pools_key(key):
                continue  # BACKGROUND_EMAIL_WORKERS: a named pool's, not a misspelling
            # Compared without the prefix, which every key shares (COLOR is not OTEL).
            suffix = key.removeprefix(self.config_prefix + "_")
            match = difflib.get_close_matches(suffix, _SUFFIXES, n=1, cutoff=0.75)
            if match:
                logger.warning(
                    "app %r sets %s, which is not a background setting and is ignored: "
                    "did you mean %s?",
                    app.name,
                    key,
                    f"{self.config_prefix}_{match[0]}",
                    extra=log_fields(pool_name),
                )

    def _named_pools_key(self, key: str) -> bool:
        """True if `key` reads as a setting of a named pool, ``BACKGROUND_<NAME>_<SETTING>``
        (not ``BACKGROUND_MAX_WORKERS``: ``MAX`` and the like name no pool)."""
        for suffix in _SUFFIXES:
            name = key.removeprefix(self.config_prefix + "_").removesuffix("_" + suffix)
            if key.endswith("_" + suffix) and name and name not in _NOT_POOL_NAMES:
                return True
        return False

    # -- finding the pool --------------------------------------------------------------

    @property
    def pool(self) -> background_core.Background:
        """The pool of the current app, or of the only app served outside an app context.

        Raises:
            RuntimeError: No pool can be chosen; the message says what to do.
        """
        try:  # one look-up, not has_app_context() and then current_app: every submit
            app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        except RuntimeError:  # outside an app context
            pass
        else:
            try:
                pool: background_core.Background = app.extensions[self.extension_key]
            except KeyError:
                raise RuntimeError(
                    f"app {app.name!r} has no app.extensions[{self.extension_key!r}]: "
                    "call init_app(app) on this extension when you create the app."
                ) from None
            return pool
        apps = [app for app in self._apps if not app.extensions[self.extension_key].closed]
        if len(apps) == 1:
            only: background_core.Background = apps[0].extensions[self.extension_key]
            return only
        if not apps:
            raise RuntimeError(
                "this background extension serves no app yet: call init_app(app) "
                "(or Background(app)) before submitting tasks."
            )
        raise RuntimeError(
            f"this background extension serves {len(apps)} apps and no app context is "
            "active, so it cannot tell which app's pool to use: submit inside "
            "`with app.app_context():`, or from a request or CLI command."
        )

    # -- submitting --------------------------------------------------------------------

    def _pool_now(self) -> background_core.Background:
        """`pool`, what each call of a task looks up: straight from the current app
        context's app when it has our pool (a request, a CLI command), else `pool`'s rules."""
        if APP_CONTEXT is not None:  # read directly: see _context.APP_CONTEXT
            context = APP_CONTEXT.get(None)
            if context is not None:
                pool = context.app.extensions.get(self.extension_key)
                if pool is not None:
                    return pool  # type: ignore[no-any-return]
        return self.pool

    @overload
    def submit(
        self, fn: Callable[P, Coroutine[Any, Any, R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[R]: ...
    @overload
    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]: ...
    def submit(self, fn: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` on the current app's pool; return its Future."""
        return self.pool.submit(fn, *args, **kwargs)

    def map(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[R]:
        """``map`` on the current app's pool: results in order (see `Background.map`)."""
        return self.pool.map(fn, *iterables, timeout=timeout, chunksize=chunksize)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut the current app's pool down, as `background_core.Background.shutdown`.

        The app's pool also shuts down at interpreter exit and when the app is collected.
        """
        self.pool.shutdown(wait, cancel_futures=cancel_futures)

    def __repr__(self) -> str:
        return f"<flask_background.Background {self.extension_key!r}>"


def _instrument() -> None:
    """Trace and measure every pool's tasks (process-wide), through OpenTelemetry's
    global providers."""
    # Imported here, not at the top: OpenTelemetry is an optional extra (the ImportError
    # says so).
    from background_core.otel import instrument  # noqa: PLC0415

    instrument()


def _dask_executor(address: object, key: str) -> Executor:
    """An executor that connects to the scheduler at `address` on first use.

    Lazily: `init_app` runs before gunicorn forks (``--preload``) and in the reloader's
    parent, where a connection would be wasted or broken; the workers connect instead.
    """
    # Imported here, not at the top: Dask is an optional extra (the ImportError says so).
    from background_core.dask import check_address, dask_executor  # noqa: PLC0415

    return dask_executor(check_address(address, key))
