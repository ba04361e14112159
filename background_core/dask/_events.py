"""Start reports from Dask workers: one topic, subscribed once per client and scheduler.

A worker running one of our tasks logs an event ``(TOPIC, key)``. Each client subscribes to
`TOPIC` once with a `StartReports` that holds its executors only weakly and hands every
report to each of them (an executor ignores keys it does not know). So a long-lived client
of the user's neither keeps executors alive nor piles up topics on the scheduler, and a
client that reconnected to a restarted scheduler subscribes again there.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Protocol

import distributed

TOPIC = "background-started"
"""The Dask event topic our workers report starts on."""

_NEVER = object()


class Listener(Protocol):
    def on_started(self, key: str) -> None: ...


class StartReports:
    """A client's handler for `TOPIC`: routes each report to the live executors."""

    def __init__(self) -> None:
        self.listeners: weakref.WeakSet[Listener] = weakref.WeakSet()
        self.scheduler: object = _NEVER  # the id of the scheduler subscribed to

    def __call__(self, event: tuple[float, str]) -> None:
        """On the client's event loop: a worker started the task with key ``event[1]``."""
        with _lock:
            listeners = list(self.listeners)
        for listener in listeners:
            listener.on_started(event[1])


_lock = threading.Lock()
_reports: weakref.WeakKeyDictionary[distributed.Client, StartReports] = weakref.WeakKeyDictionary()


def scheduler_id(client: distributed.Client) -> object:
    """The id of the scheduler `client` is connected to; it changes when it reconnects."""
    identity: dict[str, Any] = getattr(client, "_scheduler_identity", None) or {}
    return identity.get("id")


def listen(client: distributed.Client, listener: Listener) -> object:
    """Send `client`'s start reports to `listener`; return the scheduler id subscribed to.

    Subscribes when the client has not yet subscribed on its current scheduler. Call it
    before submitting, from any thread: the subscription then reaches the scheduler first.
    """
    current = scheduler_id(client)
    with _lock:
        reports = _reports.get(client)
        if reports is None:
            reports = _reports[client] = StartReports()
        reports.listeners.add(listener)
        if reports.scheduler is _NEVER or reports.scheduler != current:
            client.subscribe_topic(TOPIC, reports)
            reports.scheduler = current
    return current


def _after_fork() -> None:
    global _lock, _reports
    _lock = threading.Lock()  # another thread may have held it at the fork
    _reports = weakref.WeakKeyDictionary()  # the parent's clients are not ours


os.register_at_fork(after_in_child=_after_fork)
