"""The Flask app served by gunicorn (gthread); ``BENCH_CONTENDER`` picks what ``/fire``
fires: ``nothing``, ``ours`` (`flask_background`, a task decorated with the extension),
``flask-executor`` (Flask-Executor, thread type) or ``executor`` (a module-level
``ThreadPoolExecutor``, never shut down). Every pool has `WORKERS` threads. ``/nothing`` is the
same endpoint firing nothing, on every contender's server; ``/pid`` answers the serving
worker process's id.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from flask import Flask
from flask_executor import Executor

from bench.apps import CONTENDER, WORKERS, sleep_task
from flask_background import Background

app = Flask(__name__)
# No bound on the queue, as the others have none: every request fires its task.
app.config.update(BACKGROUND_WORKERS=WORKERS, BACKGROUND_MAX_QUEUE=None, EXECUTOR_TYPE="thread")
app.config.update(EXECUTOR_MAX_WORKERS=WORKERS)

if CONTENDER == "ours":
    bg = Background(app)
    fire_task = bg.task(sleep_task)
elif CONTENDER == "flask-executor":
    executor = Executor(app)

    def fire_task() -> object:
        return executor.submit(sleep_task)

elif CONTENDER == "executor":
    pool = ThreadPoolExecutor(WORKERS)

    def fire_task() -> object:
        return pool.submit(sleep_task)

else:

    def fire_task() -> object:
        return None


@app.get("/fire")
def fire() -> dict[str, bool]:
    fire_task()
    return {"ok": True}


@app.get("/nothing")
def nothing() -> dict[str, bool]:
    return {"ok": True}


@app.get("/ping")
def ping() -> dict[str, bool]:
    return {"ok": True}


@app.get("/pid")
def pid() -> dict[str, int]:
    return {"pid": os.getpid()}
