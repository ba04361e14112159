"""`pool()`: a `background_core.Background` with the defaults of a web app.

A web app sheds load rather than stalls a request: the queue is bounded, a full one is
refused at once, and the refusal escapes a handler as 503 with ``Retry-After``. The
lifespan makes its pools with the same defaults; make a module-level pool with `pool()`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from background_core import Background, PoolOptions, check_count

from ._errors import QueueFullError

if TYPE_CHECKING:
    from typing_extensions import Unpack

RETRY_AFTER = 1
"""Seconds a 503 for a full queue tells the client to wait (its ``Retry-After``)."""

DEFAULTS: PoolOptions = {
    "max_queue": 10_000,
    "on_full": "raise",
    "block_timeout": 1.0,  # with on_full="block": from a sync endpoint, then 503
    # Below gunicorn's default --graceful-timeout (30 s), after which it kills its workers.
    "drain_timeout": 25.0,
}


def web_options(retry_after: int, options: PoolOptions) -> PoolOptions:
    """`options` over the web defaults, with a 503 of `retry_after` seconds when full."""
    check_count(retry_after, "retry_after")
    error = functools.partial(QueueFullError, retry_after=retry_after)
    return {**DEFAULTS, "queue_full_error": error, **options}


def pool(*, retry_after: int = RETRY_AFTER, **options: Unpack[PoolOptions]) -> Background:
    """A pool with a web app's defaults: ``bg = pool(workers=8, name="email")``, then
    ``lifespan(pool=bg)``.

    For ``@bg.task`` at module level. At most 10,000 tasks wait; a submission beyond that
    raises `QueueFull`, which a handler lets escape as a 503 with ``Retry-After:
    <retry_after>``. Other options as `background_core.Background`'s.
    """
    return Background(**web_options(retry_after, options))
