"""Code as users write it, checked by `mypy --strict` in `make test` (never run).

It keeps the public API's types honest where only a type checker can see them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import Future
from contextlib import asynccontextmanager

from fastapi import FastAPI
from flask import Flask
from starlette.applications import Starlette
from typing_extensions import assert_type

import background
import background_core
import django_background
import fastapi_background
import flask_background
from background_core.dask import DaskExecutor, dask_executor
from fastapi_background import BackgroundDep, lifespan

# -- the seed API and the engine ---------------------------------------------------------


@background.task
def send_email(to: str, subject: str, body: str) -> None: ...


@background.task(name="fetch")
async def fetch(url: str) -> bytes:
    return b""


assert_type(send_email("a@example.com", "Hi", "there"), Future[None])
assert_type(fetch("https://example.com"), Future[bytes])
assert_type(background.run(len, "abc"), Future[int])
background.n = 8

pool = background_core.Background(4, name="email", on_full="raise")


@pool.task
def resize(path: str, width: int = 100) -> bytes:
    return b""


class Mailer:
    @pool.task
    def send(self, to: str) -> bool:
        return True


assert_type(resize("/a.jpg", width=3), Future[bytes])
assert_type(resize.__wrapped__("/a.jpg"), bytes)
assert_type(Mailer().send("a@example.com"), Future[bool])
assert_type(pool.submit(sum, [1, 2]), Future[int])
assert_type(pool.stats().queued, int)

# -- Flask -------------------------------------------------------------------------------

ext = flask_background.Background()


@ext.task
def welcome(user_id: int) -> str:
    return ""


async def ping() -> int:
    return 1


assert_type(welcome(42), Future[str])
assert_type(ext.submit(ping), Future[int])
assert_type(ext.submit(len, "abc"), Future[int])
ext.init_app(Flask(__name__))

# -- FastAPI and Starlette ---------------------------------------------------------------

api = FastAPI(lifespan=lifespan(workers=8))
plain = Starlette(lifespan=lifespan())
shared = FastAPI(lifespan=lifespan(pool=pool))


@asynccontextmanager
async def app_lifespan(app: FastAPI) -> AsyncIterator[dict[str, str]]:
    yield {"db": "connection"}


composed = FastAPI(lifespan=lifespan(app_lifespan, workers=2, drain_timeout=5.0))


@api.post("/signup")
async def signup(email: str, bg: BackgroundDep) -> dict[str, str]:
    assert_type(bg.submit(send_email.__wrapped__, email, "Hi", "there"), Future[None])
    return {"status": "queued"}


# -- Django: django_background.lifespan takes any ASGI application (Django's is untyped) --

asgi_app = django_background.lifespan(Starlette())
wrapped_twice = django_background.lifespan(asgi_app)


# -- Dask --------------------------------------------------------------------------------

cluster = background_core.Background(executor=dask_executor("tcp://127.0.0.1:8786"))
assert_type(dask_executor("tcp://127.0.0.1:8786", connect_timeout=5.0), DaskExecutor)
assert_type(cluster.submit(resize.__wrapped__, "/a.jpg", width=3), Future[bytes])
on_cluster = FastAPI(lifespan=lifespan(workers=2, dask_scheduler="tcp://127.0.0.1:8786"))

# -- the Executor contract, and the web pool ------------------------------------------

with background_core.Background(2, name="stdlib", initializer=print, initargs=("ready",)) as ex:
    assert_type(list(ex.map(len, ["a", "bc"])), list[int])
    report = ex.shutdown(wait=True, cancel_futures=False, timeout=5.0)
    assert_type(report, background_core.DrainReport)

web_pool = fastapi_background.pool(workers=2, name="email", block_timeout=1.0)
assert_type(web_pool, background_core.Background)
web_app = FastAPI(lifespan=lifespan(pool=web_pool))
retrying = FastAPI(lifespan=lifespan(max_queue=100, retry_after=5))

# -- task options: run later, retry, time out ------------------------------------------


@background.task(retries=3, retry_on=(ConnectionError, TimeoutError), timeout=10)
def send_reminder(to: str) -> bool:
    return True


@pool.task(name="poll", retries=2, backoff=0.5, backoff_max=5.0, jitter=False)
async def poll(url: str) -> int:
    return 200


assert_type(send_reminder.using(delay=600)("ada@example.com"), Future[bool])
assert_type(send_reminder.using(run_at=None, retries=1)("ada@example.com"), Future[bool])
assert_type(poll.using(delay=1.5)("https://example.com"), Future[int])
assert_type(pool.using(delay=5).submit(resize.__wrapped__, "/a.jpg", width=3), Future[bytes])
assert_type(send_reminder.options, background_core.TaskOptions | None)


@ext.task(retries=2)
def flask_job(n: int) -> str:
    return str(n)


assert_type(flask_job.using(delay=1)(3), Future[str])
assert_type(web_pool.using(retries=1).submit(len, "abc"), Future[int])
