"""The FastAPI app that tests/fastapi/test_servers.py runs under real servers.

uvicorn and gunicorn load ``server_app:app``. Configuration comes from the environment
(see tests/servers/app_support.py):

- ``BACKGROUND_<OPTION>``: `background_core.Background` options for the adapter's
  lifespan, values parsed as JSON (``BACKGROUND_WORKERS=2``, ``BACKGROUND_DRAIN_TIMEOUT=1``);
- ``SERVER_APP_OUT``: the file each task appends ``"<pid> <i>\\n"`` to;
- ``SERVER_APP_FAIL_STARTUP``: if set, the app's own lifespan (which runs inside the
  adapter's) fires a task recorded as ``"<pid> startup"`` and then raises.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from app_support import background_config, hang_forever, record_after_a_while
from fastapi import FastAPI, Request

from fastapi_background import BackgroundDep, background_of, lifespan, pool

STARTUP_ERROR = "server_app: the app's own lifespan failed on purpose"


def _options() -> dict[str, Any]:
    return {
        key.removeprefix("BACKGROUND_").lower(): value for key, value in background_config().items()
    }


@asynccontextmanager
async def app_lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    """The app's own lifespan: the adapter's pool already runs here."""
    if os.environ.get("SERVER_APP_FAIL_STARTUP"):
        app.state.background.submit(record_after_a_while, "startup")
        raise RuntimeError(STARTUP_ERROR)
    yield {"app_lifespan": "ran"}


app = FastAPI(lifespan=lifespan(app_lifespan, **_options()))


@app.get("/fire/{i}")
async def fire(i: int, bg: BackgroundDep) -> dict[str, int]:
    bg.submit(record_after_a_while, str(i))
    return {"pid": os.getpid()}


@app.get("/hang")
async def hang(bg: BackgroundDep) -> list[dict[str, Any]]:
    """Fire the task that never ends; answer with its name and id once it runs."""
    future = bg.task(name="hang-forever")(hang_forever)()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not future.running():
        await asyncio.sleep(0.005)
    return [{"name": t.name, "id": t.id} for t in bg.running() if t.name == "hang-forever"]


@app.get("/state")
async def state(request: Request, bg: BackgroundDep) -> dict[str, Any]:
    """What the composed lifespans left on the app and in the request's state."""
    return {
        "pid": os.getpid(),
        "pool": bg.name,
        "workers": bg.workers,
        "drain_timeout": bg.drain_timeout,
        "on_app": bg is request.app.state.background,
        "background_of": bg is background_of(request),
        "app_lifespan": request.state.app_lifespan,
    }


@app.get("/ping")
async def ping() -> str:
    return "pong"


@app.get("/stats")
async def stats(bg: BackgroundDep) -> dict[str, Any]:
    return dataclasses.asdict(bg.stats())


# For servers that run no lifespan (daphne): a pool of the module's own, submitted to
# directly; it drains at the interpreter's exit.
module_pool = pool(name="module", workers=4, drain_timeout=5)


@app.get("/fire-module/{i}")
async def fire_module(i: int) -> dict[str, int]:
    module_pool.submit(record_after_a_while, str(i))
    return {"pid": os.getpid()}
