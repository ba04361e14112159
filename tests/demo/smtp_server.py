"""The tests' SMTP server: the demo's own `Sink` (aiosmtpd on 127.0.0.1), answering with a
`Recorder` instead of keeping an inbox.

What the tests need and the demo does not: refusing a recipient, refusing the first attempt
of every message to some addresses with a temporary 451 (as the demo's `Refusals` does to a
share of messages), holding every message at DATA until released (so a test knows that
nothing was delivered yet when it stops the demo), the From and To headers of what
arrived, every attempt made, and waiting for a number of arrivals.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from email.parser import BytesHeaderParser
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from bench.server_process import free_port
from demo_app.sink import TRY_LATER, Refusals, Sink, parse

# free_port too: test_contract.py imports it from here.
__all__ = ("Arrived", "Recorder", "SmtpServer", "free_port", "smtp_server")

HOLD = 30.0  # seconds a message may wait at DATA before the server gives up on it


@dataclass(frozen=True)
class Arrived:
    """A message as the server received it: envelope, decoded headers, text body."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    sender: str  # the From header
    to: str  # the To header
    subject: str
    message_id: str
    body: str


class Recorder:
    """The aiosmtpd handler: refuse some recipients (550), refuse the first attempt of each
    message to the addresses in `defer` (451), hold DATA while asked, keep the rest.

    `hold` and `release` may be called from any thread.
    """

    def __init__(
        self, refuse: frozenset[str] = frozenset(), defer: frozenset[str] = frozenset()
    ) -> None:
        self.refuse = refuse
        self.defer = defer
        self._attempts: list[str] = []  # the Message-ID of each message at DATA, in order
        self._deferrals = Refusals(1.0)
        self._arrived: list[Arrived] = []
        self._changed = threading.Condition()
        self._open = threading.Event()
        self._open.set()

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        deadline = time.monotonic() + HOLD
        while not self._open.is_set():  # a threading.Event: the test's thread sets it
            if time.monotonic() > deadline:
                raise TimeoutError(f"a message was held at DATA for {HOLD}s: release() it")
            await asyncio.sleep(0.01)
        received = parse(envelope)
        with self._changed:
            self._attempts.append(received.message_id)
        if self.defer.intersection(received.recipients) and self._deferrals.refuse(
            received.message_id
        ):
            return TRY_LATER
        headers = BytesHeaderParser(policy=policy.default).parsebytes(
            envelope.original_content or b""
        )
        arrived = Arrived(
            mail_from=received.sender,
            rcpt_tos=received.recipients,
            sender=str(headers["From"]),
            to=str(headers["To"]),
            subject=received.subject,
            message_id=received.message_id,
            body=received.body,
        )
        with self._changed:
            self._arrived.append(arrived)
            self._changed.notify_all()
        return "250 OK: queued"

    def hold(self) -> None:
        """Keep every message waiting at DATA until `release`."""
        self._open.clear()

    def release(self) -> None:
        """Let held messages through."""
        self._open.set()

    def arrived(self) -> list[Arrived]:
        """The messages received so far, in order."""
        with self._changed:
            return list(self._arrived)

    def attempts(self) -> list[str]:
        """The Message-ID of each message that reached DATA (refused ones too), in order."""
        with self._changed:
            return list(self._attempts)

    def wait_for(self, count: int, timeout: float) -> list[Arrived]:
        """Wait until `count` messages arrived (at most `timeout` s); return them all."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._arrived) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return list(self._arrived)


class SmtpServer(Sink):
    """The demo's `Sink`, serving a `Recorder` that refuses the addresses in `refuse`, and
    the first attempt of each message to those in `defer`.

    `ssl_context` makes it speak TLS from the first byte (SMTPS); `options` go to aiosmtpd's
    `SMTP` (STARTTLS, a login).
    """

    def __init__(
        self,
        refuse: frozenset[str] = frozenset(),
        *,
        defer: frozenset[str] = frozenset(),
        ssl_context: ssl.SSLContext | None = None,
        **options: Any,
    ) -> None:
        super().__init__(ssl_context=ssl_context)
        self.recorder = Recorder(refuse, defer)
        self.options = options

    def protocol(self, loop: asyncio.AbstractEventLoop) -> SMTP:
        return SMTP(
            self.recorder, hostname="localhost", enable_SMTPUTF8=True, loop=loop, **self.options
        )

    @property
    def url(self) -> str:
        return f"smtp://{self.address}"


@contextmanager
def smtp_server(
    refuse: frozenset[str] = frozenset(), *, defer: frozenset[str] = frozenset(), **options: Any
) -> Iterator[SmtpServer]:
    """Run an `SmtpServer` on a free port of 127.0.0.1 for the duration of the block."""
    server = SmtpServer(refuse, defer=defer, **options)
    server.start()
    try:
        yield server
    finally:
        server.recorder.release()
        server.stop()
