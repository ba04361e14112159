"""What tests/flask/server_app.py and tests/fastapi/server_app.py share: their
configuration from the environment and the functions their tasks run.

The servers import it as ``app_support``: tests/servers/harness.py puts this folder on
their PYTHONPATH.

- ``BACKGROUND_*``: options for the app's pool, values parsed as JSON when they are JSON
  (``BACKGROUND_DRAIN_TIMEOUT=1``, ``BACKGROUND_SIGTERM_HANDLER=true``);
- ``SERVER_APP_OUT``: the file each task appends ``"<pid> <tag>\\n"`` to;
- ``SERVER_APP_TASK_SECONDS``: how long each fired task takes (0.02 s by default).
"""

from __future__ import annotations

import json
import os
import threading

_lock = threading.Lock()
_never = threading.Event()


def _fresh_lock() -> None:
    # A fork (gunicorn --preload, a supervisor's workers) may happen while a task of the
    # parent holds the lock.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_fresh_lock)


def config_value(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def background_config() -> dict[str, object]:
    """The ``BACKGROUND_*`` variables of the environment, by name, values parsed."""
    return {
        key: config_value(text) for key, text in os.environ.items() if key.startswith("BACKGROUND_")
    }


def record(tag: str) -> None:
    """Append ``"<pid> <tag>"`` to the file of ``SERVER_APP_OUT``."""
    with _lock, open(os.environ["SERVER_APP_OUT"], "a") as out:
        out.write(f"{os.getpid()} {tag}\n")
        out.flush()


TASK_SECONDS = float(os.environ.get("SERVER_APP_TASK_SECONDS", "0.02"))


def record_after_a_while(tag: str) -> None:
    threading.Event().wait(TASK_SECONDS)
    record(tag)


def hang_forever() -> None:
    _never.wait()
