"""Email over SMTP: where to send (`SmtpSettings`, from a URL), the message, the sending.

Both apps send with `send_email`, one SMTP session per email, from the pool's workers.
Nothing here logs: a failure raises, and the pool counts and logs it by task name and id,
never with the task's arguments (the message, the password). A temporary failure raises
`TemporarySmtpError`, one of the `RETRY_ON` types the apps retry.
"""

from __future__ import annotations

import functools
import secrets
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

Security = Literal["plain", "starttls", "tls"]

DEFAULT_SENDER = "background-demo@example.com"
MESSAGE_ID_DOMAIN = "background-demo.invalid"
URL_FORMS = (
    "smtp://[user:password@]host[:port], smtps://... for TLS from the start, "
    "smtp://...?starttls=true for STARTTLS; options: from=ADDRESS, cafile=PATH, timeout=SECONDS"
)
_PORTS: dict[Security, int] = {"plain": 25, "starttls": 587, "tls": 465}
_OPTIONS = ("starttls", "from", "cafile", "timeout")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send.

    Attributes:
        host: The SMTP server's host name or address.
        port: Its port.
        security: "plain", "starttls" (upgrade after connecting) or "tls" (from the start).
        username: Log in with this name, when given.
        password: The password (never shown: not in repr, nor in `display`).
        sender: The From address.
        cafile: Trust the CA certificates in this file instead of the system's.
        timeout: Seconds each SMTP operation may take.
    """

    host: str
    port: int
    security: Security = "plain"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = DEFAULT_SENDER
    cafile: str | None = None
    timeout: float = 10.0

    def display(self) -> str:
        """The settings as a URL to show, with the password masked."""
        scheme = "smtps" if self.security == "tls" else "smtp"
        user = "" if self.username is None else f"{self.username}:***@"
        tls = "?starttls=true" if self.security == "starttls" else ""
        return f"{scheme}://{user}{self.host}:{self.port}{tls}"


def parse_smtp_url(url: str) -> SmtpSettings:
    """Settings from a URL such as ``smtp://user:pass@host:587?starttls=true``.

    User and password are percent-decoded. Without a port: 25, 587 with STARTTLS, 465
    for ``smtps://``. Without ``from=``, the sender is the user name if it is an
    address, else `DEFAULT_SENDER`.

    Raises:
        ValueError: The URL is not one of `URL_FORMS`; the message never shows the password.
    """
    parts = urlsplit(url)
    shown = redact(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(f"SMTP URL {shown!r} must be one of: {URL_FORMS}")
    if not parts.hostname:
        raise ValueError(f"SMTP URL {shown!r} has no host; use {URL_FORMS}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"SMTP URL {shown!r} has a bad port; use {URL_FORMS}") from None
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = sorted(set(query) - set(_OPTIONS))
    if unknown:
        raise ValueError(f"SMTP URL {shown!r} has unknown options {unknown}; use {URL_FORMS}")
    starttls = _flag(query.get("starttls", "false"), "starttls", shown)
    if parts.scheme == "smtps" and starttls:
        raise ValueError(
            f"SMTP URL {shown!r}: smtps:// is TLS from the start; starttls applies to smtp://"
        )
    security: Security = "tls" if parts.scheme == "smtps" else "starttls" if starttls else "plain"
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    default_sender = username if username and "@" in username else DEFAULT_SENDER
    try:
        timeout = float(query.get("timeout", "10"))
    except ValueError:
        timeout = -1.0
    if not 0 < timeout < 3600:
        raise ValueError(f"SMTP URL {shown!r}: timeout must be a number of seconds, 0 to 3600")
    return SmtpSettings(
        host=parts.hostname,
        port=port or _PORTS[security],
        security=security,
        username=username,
        password=password,
        sender=query.get("from", default_sender),
        cafile=query.get("cafile"),
        timeout=timeout,
    )


def redact(url: str) -> str:
    """`url` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user_info, _, host = parts.netloc.rpartition("@")
    user = user_info.partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def _flag(text: str, name: str, shown: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError(f"SMTP URL {shown!r}: {name} must be true or false, got {text!r}")


class TemporarySmtpError(smtplib.SMTPResponseException):
    """The server answered with a temporary failure, a 4xx reply (busy, greylisting, a
    rate limit): the same email may go through later. `send_email` raises it in place
    of what smtplib raised, which is its ``__cause__``."""


RETRY_ON: tuple[type[Exception], ...] = (
    TemporarySmtpError,
    smtplib.SMTPServerDisconnected,
    ConnectionError,
    TimeoutError,
)
"""What `send_email` raises when another attempt may succeed: a 4xx reply, a connection
refused, reset or dropped, an SMTP operation that timed out. Anything else (a 5xx reply, a
refused login, a TLS error) would fail again the same way."""


@dataclass(frozen=True)
class Email:
    """One email to send. `id` becomes the local part of its Message-ID."""

    id: str
    sender: str
    to: str
    subject: str
    body: str


def new_id() -> str:
    """A fresh email id: 16 hex digits."""
    return secrets.token_hex(8)


def message_id(email_id: str) -> str:
    """The Message-ID header of the email with id `email_id`."""
    return f"<{email_id}@{MESSAGE_ID_DOMAIN}>"


def build_message(email: Email) -> EmailMessage:
    """The MIME message: UTF-8 anywhere, encoded as SMTP needs it.

    Raises:
        ValueError: A header value holds a line break.
    """
    message = EmailMessage()
    message["From"] = email.sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = message_id(email.id)
    message.set_content(email.body)
    return message


def send_email(settings: SmtpSettings, email: Email) -> None:
    """Send `email` in one SMTP session (the task both apps submit).

    Raises:
        TemporarySmtpError: The server answered 4xx: try again later (see `RETRY_ON`).
        OSError: The server cannot be reached, or TLS fails.
        smtplib.SMTPException: The server refused the login, the sender or the recipient.
    """
    message = build_message(email)
    try:
        with _connect(settings) as smtp:
            if settings.username is not None:
                smtp.login(settings.username, settings.password or "")
            smtp.send_message(message)
    except smtplib.SMTPResponseException as error:
        if _temporary(error.smtp_code):
            raise TemporarySmtpError(error.smtp_code, error.smtp_error) from error
        raise
    except smtplib.SMTPRecipientsRefused as error:  # every recipient, each with its reply
        replies = list(error.recipients.values())
        if replies and all(_temporary(code) for code, _ in replies):
            code, reply = replies[0]
            raise TemporarySmtpError(code, reply) from error
        raise


def _temporary(code: int) -> bool:
    return 400 <= code < 500


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    if settings.security == "tls":
        return smtplib.SMTP_SSL(
            settings.host,
            settings.port,
            _local_hostname(),
            timeout=settings.timeout,
            context=_tls_context(settings.cafile),
        )
    smtp = smtplib.SMTP(settings.host, settings.port, _local_hostname(), settings.timeout)
    if settings.security == "starttls":
        try:
            smtp.starttls(context=_tls_context(settings.cafile))
        except BaseException:
            smtp.close()
            raise
    return smtp


@functools.cache
def _local_hostname() -> str:
    # smtplib would look it up again for each connection (a DNS query).
    return socket.getfqdn()


@functools.cache
def _tls_context(cafile: str | None) -> ssl.SSLContext:
    # Loading the CA certificates takes tens of milliseconds: once per file.
    return ssl.create_default_context(cafile=cafile)
