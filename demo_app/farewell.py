"""What the demo prints as it stops: before the pool's drain, and after it.

Both take the pool's `Stats` as the app counts its emails (`api.Sender.stats`): the
pool's own, or for Django those with each email counted once.
"""

from __future__ import annotations

from background_core import Stats


def draining(stats: Stats, drain_timeout: float) -> None:
    """Say how many accepted emails are still to send, and for how long the drain may wait."""
    waiting = stats.queued + stats.running + stats.scheduled
    if waiting:
        later = f", {stats.scheduled} waiting for a delay or a retry" if stats.scheduled else ""
        print(
            f"stopping: sending the {waiting} accepted emails not sent yet{later} "
            f"(for up to {drain_timeout:g} s)",
            flush=True,
        )


def farewell(stats: Stats) -> None:
    """Say what the pool did in all, once it was drained."""
    lost = stats.queued + stats.scheduled + stats.running + stats.cancelled
    print(
        f"stopped: {stats.succeeded} emails sent, {stats.failed} failed"
        + (f", {lost} not sent by the drain deadline (logged above)" if lost else ""),
        flush=True,
    )
