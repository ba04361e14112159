"""The HTTP API the three apps serve, free of any framework.

Each method takes what a request carries (the pool, the raw body) and returns the status
and the JSON to answer; the FastAPI, Flask and Django apps only route requests here and
wrap the result in their own response type.

What sends the emails is a `Sender`: the pool itself for FastAPI and Flask (`PoolSender`:
each email a task of the pool, with the engine's retries), or Django's own tasks on the
backend's pool (`demo_app.django_views.EmailTasks`).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Protocol

from background_core import (
    Background,
    PoolClosed,
    QueueFull,
    Stats,
    Submitter,
    TaskOptions,
    task_options,
)

from . import page
from .mail import RETRY_ON, Email, SmtpSettings, new_id, send_email
from .outbox import Outbox, Tracked
from .payloads import (
    MAX_BODY,
    MAX_REQUEST_BYTES,
    BulkRequest,
    InvalidPayload,
    parse_bulk_request,
    parse_email_request,
)
from .sink import Inbox

Reply = tuple[int, dict[str, object]]

STOPPING: Reply = (503, {"error": "the server is stopping: it sends what it accepted, no more"})

TOO_LARGE: Reply = (
    413,
    {
        "error": f"the request body is over {MAX_REQUEST_BYTES // 1024} KiB, the most this "
        f"API reads: send one email per POST /emails, with a body of at most {MAX_BODY} "
        "characters"
    },
)
"""The answer to a body over `MAX_REQUEST_BYTES`, before it is read in full."""

RETRY_AFTER = 1
"""Seconds a 503 for a full queue asks the client to wait (its ``Retry-After`` header)."""

RETRIES = 3
"""Attempts after the first for an email whose send failed in a way worth another
(`mail.RETRY_ON`: a 4xx reply, a connection refused or dropped, a timeout)."""

BACKOFF = 0.5
"""Seconds before the first retry; each next one waits twice as long, 50-100 % of it."""

BACKOFF_MAX = 4.0
"""The longest wait between two attempts, in seconds."""

RETRYING: TaskOptions = task_options(
    retries=RETRIES, retry_on=RETRY_ON, backoff=BACKOFF, backoff_max=BACKOFF_MAX
)
"""The retries above as the pool's task options: what `DemoApi.sending` submits with, and
what the Django app, whose tasks take no such options, follows itself (its
`TaskOptions.wait_before` gives the same backoff)."""


def too_many_scheduled(max_queue: int) -> dict[str, object]:
    """The 503's answer when `max_queue` emails already wait for their time."""
    return {
        "error": f"{max_queue} emails are already waiting for their time (a delay or a "
        "retry), the most this server keeps: send without a delay, or later."
    }


def queue_full(max_queue: int, refused: int) -> dict[str, object]:
    """The 503's answer when `max_queue` emails already wait: `refused` were not queued."""
    return {
        "error": f"the queue is full: {max_queue} emails are waiting to be sent, so "
        f"{refused} {'was' if refused == 1 else 'were'} refused. Retry in {RETRY_AFTER} s.",
        "retry_after": RETRY_AFTER,
    }


class Sender(Protocol):
    """What the endpoints hand each accepted email to, and ask about the emails."""

    def send(self, email: Email, delay: float) -> None:
        """Queue `email`, to be sent `delay` seconds from now (0: at once), and follow it.

        Raises:
            PoolClosed: The server is stopping.
            QueueFull: ``max_queue`` emails wait already.
        """

    def find(self, email_id: str) -> Tracked | None:
        """Where the email `email_id` is, or None if it is unknown or forgotten."""

    def stats(self) -> Stats:
        """The pool's counters, each email counted once (``GET /stats``)."""


@dataclass(frozen=True)
class PoolSender:
    """FastAPI's and Flask's `Sender`: each email a task of `pool`, submitted with the
    retries of `RETRYING`, followed by its future in ``api.outbox``."""

    api: DemoApi
    pool: Background

    @functools.cached_property
    def _at_once(self) -> Submitter:
        return self.api.sending(self.pool)  # made once for a burst's emails

    def send(self, email: Email, delay: float) -> None:
        sending = self.api.sending(self.pool, delay) if delay else self._at_once
        self.api.outbox.add(email.id, sending.submit(send_email, self.api.smtp, email))

    def find(self, email_id: str) -> Tracked | None:
        return self.api.outbox.get(email_id, self.pool.scheduled)

    def stats(self) -> Stats:
        return self.pool.stats()


@dataclass(frozen=True)
class DemoApi:
    """The demo's endpoints, and what the page says is configured.

    Attributes:
        smtp: Where emails go.
        inbox: The embedded SMTP server's inbox, or None when `smtp` is a real server.
        threads: The pool's worker threads.
        drain_timeout: Seconds the pool drains for at shutdown.
        max_queue: Most emails waiting to be sent; beyond that a request is refused with
            503 and ``Retry-After``.
        server: What serves the app, as the page shows it ("FastAPI under uvicorn").
        dask_scheduler: Send the emails from the workers of the Dask cluster whose
            scheduler is at this address, instead of the pool's threads.
        refuse_share: The share of emails whose first attempt the embedded SMTP server
            refuses with a temporary 451 (for the page to say).
        outbox: The emails accepted, for ``GET /emails/{id}``.
    """

    smtp: SmtpSettings
    inbox: Inbox | None = None
    threads: int = 4
    drain_timeout: float = 25.0
    max_queue: int = 500
    server: str = ""
    dask_scheduler: str | None = None
    refuse_share: float = 0.0
    outbox: Outbox = field(default_factory=Outbox)

    def sending(self, pool: Background, delay: float = 0.0) -> Submitter:
        """`pool`'s ``submit`` for emails: retried as `RETRIES` says, `delay` s from now.

        An attempt's time limit is the SMTP timeout of each exchange (`SmtpSettings`): it
        ends the attempt, which is retried. No ``timeout=`` on top: the pool cannot stop a
        thread inside smtplib, so past it the email would count as failed, and not be
        retried, while its thread might still send it. (Also, for now, the pool logs a
        failed task that has ``timeout=`` only once the garbage collector frees it:
        `Planner.run` keeps the future in a reference cycle.)
        """
        return pool.using(
            retries=RETRYING.retries,
            retry_on=RETRYING.retry_on,
            backoff=RETRYING.backoff,
            backoff_max=RETRYING.backoff_max,
            delay=delay,
        )

    def sender(self, via: Background | Sender) -> Sender:
        """`via` as a `Sender`: a pool (FastAPI's, Flask's) becomes a `PoolSender`."""
        return PoolSender(self, via) if isinstance(via, Background) else via

    def post_email(self, via: Background | Sender, raw: bytes) -> Reply:
        """``POST /emails``: queue one email, or schedule it ``"delay"`` seconds from now;
        202 ``{"id"}``, or 4xx naming the field."""
        try:
            request = parse_email_request(raw)
        except InvalidPayload as invalid:
            return invalid.status, invalid.to_json()
        sender = self.sender(via)
        # The pool's max_queue bounds the queue, not the tasks waiting for their time.
        if request.delay and sender.stats().scheduled >= self.max_queue:
            return 503, too_many_scheduled(self.max_queue)
        email = Email(new_id(), self.smtp.sender, request.to, request.subject, request.body)
        try:
            sender.send(email, request.delay)
        except PoolClosed:
            return STOPPING
        except QueueFull:
            return 503, queue_full(self.max_queue, 1)
        return 202, {"id": email.id}

    def post_bulk(self, via: Background | Sender, raw: bytes) -> Reply:
        """``POST /emails/bulk``: queue `count` emails; 202 ``{"queued", "ids"}``."""
        try:
            request = parse_bulk_request(raw)
        except InvalidPayload as invalid:
            return invalid.status, invalid.to_json()
        ids: list[str] = []
        sender = self.sender(via)
        try:
            for email in self._burst(request):
                sender.send(email, 0.0)
                ids.append(email.id)
        except PoolClosed:
            return 503, {**STOPPING[1], "queued": len(ids), "ids": ids}
        except QueueFull:
            refused = request.count - len(ids)
            return 503, {**queue_full(self.max_queue, refused), "queued": len(ids), "ids": ids}
        return 202, {"queued": len(ids), "ids": ids}

    def _burst(self, request: BulkRequest) -> list[Email]:
        burst = new_id()[:6]
        body = (
            "This email is one of a burst sent by the background demo: one request "
            "queued them all, and the pool's worker threads send them.\n"
        )
        return [
            Email(
                new_id(),
                self.smtp.sender,
                request.to,
                f"Burst {burst}: {i} of {request.count}",
                body,
            )
            for i in range(1, request.count + 1)
        ]

    def get_email(self, via: Background | Sender, email_id: str) -> Reply:
        """``GET /emails/{id}``: where an accepted email is (`Tracked`), else 404."""
        tracked = self.sender(via).find(email_id)
        if tracked is None:
            return 404, {
                "error": "no email has this id: use an id that POST /emails or POST "
                f"/emails/bulk answered; the last {self.outbox.keep} accepted are kept"
            }
        return 200, tracked.to_json()

    def get_stats(self, via: Background | Sender) -> Reply:
        """``GET /stats``: the pool's counters (`background_core.Stats`) as JSON."""
        return 200, dataclasses.asdict(self.sender(via).stats())

    def get_inbox(self) -> Reply:
        """``GET /inbox``: what the embedded server received, newest first; else 404."""
        if self.inbox is None:
            return 404, {
                "error": f"no inbox: emails go to a real SMTP server ({self.smtp.display()}). "
                "Only the embedded server, used when no --smtp-url or SMTP_URL is given, "
                "keeps what it receives."
            }
        return 200, {
            "received": self.inbox.received,
            "kept": self.inbox.keep,
            "messages": [message.to_json() for message in self.inbox.messages()],
        }

    def get_page(self) -> str:
        """``GET /``: the page."""
        return page.render(self.about(), inbox=self.inbox is not None)

    def get_favicon(self) -> tuple[bytes, dict[str, str]]:
        """``GET /favicon.ico``: the page's icon, and the headers to answer it with."""
        return page.favicon(), {
            "Content-Type": page.FAVICON_TYPE,
            "Cache-Control": "public, max-age=86400",
        }

    def _pool(self) -> str:
        if self.dask_scheduler is None:
            return f"{self.threads} worker threads"
        return f"tasks sent to the Dask cluster at {self.dask_scheduler}"

    def about(self) -> list[tuple[str, str]]:
        """What is configured, as (label, value) rows."""
        if self.inbox is None:
            smtp = f"{self.smtp.display()} (a real server: no inbox here)"
        else:
            smtp = (
                f"embedded aiosmtpd server at {self.smtp.host}:{self.smtp.port}, "
                f"keeps the last {self.inbox.keep} emails"
            )
            if self.refuse_share:
                smtp += (
                    f"; refuses the first attempt of {self.refuse_share:.0%} of them with a "
                    "temporary 451 (--smtp-refuse-share)"
                )
        return [
            ("Server", self.server or "(in-process)"),
            ("Pool", self._pool()),
            (
                "Queue",
                f"at most {self.max_queue} emails wait; when it is full, a request is "
                f"answered 503 with Retry-After: {RETRY_AFTER} (try a burst of 1000)",
            ),
            ("SMTP", smtp),
            ("Sender", self.smtp.sender),
            (
                "Retries",
                f"{RETRIES} for a temporary failure (a 4xx reply, a connection refused or "
                f"dropped, a timeout), after {BACKOFF:g} s, then twice as long each time (at "
                f"most {BACKOFF_MAX:g} s, with jitter); a permanent one (5xx) fails at once. "
                f"Each SMTP exchange of an attempt may take {self.smtp.timeout:g} s",
            ),
            (
                "Stopping",
                f"Ctrl-C or SIGTERM: accepted emails are sent first, for up to "
                f"{self.drain_timeout:g} s; those whose time (a delay, a retry) comes "
                "later are not sent",
            ),
        ]
