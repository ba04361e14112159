"""The worker's side of a task: its arguments as they travel, and what a worker runs.

A task travels as its import path and its pickled arguments, one opaque value, so the
user's keyword arguments never meet ``Client.submit``'s own options and no log line of
Dask's shows them.
"""

from __future__ import annotations

import pickle
from typing import Any

import distributed

from .._remote import run_by_path


class Arguments(bytes):
    """A task's pickled arguments, whose ``repr`` and ``str`` hide them from any log."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<task arguments: {len(self)} bytes>"

    __str__ = __repr__


def pack_arguments(path: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Arguments:
    """The arguments of the task at `path`, pickled to travel.

    Raises:
        TypeError: They cannot be pickled; the message names the task.
    """
    try:
        return Arguments(pickle.dumps((args, kwargs), protocol=5))
    except Exception as error:
        raise TypeError(
            f"the arguments of task {path!r} cannot be pickled ({error}), so they cannot "
            "travel to the cluster: pass plain data (numbers, strings, lists, dicts, "
            "dataclasses) instead."
        ) from None


def run_on_worker(topic: str, key: str, path: str, payload: bytes) -> Any:
    """What a Dask worker runs: announce the start on `topic`, then the task by its path."""
    distributed.get_worker().log_event(topic, key)
    args, kwargs = pickle.loads(payload)
    return run_by_path(path, args, kwargs)
