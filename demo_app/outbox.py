"""The emails the API accepted, by id: the last `Outbox.keep`, and where each one is.

``GET /emails/{id}`` reads this: an email is queued, then sending, then sent, failed or
cancelled (not sent by the drain deadline). A failure is told by the exception's type only:
its message may hold an address, and the pool's log has the rest. The outbox looks at a
failure without taking it, so the pool still logs it (see `_state`).
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from typing import Literal

Status = Literal["queued", "sending", "sent", "failed", "cancelled"]

KEEP = 2000
"""How many accepted emails an `Outbox` remembers: two full bursts."""


@dataclass(frozen=True)
class Tracked:
    """Where an email is.

    Attributes:
        id: The email's id, as ``POST /emails`` answered it.
        status: "queued", "sending", or, once done, "sent", "failed" or "cancelled".
        error: For "failed", the type of the exception the send raised, else None.
    """

    id: str
    status: Status
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        """The email's state as a JSON object: ``{"id", "status", "error"}``."""
        return {"id": self.id, "status": self.status, "error": self.error}


class Outbox:
    """The last `keep` emails accepted, by id. Thread-safe.

    An email's future is kept until it is done, then only its outcome: a finished send
    keeps neither its message nor its traceback alive.
    """

    def __init__(self, keep: int = KEEP) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1: an outbox remembers at least one email")
        self.keep = keep
        self._emails: dict[str, Future[None] | Tracked] = {}  # oldest first
        self._lock = threading.Lock()

    def add(self, email_id: str, future: Future[None]) -> None:
        """Follow the email `email_id`, which `future` sends; forget the oldest beyond `keep`."""
        with self._lock:
            self._emails[email_id] = future
            while len(self._emails) > self.keep:
                del self._emails[next(iter(self._emails))]
        future.add_done_callback(functools.partial(self._settle, email_id))

    def get(self, email_id: str) -> Tracked | None:
        """Where the email `email_id` is, or None if it is unknown or forgotten."""
        with self._lock:
            entry = self._emails.get(email_id)
        if entry is None or isinstance(entry, Tracked):
            return entry
        return _state(email_id, entry)

    def _settle(self, email_id: str, future: Future[None]) -> None:
        state = _state(email_id, future)
        with self._lock:
            if email_id in self._emails:  # not forgotten meanwhile
                self._emails[email_id] = state


def _state(email_id: str, future: Future[None]) -> Tracked:
    if future.running():
        return Tracked(email_id, "sending")
    if not future.done():
        return Tracked(email_id, "queued")
    try:
        # The stdlib's own exception(), not the pool future's: that one would tell the
        # pool that the failure is in hand, and the pool would not log it.
        error = Future.exception(future, timeout=0)
    except CancelledError:
        return Tracked(email_id, "cancelled")
    if error is not None:
        return Tracked(email_id, "failed", type(error).__name__)
    return Tracked(email_id, "sent")
