"""What the demo prints as it stops: before the pool's drain, and after it."""

from __future__ import annotations

from background_core import Background


def draining(pool: Background) -> None:
    """Say how many accepted emails are still to send, and for how long the drain may wait."""
    stats = pool.stats()
    waiting = stats.queued + stats.running + stats.scheduled
    if waiting:
        later = f", {stats.scheduled} waiting for a delay or a retry" if stats.scheduled else ""
        print(
            f"stopping: sending the {waiting} accepted emails not sent yet{later} "
            f"(for up to {pool.drain_timeout:g} s)",
            flush=True,
        )


def farewell(pool: Background) -> None:
    """Say what the pool did in all, once it was drained."""
    stats = pool.stats()
    lost = stats.queued + stats.scheduled + stats.running + stats.cancelled
    print(
        f"stopped: {stats.succeeded} emails sent, {stats.failed} failed"
        + (f", {lost} not sent by the drain deadline (logged above)" if lost else ""),
        flush=True,
    )
