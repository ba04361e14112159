"""The emails the API accepted, by id: the last `Outbox.keep`, and where each one is.

``GET /emails/{id}`` reads this: an email is queued (or scheduled, when sent with a delay),
then sending, then sent, failed or cancelled (not sent by the drain deadline); between
attempts it is retrying. A failure is told by the exception's type only: its message may
hold an address, and the pool's log has the rest. The outbox looks at a failure without
taking it, so the pool still logs it (see `_state`).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from typing import Literal

from background_core import TaskInfo

Status = Literal["queued", "scheduled", "sending", "retrying", "sent", "failed", "cancelled"]

Scheduled = Callable[[], Iterable[TaskInfo]]
"""What lists the tasks waiting for their time: the pool's ``scheduled`` method."""

KEEP = 2000
"""How many accepted emails an `Outbox` remembers: two full bursts."""


@dataclass(frozen=True)
class Tracked:
    """Where an email is.

    Attributes:
        id: The email's id, as ``POST /emails`` answered it.
        status: "queued"; "scheduled" (sent with a delay, its time has not come);
            "sending"; "retrying" (an attempt failed, the next one waits); or, once done,
            "sent", "failed" or "cancelled".
        error: For "failed", the type of the exception the send raised, else None.
        attempt: For "scheduled" and "retrying", the attempt it waits to make (1 for the
            first), else None.
        due_in: For "scheduled" and "retrying", seconds until that attempt may start.
    """

    id: str
    status: Status
    error: str | None = None
    attempt: int | None = None
    due_in: float | None = None

    def to_json(self) -> dict[str, object]:
        """The email's state as a JSON object: ``{"id", "status", "error"}``, and
        ``"attempt"`` and ``"due_in"`` while it waits for its time."""
        found: dict[str, object] = {"id": self.id, "status": self.status, "error": self.error}
        if self.attempt is not None:
            found.update(attempt=self.attempt, due_in=self.due_in)
        return found


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

    def get(self, email_id: str, scheduled: Scheduled | None = None) -> Tracked | None:
        """Where the email `email_id` is, or None if it is unknown or forgotten.

        `scheduled` (the pool's ``scheduled`` method) tells a waiting email, with its
        attempt, from a queued one; without it, both are "queued".
        """
        with self._lock:
            entry = self._emails.get(email_id)
        if entry is None or isinstance(entry, Tracked):
            return entry
        return _state(email_id, entry, scheduled)

    def _settle(self, email_id: str, future: Future[None]) -> None:
        state = _state(email_id, future, None)
        with self._lock:
            if email_id in self._emails:  # not forgotten meanwhile
                self._emails[email_id] = state


def _state(email_id: str, future: Future[None], scheduled: Scheduled | None) -> Tracked:
    if future.running():
        return Tracked(email_id, "sending")
    if not future.done():
        waiting = None if scheduled is None else _waiting(future, scheduled)
        if waiting is None:
            return Tracked(email_id, "queued")
        due_in = 0.0 if waiting.due_at is None else max(0.0, waiting.due_at - time.time())
        return Tracked(
            email_id,
            "retrying" if waiting.attempt > 1 else "scheduled",
            attempt=waiting.attempt,
            due_in=round(due_in, 1),
        )
    try:
        # The stdlib's own exception(), not the pool future's: that one would tell the
        # pool that the failure is in hand, and the pool would not log it.
        error = Future.exception(future, timeout=0)
    except CancelledError:
        return Tracked(email_id, "cancelled")
    if error is not None:
        return Tracked(email_id, "failed", type(error).__name__)
    return Tracked(email_id, "sent")


def _waiting(future: Future[None], scheduled: Scheduled) -> TaskInfo | None:
    """The pool's report of the task `future` resolves, if it waits for its time."""
    # background_core offers no public way from a future to its task: its futures carry
    # the task's id (`TaskInfo.id`) as `task_id`, which their type does not declare.
    task_id = getattr(future, "task_id", None)
    if task_id is None:
        return None
    return next((task for task in scheduled() if task.id == task_id), None)
