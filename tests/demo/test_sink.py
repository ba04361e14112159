"""`demo_app.sink`: the embedded SMTP server and its bounded inbox."""

from __future__ import annotations

import smtplib
import time

import pytest

from demo_app.mail import Email, SmtpSettings, send_email
from demo_app.sink import Inbox, Received, Sink


def received(n: int) -> Received:
    return Received(f"<{n}@x>", "a@example.com", ("b@example.com",), f"n{n}", "", time.time())


def test_the_inbox_keeps_the_newest_first_up_to_its_bound() -> None:
    inbox = Inbox(keep=3)
    for n in range(5):
        inbox.add(received(n))

    assert [m.subject for m in inbox.messages()] == ["n4", "n3", "n2"]
    assert inbox.received == 5


def test_an_inbox_keeps_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Inbox(keep=0)


def test_the_sink_listens_on_127_0_0_1_and_keeps_what_it_receives() -> None:
    sink = Sink(Inbox(keep=10)).start()
    try:
        assert sink.host == "127.0.0.1"
        assert sink.address == f"127.0.0.1:{sink.port}"
        settings = SmtpSettings(sink.host, sink.port, sender="from@example.com")
        send_email(settings, Email("00ff", "from@example.com", "tö@example.com", "Sübject", "ß\n"))
        [message] = sink.inbox.messages()
    finally:
        sink.stop()

    assert message.message_id == "<00ff@background-demo.invalid>"
    assert message.sender == "from@example.com"
    assert message.recipients == ("tö@example.com",)
    assert (message.subject, message.body) == ("Sübject", "ß\n")
    assert message.to_json()["to"] == ["tö@example.com"]


def test_a_stopped_sink_refuses_connections() -> None:
    sink = Sink().start()
    sink.stop()

    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP(sink.host, sink.port, "localhost", timeout=2)
    with pytest.raises(RuntimeError, match="already started"):
        sink.start()
