"""The exceptions this package raises."""

from __future__ import annotations


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
