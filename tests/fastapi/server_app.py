"""The FastAPI app that tests/fastapi/test_servers.py runs under real servers.

uvicorn and gunicorn load ``server_app:app``. Configuration comes from the environment:

- ``BACKGROUND_<OPTION>``: `background_core.Background` options for the adapter's
  lifespan, values parsed as JSON (``BACKGROUND_WORKERS=2``, ``BACKGROUND_DRAIN_TIMEOUT=1``);
- ``SERVER_APP_OUT``: the file each task appends ``"<pid> <i>\\n"`` to;
- ``SERVER_APP_FAIL_STARTUP``: if set, the app's own lifespan (which runs inside the
  adapter's) fires a task recorded as ``"<pid> startup"`` and then raises.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request

from fastapi_background import BackgroundDep, background_of, lifespan

STARTUP_ERROR = "server_app: the app's own lifespan failed on purpose"

_lock = threading.Lock()
_never = threading.Event()


def _fresh_lock() -> None:
    # A fork may happen while a task of the parent holds the lock.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_fresh_lock)


def _option(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _options() -> dict[str, Any]:
    return {
        key.removeprefix("BACKGROUND_").lower(): _option(text)
        for key, text in os.environ.items()
        if key.startswith("BACKGROUND_")
    }


def record_after_a_while(tag: str) -> None:
    time.sleep(0.02)
    with _lock, open(os.environ["SERVER_APP_OUT"], "a") as out:
        out.write(f"{os.getpid()} {tag}\n")
        out.flush()


def hang_forever() -> None:
    _never.wait()


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
