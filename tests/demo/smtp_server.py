"""A real SMTP server for the demo's tests: aiosmtpd on 127.0.0.1, recording what arrives.

It is the tests' own, independent of the demo's embedded server: it can refuse a
recipient, and hold every message at DATA until released (so a test knows that nothing
was delivered yet when it stops the demo).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def free_port() -> int:
    """A port of 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Arrived:
    """A message as the server received it: envelope, decoded headers, text body."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    sender: str
    to: str
    subject: str
    message_id: str
    body: str


class Recorder:
    """The aiosmtpd handler: refuse some recipients, hold DATA while asked, keep the rest."""

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.refuse = refuse
        self._arrived: list[Arrived] = []
        self._changed = threading.Condition()
        self._open = asyncio.Event()
        self._open.set()
        self.loop: asyncio.AbstractEventLoop | None = None

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
        await asyncio.wait_for(self._open.wait(), timeout=30)
        message = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        body = message.get_body(preferencelist=("plain",))
        arrived = Arrived(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            sender=str(message["From"]),
            to=str(message["To"]),
            subject=str(message["Subject"]),
            message_id=str(message["Message-ID"]),
            body="" if body is None else body.get_content().replace("\r\n", "\n"),
        )
        with self._changed:
            self._arrived.append(arrived)
            self._changed.notify_all()
        return "250 OK: queued"

    def hold(self) -> None:
        """Keep every message waiting at DATA until `release`."""
        self._call(self._open.clear)

    def release(self) -> None:
        """Let held messages through."""
        self._call(self._open.set)

    def _call(self, fn: Callable[[], None]) -> None:
        """Run `fn` in the server's loop (asyncio.Event is not thread-safe), and wait."""
        assert self.loop is not None
        done = threading.Event()

        def run() -> None:
            fn()
            done.set()

        self.loop.call_soon_threadsafe(run)
        assert done.wait(5), "the SMTP server's loop did not answer"

    def arrived(self) -> list[Arrived]:
        """The messages received so far, in order."""
        with self._changed:
            return list(self._arrived)

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


@dataclass
class SmtpServer:
    """A running test SMTP server."""

    port: int
    recorder: Recorder

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


@contextmanager
def smtp_server(refuse: frozenset[str] = frozenset()) -> Iterator[SmtpServer]:
    """Run a `Recorder` on a free port of 127.0.0.1 for the duration of the block."""
    recorder = Recorder(refuse)
    controller = Controller(
        recorder, hostname="127.0.0.1", port=free_port(), server_hostname="localhost"
    )
    controller.start()
    recorder.loop = controller.loop
    try:
        yield SmtpServer(controller.port, recorder)
    finally:
        recorder.release()
        controller.stop()
