"""`demo_app.mail`: SMTP URLs, sending over STARTTLS and SMTPS with a login, and which
failures are worth another attempt."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from smtplib import SMTPDataError, SMTPRecipientsRefused
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from demo_app.mail import (
    DEFAULT_SENDER,
    RETRY_ON,
    Email,
    SmtpSettings,
    TemporarySmtpError,
    parse_smtp_url,
    send_email,
)
from demo_app.sink import Sink

from .smtp_server import Recorder, free_port, smtp_server

# -- URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com", SmtpSettings("mail.example.com", 25)),
        (
            "smtp://u%40x.org:p%3As%40ss@mail.example.com:2525",
            SmtpSettings(
                "mail.example.com", 2525, username="u@x.org", password="p:s@ss", sender="u@x.org"
            ),
        ),
        (
            "smtp://user:pw@mail.example.com?starttls=true",
            SmtpSettings("mail.example.com", 587, "starttls", "user", "pw"),
        ),
        (
            "smtps://user:pw@mail.example.com",
            SmtpSettings("mail.example.com", 465, "tls", "user", "pw"),
        ),
        (
            "smtp://127.0.0.1:1025?from=me@example.com&timeout=3&cafile=/tmp/ca.pem&starttls=0",
            SmtpSettings(
                "127.0.0.1", 1025, sender="me@example.com", cafile="/tmp/ca.pem", timeout=3
            ),
        ),
    ],
)
def test_a_url_gives_the_settings(url: str, expected: SmtpSettings) -> None:
    assert parse_smtp_url(url) == expected


def test_the_default_sender_and_the_display_hide_nothing_but_the_password() -> None:
    settings = parse_smtp_url("smtp://user:hunter2@mail.example.com?starttls=yes")

    assert settings.sender == DEFAULT_SENDER
    assert settings.display() == "smtp://user:***@mail.example.com:587?starttls=true"
    assert "hunter2" not in repr(settings)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://user:hunter2@mail.example.com", "must be one of"),
        ("smtp://", "has no host"),
        ("smtp://user:hunter2@mail.example.com:99999", "bad port"),
        ("smtps://user:hunter2@mail.example.com?starttls=true", "applies to smtp://"),
        ("smtp://user:hunter2@mail.example.com?starttls=maybe", "starttls must be true or false"),
        ("smtp://user:hunter2@mail.example.com?tls=1", "unknown options ['tls']"),
        ("smtp://user:hunter2@mail.example.com?timeout=-1", "timeout must be"),
        ("smtp://user:hunter2@mail.example.com?timeout=soon", "timeout must be"),
    ],
)
def test_a_bad_url_is_refused_without_showing_the_password(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=r"^SMTP URL") as raised:
        parse_smtp_url(url)

    assert says in str(raised.value)
    assert "hunter2" not in str(raised.value)


# -- TLS and login --------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key (made with openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate: apt-get install openssl")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key


class Logins:
    """An aiosmtpd authenticator that accepts one user and remembers each attempt."""

    def __init__(self, user: str, password: str) -> None:
        self.expected = LoginPassword(user.encode(), password.encode())
        self.attempts: list[LoginPassword] = []

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        self.attempts.append(auth_data)
        return AuthResult(success=auth_data == self.expected, handled=False)


@pytest.fixture(params=["starttls", "tls"])
def tls_server(
    request: pytest.FixtureRequest, certificate: tuple[Path, Path]
) -> Iterator[tuple[SmtpSettings, Recorder, Logins]]:
    """A server that requires TLS (STARTTLS or from the start) and a login."""
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins = Logins("mailer", "s3cret")
    tls: dict[str, Any] = (
        {"tls_context": context, "require_starttls": True, "auth_required": True}
        if request.param == "starttls"
        # aiosmtpd sees TLS only when it came by STARTTLS: tell it AUTH is fine without.
        else {"ssl_context": context, "auth_require_tls": False}
    )
    with smtp_server(
        authenticator=logins,
        auth_exclude_mechanism=["LOGIN"],  # smtplib would retry a refused login with it
        **tls,
    ) as server:
        settings = SmtpSettings(
            "127.0.0.1",
            server.port,
            request.param,
            username="mailer",
            password="s3cret",
            sender="mailer@example.com",
            cafile=str(cert),
        )
        yield settings, server.recorder, logins


def test_send_over_tls_with_a_login(tls_server: tuple[SmtpSettings, Recorder, Logins]) -> None:
    settings, recorder, logins = tls_server

    send_email(settings, Email("0123abcd", settings.sender, "to@example.com", "Über TLS", "ok\n"))

    [arrived] = recorder.arrived()
    assert (arrived.subject, arrived.body, arrived.rcpt_tos) == (
        "Über TLS",
        "ok\n",
        ("to@example.com",),
    )
    assert logins.attempts == [logins.expected]


def test_a_wrong_password_fails(tls_server: tuple[SmtpSettings, Recorder, Logins]) -> None:
    settings, recorder, _ = tls_server
    wrong = SmtpSettings(**{**vars(settings), "password": "nope"})

    with pytest.raises(Exception, match="535") as failed:
        send_email(wrong, Email("1", settings.sender, "to@example.com", "s", "b"))
    assert recorder.arrived() == []
    assert not isinstance(failed.value, RETRY_ON)  # it would fail again the same way


def test_an_untrusted_certificate_fails(tls_server: tuple[SmtpSettings, Recorder, Logins]) -> None:
    settings, recorder, logins = tls_server
    system_trust = SmtpSettings(**{**vars(settings), "cafile": None})

    with pytest.raises(ssl.SSLCertVerificationError):
        send_email(system_trust, Email("1", settings.sender, "to@example.com", "s", "b"))
    assert recorder.arrived() == []
    assert logins.attempts == []


# -- temporary and permanent failures ---------------------------------------------------


class Replies:
    """An aiosmtpd handler that answers RCPT and DATA as told."""

    def __init__(self, rcpt: str, data: str) -> None:
        self.rcpt = rcpt
        self.data = data

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.rcpt.startswith("250"):
            envelope.rcpt_tos.append(address)
        return self.rcpt

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self.data


class Replying(Sink):
    """The demo's `Sink`, answering with `Replies`."""

    def __init__(self, replies: Replies) -> None:
        super().__init__()
        self.replies = replies

    def protocol(self, loop: asyncio.AbstractEventLoop) -> SMTP:
        return SMTP(self.replies, hostname="localhost", loop=loop)


OK = "250 OK"


@pytest.mark.parametrize(
    ("rcpt", "data", "raised", "cause"),
    [
        ("451 4.7.1 Greylisted, try again later", OK, TemporarySmtpError, SMTPRecipientsRefused),
        ("550 5.1.1 No such user", OK, SMTPRecipientsRefused, None),
        (OK, "452 4.3.1 Insufficient storage", TemporarySmtpError, SMTPDataError),
        (OK, "554 5.7.1 Rejected", SMTPDataError, None),
    ],
    ids=["rcpt-4xx", "rcpt-5xx", "data-4xx", "data-5xx"],
)
def test_a_4xx_reply_is_worth_another_attempt_and_a_5xx_one_is_not(
    rcpt: str, data: str, raised: type[Exception], cause: type[Exception] | None
) -> None:
    server = Replying(Replies(rcpt, data)).start()
    try:
        with pytest.raises(raised) as failed:
            send_email(
                SmtpSettings(server.host, server.port),
                Email("1", DEFAULT_SENDER, "to@example.com", "s", "b"),
            )
    finally:
        server.stop()

    assert type(failed.value) is raised
    assert isinstance(failed.value, RETRY_ON) == (cause is not None)
    if cause is not None:
        assert isinstance(failed.value.__cause__, cause)
        assert failed.value.smtp_code == int((rcpt if rcpt != OK else data)[:3])


def test_a_server_that_cannot_be_reached_is_worth_another_attempt() -> None:
    with pytest.raises(RETRY_ON):
        send_email(
            SmtpSettings("127.0.0.1", free_port(), timeout=2),
            Email("1", DEFAULT_SENDER, "to@example.com", "s", "b"),
        )
