"""`Outbox`: the emails the API accepted, by id, for ``GET /emails/{id}``."""

from __future__ import annotations

import smtplib
from concurrent.futures import Future

import pytest

from demo_app.outbox import Outbox, Tracked


def test_an_email_goes_from_queued_to_sending_to_its_outcome() -> None:
    outbox = Outbox()
    sent: Future[None] = Future()
    failed: Future[None] = Future()
    cancelled: Future[None] = Future()
    outbox.add("a", sent)
    outbox.add("b", failed)
    outbox.add("c", cancelled)

    assert outbox.get("a") == Tracked("a", "queued")
    assert sent.set_running_or_notify_cancel()
    assert outbox.get("a") == Tracked("a", "sending")
    sent.set_result(None)
    failed.set_running_or_notify_cancel()
    failed.set_exception(smtplib.SMTPRecipientsRefused({"x@example.com": (550, b"no")}))
    cancelled.cancel()

    assert outbox.get("a") == Tracked("a", "sent")
    assert outbox.get("b") == Tracked("b", "failed", "SMTPRecipientsRefused")
    assert outbox.get("c") == Tracked("c", "cancelled")
    assert outbox.get("d") is None


def test_the_oldest_are_forgotten_beyond_keep() -> None:
    outbox = Outbox(keep=2)
    futures: list[Future[None]] = [Future() for _ in range(3)]
    for email_id, future in zip("abc", futures, strict=True):
        outbox.add(email_id, future)
    futures[0].set_result(None)  # done after it was forgotten: stays forgotten

    assert [outbox.get(email_id) for email_id in "abc"] == [
        None,
        Tracked("b", "queued"),
        Tracked("c", "queued"),
    ]


def test_keep_must_be_positive() -> None:
    with pytest.raises(ValueError, match="keep must be at least 1"):
        Outbox(keep=0)
