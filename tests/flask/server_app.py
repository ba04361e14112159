"""The Flask app that tests/flask/test_servers.py runs under real servers.

gunicorn loads ``server_app:app``; ``flask --app server_app run`` finds ``app`` too.
Configuration comes from the environment:

- ``BACKGROUND_*``: the extension's config keys, values parsed as JSON
  (``BACKGROUND_DRAIN_TIMEOUT=1``, ``BACKGROUND_SIGTERM_HANDLER=true``);
- ``SERVER_APP_OUT``: the file each task appends ``"<pid> <i>\\n"`` to;
- ``SERVER_APP_BOOT_TASKS``: how many tasks to fire at import, outside any request
  (under ``gunicorn --preload`` they are the master's), recorded as ``"<pid> boot-<k>"``.
"""

from __future__ import annotations

import json
import os
import threading
import time

from flask import Flask

from flask_background import Background

bg = Background()
_lock = threading.Lock()
_never = threading.Event()


def _fresh_lock() -> None:
    # A fork (gunicorn --preload) may happen while a task of the parent holds the lock.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_fresh_lock)


def _config_value(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _record(tag: str) -> None:
    with _lock, open(os.environ["SERVER_APP_OUT"], "a") as out:
        out.write(f"{os.getpid()} {tag}\n")
        out.flush()


@bg.task
def record_after_a_while(tag: str) -> None:
    threading.Event().wait(0.02)
    _record(tag)


@bg.task(name="hang-forever")
def hang_forever() -> None:
    _never.wait()


def create_app() -> Flask:
    app = Flask(__name__)
    for key, text in os.environ.items():
        if key.startswith("BACKGROUND_"):
            app.config[key] = _config_value(text)
    bg.init_app(app)

    @app.get("/fire/<int:i>")
    def fire(i: int) -> str:
        record_after_a_while(str(i))
        return f"ok {os.getpid()}"

    @app.get("/hang")
    def hang() -> str:
        """Fire the hung task; answer with its name and id once it runs."""
        future = hang_forever()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not future.running():
            threading.Event().wait(0.005)
        hung = [task for task in bg.pool.running() if task.name == "hang-forever"]
        return " ".join(f"{task.name}:{task.id}" for task in hung)

    return app


app = create_app()

for k in range(int(os.environ.get("SERVER_APP_BOOT_TASKS", "0"))):
    record_after_a_while(f"boot-{k}")
