"""Tasks the Dask tests send to the cluster: module-level, so workers import them by name.

Side effects are lines appended to a file (``<pid> <text>``), so a test sees how often and
in which process a task ran. Waits are bounded: nothing here can hang a worker for long.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import background

WAIT = 30.0  # seconds a task waits at most for the test's go-ahead


class TaskFailed(Exception):
    """An exception of the tests' own, to see that the type travels back."""


def note(path: str, text: str) -> int:
    """Append ``<pid> <text>`` to `path`; return the pid."""
    with open(path, "a") as file:
        file.write(f"{os.getpid()} {text}\n")
    return os.getpid()


def lines(path: str) -> list[str]:
    """The lines `note` wrote to `path` so far."""
    try:
        return Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []


def note_after(path: str, text: str, release: str) -> int:
    """Note ``start <text>``, wait until the file `release` exists, note ``done <text>``."""
    note(path, f"start {text}")
    deadline = time.monotonic() + WAIT
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.02)
    return note(path, f"done {text}")


def keywords(**kwargs: object) -> dict[str, object]:
    """Return the keyword arguments the function received."""
    return kwargs


def fail(message: str) -> None:
    raise TaskFailed(message)


def lookup(key: str) -> object:
    return {}[key]


def unpicklable() -> threading.Lock:
    return threading.Lock()


def pid() -> int:
    return os.getpid()


@background.task
def decorated(path: str, text: str) -> int:
    """A task of the default pool: on a worker, the plain function runs."""
    return note(path, text)


class Greeter:
    """A module-level class: its instances pickle, and its methods can be tasks."""

    def __init__(self, greeting: str) -> None:
        self.greeting = greeting

    def greet(self, name: str) -> str:
        return f"{self.greeting}, {name} from {os.getpid()}"

    @classmethod
    def make(cls, greeting: str) -> str:
        return cls(greeting).greeting


def fail_quietly(password: str) -> None:
    """Fail without naming the argument: only a log that shows arguments could leak it."""
    raise TaskFailed("the login failed")
