"""`lifespan()`: start a pool before the first request and drain it at shutdown.

Needs only Starlette. The drain happens here, in the lifespan: uvicorn re-raises SIGTERM
once the lifespan has finished, so no exit hook would run after it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import Executor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar, overload

import anyio.to_thread
from starlette.applications import Starlette

from background_core import (
    Background,
    PoolOptions,
    check_option,
    check_options,
    install_sigterm_handler,
    log_fields,
    warn_if_unguarded,
)

from ._pool import RETRY_AFTER, web_options

if TYPE_CHECKING:
    from typing_extensions import Unpack

logger = logging.getLogger("background")

AppT = TypeVar("AppT", bound=Starlette)
AppLifespan = Callable[[AppT], AbstractAsyncContextManager[Mapping[str, Any] | None]]
Lifespan = Callable[[AppT], AbstractAsyncContextManager[Mapping[str, Any]]]

STATE_KEY = "background"


@overload
def lifespan(
    app_lifespan: None = None,
    /,
    *,
    pool: Background | None = None,
    dask_scheduler: str | None = None,
    retry_after: int = RETRY_AFTER,
    sigterm_handler: bool = False,
    otel: bool = False,
    **options: Unpack[PoolOptions],
) -> Lifespan[Starlette]: ...
@overload
def lifespan(
    app_lifespan: AppLifespan[AppT],
    /,
    *,
    pool: Background | None = None,
    dask_scheduler: str | None = None,
    retry_after: int = RETRY_AFTER,
    sigterm_handler: bool = False,
    otel: bool = False,
    **options: Unpack[PoolOptions],
) -> Lifespan[AppT]: ...
def lifespan(
    app_lifespan: AppLifespan[Any] | None = None,
    /,
    *,
    pool: Background | None = None,
    dask_scheduler: str | None = None,
    retry_after: int = RETRY_AFTER,
    sigterm_handler: bool = False,
    otel: bool = False,
    **options: Unpack[PoolOptions],
) -> Lifespan[Any]:
    """A lifespan that runs a background pool with the app: ``FastAPI(lifespan=lifespan())``.

    Args:
        app_lifespan: The app's own lifespan; it runs inside ours (the pool already
            works in it), and the state it yields is merged with ours.
        pool: A pool made elsewhere (say at module level, for ``@bg.task``). It is
            drained at shutdown and left open, so the app can start again (tests).
            Without it, each start makes a pool from `options` and shuts it down at the
            end.
        dask_scheduler: Run the pool's tasks on the Dask cluster whose scheduler is at
            this address (``"tcp://127.0.0.1:8786"``; needs ``background[dask]``). The
            lifespan connects at startup (which fails if no scheduler answers within 10 s)
            and closes the connection at shutdown. Tasks must then be module-level.
        retry_after: Seconds a 503 for a full queue asks the client to wait.
        sigterm_handler: At startup, install `background_core.install_sigterm_handler()`,
            for servers whose processes do not handle SIGTERM (hypercorn's workers): a
            SIGTERM then drains the pool before the process ends. Without it, the
            lifespan logs a WARNING where it can tell that tasks would be lost.
        otel: At startup, trace and measure every pool's tasks with OpenTelemetry
            (`background_core.otel.instrument()`, process-wide, through its global
            providers; needs ``background[otel]``).
        **options: `background_core.Background` options, when no `pool` is given. The
            defaults are a web app's (see `pool()`): name "app", at most 10,000 tasks
            waiting, a full queue refused at once (the handler answers 503), a drain of
            at most 25 s.

    The pool is on ``app.state.background`` and in the lifespan state
    (``request.state.background``, what `get_background` returns). Shutdown drains it
    for at most its ``drain_timeout``, off the event loop, and logs each task that did not
    finish by name and id.

    Raises:
        TypeError: Both `pool` and `options` (or `dask_scheduler`) were given, or both
            `executor` and `dask_scheduler`, or an option is wrong.
        ImportError: `dask_scheduler` was given but Dask's distributed is not installed.
        ValueError: An option's value is wrong.
    """
    check_option("eager", sigterm_handler, "sigterm_handler")  # True or False
    check_option("eager", otel, "otel")
    if otel:
        _check_otel()
    if pool is not None and (options or dask_scheduler is not None):
        given = sorted([*options, *(["dask_scheduler"] if dask_scheduler is not None else [])])
        raise TypeError(
            "lifespan() takes either pool= or Background options, not both: "
            f"configure the pool itself instead of passing {given}"
        )
    if dask_scheduler is not None:
        if options.get("executor") is not None:
            raise TypeError("lifespan() takes executor= or dask_scheduler=, not both")
        _check_dask_scheduler(dask_scheduler)
    settings = web_options(retry_after, {"name": "app", **options})
    check_options(settings)  # now, not at startup

    @asynccontextmanager
    async def run(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        owned = pool is None
        if pool is not None:
            bg = pool
        elif dask_scheduler is None:
            bg = Background(**settings)
        else:
            executor = await _connect(dask_scheduler)
            on_cluster: PoolOptions = {**settings, "executor": executor, "own_executor": True}
            bg = Background(**on_cluster)
        try:
            if otel:
                _instrument()
            bg.start()
            _guard_sigterm(bg, sigterm_handler)
            app.state.background = bg
            if app_lifespan is None:
                yield {STATE_KEY: bg}
            else:
                async with app_lifespan(app) as app_state:
                    if app_state and STATE_KEY in app_state:
                        raise RuntimeError(
                            f"the app's own lifespan yields a state key {STATE_KEY!r}, "
                            "which the background lifespan uses for its pool: rename it."
                        )
                    yield {**(app_state or {}), STATE_KEY: bg}
        finally:
            await anyio.to_thread.run_sync(_stop, bg, owned)

    return run


def _guard_sigterm(bg: Background, install: bool) -> None:
    """Install the SIGTERM handler if asked; else warn if the server would lose tasks."""
    if install:
        install_sigterm_handler()  # raises RuntimeError off the main thread, saying so
    else:
        warn_if_unguarded(bg.name, "Pass lifespan(sigterm_handler=True)")


def _check_otel() -> None:
    # Imported here, not at the top: OpenTelemetry is an optional extra (the ImportError
    # says so).
    import background_core.otel  # noqa: F401, PLC0415


def _instrument() -> None:
    from background_core.otel import instrument  # noqa: PLC0415  (checked at lifespan())

    instrument()


def _check_dask_scheduler(address: str) -> None:
    # Imported here, not at the top: Dask is an optional extra (the ImportError says so).
    from background_core.dask import check_address  # noqa: PLC0415

    check_address(address, "dask_scheduler")


async def _connect(address: str) -> Executor:
    """An executor of the cluster at `address`, connected off the event loop."""
    from background_core.dask import dask_executor  # noqa: PLC0415  (checked at lifespan())

    executor = dask_executor(address)
    await anyio.to_thread.run_sync(lambda: executor.client)  # raises ClusterError if unanswered
    return executor


def _stop(bg: Background, owned: bool) -> None:
    if owned:
        bg.shutdown()  # logs what did not finish
        return
    report = bg.drain()
    if report.unfinished:
        logger.warning(
            "pool %r: %s, at the end of the app's lifespan (the pool stays open)",
            bg.name,
            report.summary(),
            extra=log_fields(bg.name, unfinished=report.unfinished),
        )
