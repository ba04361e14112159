"""`demo_app.sink`: the embedded SMTP server, its bounded inbox, and its refusals."""

from __future__ import annotations

import smtplib
import time

import pytest

from demo_app.mail import Email, SmtpSettings, TemporarySmtpError, send_email
from demo_app.sink import Inbox, Received, Refusals, Sink


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


def test_the_sink_refuses_the_first_attempt_of_a_share_of_messages_with_451() -> None:
    sink = Sink(refuse_share=0.5).start()
    outcomes: list[object] = []
    try:
        settings = SmtpSettings(sink.host, sink.port)
        for n in range(1, 5):
            email = Email(f"{n:04x}", "from@example.com", "to@example.com", f"n{n}", "b\n")
            try:
                send_email(settings, email)
                outcomes.append("sent")
            except TemporarySmtpError as refused:
                outcomes.append(refused.smtp_code)
                send_email(settings, email)  # its next attempt goes through
    finally:
        sink.stop()

    assert outcomes == ["sent", 451, "sent", 451]
    assert [m.subject for m in sink.inbox.messages()] == ["n4", "n3", "n2", "n1"]
    assert sink.refusals.refused == 2


@pytest.mark.parametrize(
    ("share", "refused"),
    [(0.0, []), (0.1, [10, 20, 30]), (0.3, [4, 7, 10, 14, 17, 20, 24, 27, 30]), (1.0, None)],
)
def test_refusals_are_deterministic_one_attempt_per_message(
    share: float, refused: list[int] | None
) -> None:
    refusals = Refusals(share)
    first = [n for n in range(1, 31) if refusals.refuse(f"<{n}@x>")]
    again = [n for n in first if refusals.refuse(f"<{n}@x>")]

    assert first == (list(range(1, 31)) if refused is None else refused)
    assert again == []  # the next attempt of a refused message goes through
    assert refusals.refused == len(first)
    assert not refusals.refuse("")  # a message without a Message-ID is never refused


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan"), True, "0.1"])
def test_a_share_is_a_number_from_0_to_1(share: object) -> None:
    with pytest.raises(ValueError, match="a number from 0 to 1"):
        Sink(refuse_share=share)  # type: ignore[arg-type]
