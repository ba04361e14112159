"""The Flask app that tests/flask/test_servers.py runs under real servers.

gunicorn loads ``server_app:app``; ``flask --app server_app run`` finds ``app`` too.
Configuration comes from the environment (see tests/servers/app_support.py):

- ``BACKGROUND_*``: the extension's config keys, values parsed as JSON
  (``BACKGROUND_DRAIN_TIMEOUT=1``, ``BACKGROUND_SIGTERM_HANDLER=true``);
- ``SERVER_APP_OUT``: the file each task appends ``"<pid> <i>\\n"`` to;
- ``SERVER_APP_BOOT_TASKS``: how many tasks to fire at import, outside any request
  (under ``gunicorn --preload`` they are the master's), recorded as ``"<pid> boot-<k>"``.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time

import app_support
from flask import Flask

from flask_background import Background

bg = Background()
record_after_a_while = bg.task(app_support.record_after_a_while)
hang_forever = bg.task(name="hang-forever")(app_support.hang_forever)


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(app_support.background_config())
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

    @app.get("/ping")
    def ping() -> str:
        return "pong"

    @app.get("/stats")
    def stats() -> dict[str, object]:
        return dataclasses.asdict(bg.pool.stats())

    return app


app = create_app()

for k in range(int(os.environ.get("SERVER_APP_BOOT_TASKS", "0"))):
    record_after_a_while(f"boot-{k}")
