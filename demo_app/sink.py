"""The embedded SMTP server: aiosmtpd on 127.0.0.1, keeping what it receives in an `Inbox`.

It can refuse the first attempt of a share of messages with a temporary ``451`` (see
`Refusals`), as a busy or greylisting server does, so that the demo shows its retries.

The listening socket is bound when the `Sink` is made, so its port is known at once; the
server runs when `start()` is called, in a thread of its own with its own event loop. A
server like gunicorn can so bind in its master process and serve in the worker it forks,
the process whose handlers read the inbox.
"""

from __future__ import annotations

import asyncio
import math
import socket
import ssl
import threading
import time
from collections import OrderedDict, deque
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


TRY_LATER = "451 4.3.0 Temporary failure: try again later"
"""The reply to a refused attempt: a temporary failure, which a client retries."""


class Refusals:
    """Which attempts to refuse with `TRY_LATER`: the first one of a `share` of messages.

    Deterministic, so tests can count on it: of the messages seen so far, ``floor(n *
    share)`` were refused, the last of each run of ``1 / share`` (0.1: the 10th, the
    20th, ...; 1: every one). A message is known by its Message-ID: the next attempt of a
    refused one is accepted. A message without a Message-ID is never refused. Thread-safe.

    Raises:
        ValueError: `share` is not a number from 0 to 1.
    """

    REMEMBERED = 10_000
    """How many refused Message-IDs are kept until their next attempt."""

    def __init__(self, share: float = 0.0) -> None:
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
            raise ValueError("the share to refuse must be a number from 0 to 1, such as 0.1")
        self.share = float(share)
        self.refused = 0
        self._seen = 0
        self._waiting: OrderedDict[str, None] = OrderedDict()  # refused, not yet retried
        self._lock = threading.Lock()

    def refuse(self, message_id: str) -> bool:
        """True if this attempt to deliver the message `message_id` gets a 451."""
        if not message_id or not self.share:
            return False
        with self._lock:
            if message_id in self._waiting:  # its retry
                del self._waiting[message_id]
                return False
            self._seen += 1
            # The small term keeps 0.1 * 10 from landing just below 1.
            if math.floor(self._seen * self.share + 1e-9) <= self.refused:
                return False
            self.refused += 1
            self._waiting[message_id] = None
            if len(self._waiting) > self.REMEMBERED:
                self._waiting.popitem(last=False)
            return True


class _Keeper:
    """The aiosmtpd handler: refuse the attempts `refusals` says, keep every other email."""

    def __init__(self, inbox: Inbox, refusals: Refusals) -> None:
        self.inbox = inbox
        self.refusals = refusals

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        received = parse(envelope)
        if self.refusals.refuse(received.message_id):
            return TRY_LATER
        self.inbox.add(received)
        return "250 Message accepted for delivery"


class Sink:
    """An SMTP server on `host` (127.0.0.1), on a free port, keeping emails in `inbox`.

    Args:
        inbox: Where received emails go; a new `Inbox` by default.
        host: The address to listen on.
        ssl_context: Speak TLS from the first byte (SMTPS) with it; plain SMTP by default.
        refuse_share: Refuse the first attempt of this share of messages (0 to 1) with a
            temporary 451, deterministically (see `Refusals`); 0, none, by default.

    A subclass serves with another handler, or with more of aiosmtpd's options (STARTTLS,
    a login), by overriding `protocol`. Raises OSError if no port can be bound, ValueError
    for a bad `refuse_share`. `start` and `stop` are for one thread.
    """

    def __init__(
        self,
        inbox: Inbox | None = None,
        *,
        host: str = "127.0.0.1",
        ssl_context: ssl.SSLContext | None = None,
        refuse_share: float = 0.0,
    ) -> None:
        self.inbox = inbox if inbox is not None else Inbox()
        self.ssl_context = ssl_context
        self.refusals = Refusals(refuse_share)
        self._keeper = _Keeper(self.inbox, self.refusals)
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
