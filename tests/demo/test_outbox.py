"""`Outbox`: the emails the API accepted, by id, for ``GET /emails/{id}``."""

from __future__ import annotations

import smtplib
from concurrent.futures import Future

import pytest

from background_core import Background
from demo_app.outbox import Outbox, Tracked
from tests.helpers import wait_until


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


def test_an_email_waiting_for_its_time_is_scheduled_then_retrying_with_its_attempt() -> None:
    outbox = Outbox()
    attempts: list[int] = []

    def flaky() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("the server is busy")

    with Background(1, name="outbox") as pool:
        later = pool.using(delay=60).submit(flaky)
        outbox.add("later", later)
        retried = pool.using(retries=1, backoff=60, jitter=False).submit(flaky)
        outbox.add("retried", retried)
        wait_until(lambda: attempts == [1], "the first attempt failed")
        wait_until(lambda: len(pool.scheduled()) == 2, "the retry waits")

        scheduled = outbox.get("later", pool.scheduled)
        retrying = outbox.get("retried", pool.scheduled)
        without = outbox.get("retried")  # without the pool's report: queued, as before
        later.cancel()
        retried.cancel()

    assert scheduled is not None
    assert retrying is not None
    assert (scheduled.status, scheduled.attempt, scheduled.error) == ("scheduled", 1, None)
    assert (retrying.status, retrying.attempt, retrying.error) == ("retrying", 2, None)
    for waiting in (scheduled, retrying):
        assert waiting.due_in is not None
        assert 50 < waiting.due_in <= 60
        assert waiting.to_json() == {
            "id": waiting.id,
            "status": waiting.status,
            "error": None,
            "attempt": waiting.attempt,
            "due_in": waiting.due_in,
        }
    assert without == Tracked("retried", "queued")
    assert outbox.get("later", pool.scheduled) == Tracked("later", "cancelled")
