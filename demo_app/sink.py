"""The embedded SMTP server: aiosmtpd on 127.0.0.1, keeping what it receives in an `Inbox`.

The listening socket is bound when the `Sink` is made, so its port is known at once; the
server runs when `start()` is called, in a thread of its own with its own event loop. A
server like gunicorn can so bind in its master process and serve in the worker it forks,
the process whose handlers read the inbox.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from email import message_from_bytes, policy

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class Received:
    """An email as the embedded server received it."""

    message_id: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    body: str
    received_at: float  # time.time()

    def to_json(self) -> dict[str, object]:
        """The email as a JSON object."""
        return {
            "message_id": self.message_id,
            "from": self.sender,
            "to": list(self.recipients),
            "subject": self.subject,
            "body": self.body,
            "received_at": self.received_at,
        }


class Inbox:
    """The last `keep` emails received, newest first. Thread-safe."""

    def __init__(self, keep: int = 100) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.keep = keep
        self._messages: deque[Received] = deque(maxlen=keep)
        self._received = 0
        self._lock = threading.Lock()

    def add(self, message: Received) -> None:
        """Keep `message`, dropping the oldest one kept if the inbox is full."""
        with self._lock:
            self._messages.appendleft(message)
            self._received += 1

    def messages(self) -> list[Received]:
        """The emails kept, newest first."""
        with self._lock:
            return list(self._messages)

    @property
    def received(self) -> int:
        """How many emails arrived in all, including those no longer kept."""
        return self._received


def parse(envelope: Envelope) -> Received:
    """A `Received` from an SMTP envelope: headers decoded, the text body as a str."""
    content = envelope.original_content or b""
    message = message_from_bytes(content, policy=policy.default)
    part = message.get_body(preferencelist=("plain",))
    body = part.get_content() if part is not None else ""
    body = body.replace("\r\n", "\n")  # SMTP's line ends, as Python writes text
    return Received(
        message_id=str(message.get("Message-ID", "")),
        sender=envelope.mail_from or "",
        recipients=tuple(envelope.rcpt_tos),
        subject=str(message.get("Subject", "")),
        body=body,
        received_at=time.time(),
    )


class _Keeper:
    """The aiosmtpd handler: accept every email and keep it."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.inbox.add(parse(envelope))
        return "250 Message accepted for delivery"


class Sink:
    """An SMTP server on `host` (127.0.0.1), on a free port, keeping emails in `inbox`.

    Args:
        inbox: Where received emails go; a new `Inbox` by default.
        host: The address to listen on.
        ssl_context: Speak TLS from the first byte (SMTPS) with it; plain SMTP by default.

    A subclass serves with another handler, or with more of aiosmtpd's options (STARTTLS,
    a login), by overriding `protocol`. Raises OSError if no port can be bound. `start`
    and `stop` are for one thread.
    """

    def __init__(
        self,
        inbox: Inbox | None = None,
        *,
        host: str = "127.0.0.1",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.inbox = inbox if inbox is not None else Inbox()
        self.ssl_context = ssl_context
        self._keeper = _Keeper(self.inbox)
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are
        # TCP, and without it each multi-line reply waits for the client's delayed ACK.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            self._socket.bind((host, 0))
            self._socket.listen(100)
        except OSError:
            self._socket.close()
            raise
        self.host: str = self._socket.getsockname()[0]
        self.port: int = self._socket.getsockname()[1]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 5.0) -> Sink:
        """Serve in a daemon thread; return once the server listens. Returns the sink.

        Raises:
            RuntimeError: The server did not start within `timeout` seconds.
        """
        if self._thread is not None:
            raise RuntimeError("this SMTP sink already started")
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._serve, args=(loop, ready), name="smtp-sink", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError(f"the SMTP sink did not start within {timeout}s")
        return self

    def protocol(self, loop: asyncio.AbstractEventLoop) -> SMTP:
        """The aiosmtpd protocol that serves one client, made in the server's thread."""
        # hostname: without it aiosmtpd looks up this machine's name for each client.
        return SMTP(self._keeper, hostname="localhost", enable_SMTPUTF8=True, loop=loop)

    def _serve(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        serving = loop.create_server(
            lambda: self.protocol(loop), sock=self._socket, ssl=self.ssl_context
        )
        server = loop.run_until_complete(serving)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            server.close()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            # The loop may have stopped before the callbacks that finish closing connections
            # ran: a transport left half closed would leak its socket.
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the socket; clients still connected are cut off."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
        self._socket.close()

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"
