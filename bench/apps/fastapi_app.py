"""The FastAPI app served by uvicorn; ``BENCH_CONTENDER`` picks what ``/fire`` fires.

- ``/ping`` (``def``): answers at once; the endpoint whose latency isolation measures;
- ``/fire`` (``async def``): fires one task, as the handler-cost and shutdown sections do;
- ``/fire-def`` (``def``): fires one sync task from a sync endpoint, as isolation does.

- ``/nothing`` (``async def``): the same endpoint firing nothing, on every contender's server;
- ``/pid``: the serving worker process's id (a server of several workers is ready when each
  has answered).

Contenders: ``nothing`` (fires no task), ``ours`` (`fastapi_background`'s ``BackgroundDep``,
`WORKERS` threads), ``ours-task`` (a ``@bg.task`` function of a module-level pool handed to
``lifespan(pool=bg)``: no dependency; its server also has ``/fire-dep``, which fires the same
task on the same pool through ``BackgroundDep``, so the two are measured side by side, and
``/fire-const``, the ``@task`` call with one async dependency that returns a constant:
FastAPI's own cost of a dependency),
``tasks-sync`` and ``tasks-async`` (FastAPI's ``BackgroundTasks`` with a sync or an async
task), ``executor`` (a module-level ``ThreadPoolExecutor(WORKERS)``, never shut down).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, FastAPI

from background_core import Background
from bench.apps import CONTENDER, WORKERS, async_sleep_task, sleep_task
from fastapi_background import BackgroundDep, lifespan

Answer = dict[str, bool]
OK: Answer = {"ok": True}


def _ours() -> tuple[Callable[..., Any], Callable[..., Any]]:
    async def fire(bg: BackgroundDep) -> Answer:
        bg.submit(sleep_task)
        return OK

    def fire_def(bg: BackgroundDep) -> Answer:
        bg.submit(sleep_task)
        return OK

    return fire, fire_def


def _tasks(task: Callable[[], Any]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    async def fire(tasks: BackgroundTasks) -> Answer:
        tasks.add_task(task)
        return OK

    def fire_def(tasks: BackgroundTasks) -> Answer:
        tasks.add_task(task)
        return OK

    return fire, fire_def


def _plain(fire_one: Callable[[], object]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Endpoints that need nothing injected: they call `fire_one()`."""

    async def fire() -> Answer:
        fire_one()
        return OK

    def fire_def() -> Answer:
        fire_one()
        return OK

    return fire, fire_def


async def _one() -> int:
    return 1


def _with_constant(fire_one: Callable[[], object]) -> Callable[..., Any]:
    """An endpoint that fires like ``/fire`` with one async dependency that returns a
    constant: FastAPI's own cost of resolving a dependency, beside ``/fire-dep``."""

    async def fire(one: Annotated[int, Depends(_one)]) -> Answer:
        fire_one()
        return OK

    return fire


CONTENDERS = {
    "nothing": lambda: _plain(lambda: None),
    "ours": _ours,
    "ours-task": lambda: _plain(POOL.task(sleep_task)),
    "tasks-sync": lambda: _tasks(sleep_task),
    "tasks-async": lambda: _tasks(async_sleep_task),
    "executor": lambda: _plain(functools.partial(ThreadPoolExecutor(WORKERS).submit, sleep_task)),
}

POOL = Background(WORKERS, name="bench")
if CONTENDER == "ours":
    # No bound on the queue, as the others have none: every request fires its task.
    app = FastAPI(lifespan=lifespan(workers=WORKERS, max_queue=None))
elif CONTENDER == "ours-task":
    app = FastAPI(lifespan=lifespan(pool=POOL))
else:
    app = FastAPI()
_fire, _fire_def = CONTENDERS[CONTENDER]()
app.get("/fire")(_fire)
app.get("/fire-def")(_fire_def)
if CONTENDER == "ours-task":
    app.get("/fire-dep")(_ours()[0])
    app.get("/fire-const")(_with_constant(POOL.task(sleep_task)))


@app.get("/nothing")
async def nothing() -> Answer:
    return OK


@app.get("/ping")
def ping() -> Answer:
    return OK


@app.get("/pid")
async def pid() -> dict[str, int]:
    return {"pid": os.getpid()}
