"""The exceptions this package raises."""

from __future__ import annotations

from concurrent.futures.thread import BrokenThreadPool


class BackgroundError(Exception):
    """Base class of every error raised by this package."""


class PoolClosed(BackgroundError, RuntimeError):
    """Raised by a submission to a pool that was shut down.

    A pool closes when ``shutdown()`` runs, when its ``with`` block ends, or when the
    application it belongs to stops. Submit before shutdown, or create a new pool.
    """


class QueueFull(BackgroundError, RuntimeError):
    """Raised by a submission when ``max_queue`` tasks already wait and ``on_full="raise"``.

    Retry later, raise ``max_queue``, or choose ``on_full="block"`` or ``"caller_runs"``.
    """


class BrokenPool(BackgroundError, BrokenThreadPool):
    """A worker's ``initializer`` raised, so the pool can run nothing more.

    Set on the futures of the tasks that had not started, and raised by later submissions,
    as the stdlib's thread pool does (this is a `concurrent.futures.thread.BrokenThreadPool`).
    Fix the initializer and create a new pool.
    """


class TaskNotImportable(BackgroundError, TypeError):
    """Raised by a submission to a cluster of a callable its workers could not import by name.

    Workers run a task by its import path (``"module:qualname"``): lambdas, functions defined
    inside other functions, and functions of ``__main__`` have none. Define the task at
    module level in a module the workers can import.
    """


class ClusterError(BackgroundError, RuntimeError):
    """The cluster could not run a task or report its outcome.

    Set on a task's future when the connection to the scheduler was lost, the client was
    closed, or the cluster dropped the task; also raised when no scheduler answers at an
    address. The task may or may not have run: tasks on a cluster run at least once.
    """
