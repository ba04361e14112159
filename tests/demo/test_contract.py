"""The demo's HTTP API, one suite run against the three apps (FastAPI, Flask, Django) in
process.

Delivery is checked at a real SMTP server the test starts (aiosmtpd on 127.0.0.1). Django's
settings are the process's: each Django app runs under the demo's settings put over them
with ``override_settings``, as Django's own tests do (tests/django/'s conftest may have
configured them first, in the same run).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from background_core import Background
from demo_app import fastapi_app, flask_app
from demo_app.api import DemoApi
from demo_app.mail import SmtpSettings
from demo_app.sink import Sink
from tests.helpers import wait_until

from .smtp_server import SmtpServer, free_port, smtp_server

FRAMEWORKS = ("fastapi", "flask", "django")
SENDER = "demo-sender@example.com"
STATS_KEYS = {
    "name",
    "workers",
    "queued",
    "scheduled",
    "running",
    "submitted",
    "succeeded",
    "failed",
    "cancelled",
    "retried",
    "rejected",
}


@dataclass(frozen=True)
class Reply:
    status: int
    json: Any
    text: str
    content_type: str


@dataclass(frozen=True)
class Client:
    """The same calls against either app."""

    request: Callable[[str, str, bytes | None], Reply]

    def post(self, path: str, payload: object) -> Reply:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.request("POST", path, raw)

    def get(self, path: str) -> Reply:
        return self.request("GET", path, None)

    def stats(self) -> dict[str, Any]:
        reply = self.get("/stats")
        assert reply.status == 200, reply
        stats: dict[str, Any] = reply.json
        return stats


@contextmanager
def django_app_for(api: DemoApi) -> Iterator[Any]:
    """The Django app of `api`, under the demo's settings for it (`settings_for`) for the
    block: Django is set up with them first if nothing set it up yet."""
    from django.conf import settings
    from django.test import override_settings

    from demo_app import django_app

    demo = django_app.DjangoDemo(api)
    project = django_app.settings_for(demo)
    if not settings.configured:
        django_app.configure(api)
    # INSTALLED_APPS and DATABASES stay (Django would reload its apps, and warns about
    # the databases): the demo's apps must be there already, and it uses no database.
    assert set(project["INSTALLED_APPS"]) <= set(settings.INSTALLED_APPS)
    served = {
        name: project[name]
        for name in ("ALLOWED_HOSTS", "MIDDLEWARE", "ROOT_URLCONF", "TASKS", "USE_TZ")
    }
    with override_settings(**served, **{django_app.DEMO_SETTING: demo}):
        yield django_app.create_app(demo)


@contextmanager
def serving(framework: str, api: DemoApi) -> Iterator[Client]:
    """The app of `framework` serving `api`, with its pool shut down at the end."""
    headers = {"Content-Type": "application/json"}
    if framework in ("fastapi", "django"):
        with ExitStack() as stack:
            if framework == "fastapi":
                app = fastapi_app.create_app(api)
            else:
                app = stack.enter_context(django_app_for(api))
            # Its lifespan runs: the pool starts, and drains at the end.
            client = stack.enter_context(TestClient(app))

            def asgi_request(method: str, path: str, raw: bytes | None) -> Reply:
                response = client.request(method, path, content=raw, headers=headers)
                is_json = response.headers["content-type"].startswith("application/json")
                return Reply(
                    response.status_code,
                    response.json() if is_json else None,
                    response.text,
                    response.headers["content-type"],
                )

            yield Client(asgi_request)
        return
    app = flask_app.create_app(api)
    client = app.test_client()

    def flask_request(method: str, path: str, raw: bytes | None) -> Reply:
        response = client.open(path, method=method, data=raw, headers=headers)
        return Reply(
            response.status_code,
            response.get_json(silent=True),
            response.get_data(as_text=True),
            response.content_type or "",
        )

    try:
        yield Client(flask_request)
    finally:
        flask_app.pool_of(app).shutdown()


def demo_api(smtp: SmtpSettings, **options: Any) -> DemoApi:
    return DemoApi(smtp, threads=2, drain_timeout=10, server="tests", **options)


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    framework: str = request.param
    return framework


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server(refuse=frozenset({"nobody@example.com"})) as server:
        yield server


@pytest.fixture
def client(framework: str, smtp: SmtpServer) -> Iterator[Client]:
    with serving(framework, demo_api(SmtpSettings("127.0.0.1", smtp.port, sender=SENDER))) as c:
        yield c


# -- POST /emails --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to", "subject", "body"),
    [
        ("reader@example.com", "Hello", "Plain ASCII.\n"),
        (
            "reader@example.com",
            "Grüße aus Köln, 你好 ✉",
            "Héllo wörld,\nthis is ünïcode: 日本語, emoji 📬, and a long line "
            + "é" * 120
            + "\nend",
        ),
        ("zoë@exämple.com", "Ünïcode recipient", "Delivered with SMTPUTF8.\n"),
    ],
    ids=["ascii", "utf8", "utf8-address"],
)
def test_an_email_arrives_intact(
    client: Client, smtp: SmtpServer, to: str, subject: str, body: str
) -> None:
    reply = client.post("/emails", {"to": to, "subject": subject, "body": body})

    assert reply.status == 202, reply
    assert set(reply.json) == {"id"}
    email_id = reply.json["id"]
    assert re.fullmatch(r"[0-9a-f]{16}", email_id)
    [arrived] = smtp.recorder.wait_for(1, timeout=10)
    assert arrived.mail_from == SENDER
    assert arrived.rcpt_tos == (to,)
    assert arrived.sender == SENDER
    assert arrived.to == to
    assert arrived.subject == subject
    # A MIME text part ends with a line break: one is added when the body has none.
    assert arrived.body == (body if body.endswith("\n") else body + "\n")
    assert arrived.message_id == f"<{email_id}@background-demo.invalid>"


def test_post_answers_before_the_email_is_sent(client: Client, smtp: SmtpServer) -> None:
    smtp.recorder.hold()
    reply = client.post("/emails", {"to": "a@example.com", "subject": "s", "body": "b"})
    assert reply.status == 202
    stats = client.stats()
    assert stats["succeeded"] == 0
    assert stats["queued"] + stats["running"] == 1
    smtp.recorder.release()
    assert len(smtp.recorder.wait_for(1, timeout=10)) == 1


# -- validation ---------------------------------------------------------------------

GOOD = {"to": "a@example.com", "subject": "s", "body": "b"}


@pytest.mark.parametrize(
    ("path", "payload", "expected"),
    [
        ("/emails", {"subject": "s", "body": "b"}, (422, "to", "to is required")),
        ("/emails", {"to": "a@example.com", "body": "b"}, (422, "subject", "subject is required")),
        ("/emails", {"to": "a@example.com", "subject": "s"}, (422, "body", "body is required")),
        ("/emails", {**GOOD, "to": "not-an-address"}, (422, "to", "not a valid email address")),
        ("/emails", {**GOOD, "to": "a@b@example.com"}, (422, "to", "not a valid email address")),
        ("/emails", {**GOOD, "to": "a@localhost"}, (422, "to", "not a valid email address")),
        ("/emails", {**GOOD, "to": 42}, (422, "to", "to must be an email address")),
        ("/emails", {**GOOD, "subject": ["s"]}, (422, "subject", "subject must be a string")),
        ("/emails", {**GOOD, "subject": "a\r\nBcc: x@example.com"}, (422, "subject", "one line")),
        ("/emails", {**GOOD, "body": "x" * 20_001}, (422, "body", "at most 20000")),
        ("/emails", {**GOOD, "delay": -7}, (422, "delay", "from 0 to 300")),
        ("/emails", {**GOOD, "delay": 300.5}, (422, "delay", "from 0 to 300")),
        ("/emails", {**GOOD, "delay": "10"}, (422, "delay", "a number of seconds")),
        ("/emails", {**GOOD, "delay": True}, (422, "delay", "a number of seconds")),
        ("/emails", {**GOOD, "delay": None}, (422, "delay", "a number of seconds")),
        ("/emails", {**GOOD, "delay": float("nan")}, (422, "delay", "a number of seconds")),
        ("/emails", {**GOOD, "delay": float("inf")}, (422, "delay", "a number of seconds")),
        ("/emails", b"not json", (400, None, "JSON object")),
        ("/emails", [GOOD], (400, None, "JSON object")),
        ("/emails/bulk", {"to": "a@example.com"}, (422, "count", "count is required")),
        ("/emails/bulk", {"count": 3}, (422, "to", "to is required")),
        ("/emails/bulk", {"to": "a@example.com", "count": 0}, (422, "count", "1 to 1000")),
        ("/emails/bulk", {"to": "a@example.com", "count": 1001}, (422, "count", "1 to 1000")),
        ("/emails/bulk", {"to": "a@example.com", "count": "5"}, (422, "count", "1 to 1000")),
        ("/emails/bulk", {"to": "a@example.com", "count": True}, (422, "count", "1 to 1000")),
        ("/emails/bulk", {"to": "a@example.com", "count": 2.5}, (422, "count", "1 to 1000")),
        ("/emails/bulk", {"to": "nope", "count": 3}, (422, "to", "not a valid email address")),
        ("/emails/bulk", b"{", (400, None, "JSON object")),
    ],
)
def test_a_bad_request_is_refused_naming_the_field(
    client: Client, path: str, payload: object, expected: tuple[int, str | None, str]
) -> None:
    status, field, says = expected
    reply = client.post(path, payload)

    assert reply.status == status, reply
    assert reply.json["field"] == field
    assert says in reply.json["error"]
    if field is not None:
        assert reply.json["error"].startswith(field)
    assert client.stats()["submitted"] == 0


def test_addresses_are_normalized_as_email_validator_does(client: Client, smtp: SmtpServer) -> None:
    reply = client.post("/emails", {**GOOD, "to": "Reader@EXAMPLE.com"})
    assert reply.status == 202
    [arrived] = smtp.recorder.wait_for(1, timeout=10)
    assert arrived.rcpt_tos == ("Reader@example.com",)


def test_a_delayed_email_is_scheduled_then_sent(client: Client, smtp: SmtpServer) -> None:
    reply = client.post("/emails", {**GOOD, "delay": 0.5})
    assert reply.status == 202, reply
    assert set(reply.json) == {"id"}
    email_id = reply.json["id"]
    waiting = client.get(f"/emails/{email_id}").json
    stats = client.stats()

    assert waiting["status"] == "scheduled"
    assert waiting["attempt"] == 1
    assert 0 <= waiting["due_in"] <= 0.5
    assert (stats["scheduled"], stats["queued"]) == (1, 0)
    [arrived] = smtp.recorder.wait_for(1, timeout=10)
    assert arrived.message_id == f"<{email_id}@background-demo.invalid>"
    wait_until(
        lambda: client.get(f"/emails/{email_id}").json["status"] == "sent", "sent", timeout=10
    )


def test_a_delayed_email_is_refused_once_max_queue_wait_for_their_time(
    framework: str, smtp: SmtpServer
) -> None:
    settings = SmtpSettings("127.0.0.1", smtp.port, sender=SENDER)
    with serving(framework, demo_api(settings, max_queue=2)) as client:
        for _ in range(2):
            assert client.post("/emails", {**GOOD, "delay": 300}).status == 202
        refused = client.post("/emails", {**GOOD, "delay": 300})
        now = client.post("/emails", {**GOOD, "delay": 0})  # no delay: it is queued

        assert refused.status == 503, refused
        assert refused.json["error"].startswith("2 emails are already waiting for their time")
        assert now.status == 202, now
        assert len(smtp.recorder.wait_for(1, timeout=10)) == 1
        stats = client.stats()
        assert (stats["scheduled"], stats["submitted"], stats["rejected"]) == (2, 3, 0)


# -- POST /emails/bulk ----------------------------------------------------------------


def test_a_burst_queues_count_emails_that_all_arrive(client: Client, smtp: SmtpServer) -> None:
    reply = client.post("/emails/bulk", {"to": "burst@example.com", "count": 25})

    assert reply.status == 202, reply
    assert reply.json["queued"] == 25
    assert len(set(reply.json["ids"])) == 25
    arrived = smtp.recorder.wait_for(25, timeout=20)
    assert len(arrived) == 25
    assert {a.rcpt_tos for a in arrived} == {("burst@example.com",)}
    subjects = {a.subject for a in arrived}
    [burst] = {subject.split(":")[0] for subject in subjects}
    assert subjects == {f"{burst}: {i} of 25" for i in range(1, 26)}
    assert re.fullmatch(r"Burst [0-9a-f]{6}", burst)
    assert {a.message_id for a in arrived} == {
        f"<{i}@background-demo.invalid>" for i in reply.json["ids"]
    }


# -- GET /stats ---------------------------------------------------------------------


def test_stats_count_what_the_pool_did(client: Client, smtp: SmtpServer) -> None:
    before = client.stats()
    assert set(before) == STATS_KEYS
    assert before["workers"] == 2
    assert before["submitted"] == 0

    for i in range(3):
        assert client.post("/emails", {**GOOD, "subject": f"n{i}"}).status == 202
    assert client.post("/emails/bulk", {"to": "a@example.com", "count": 4}).status == 202
    wait_until(lambda: client.stats()["succeeded"] == 7, "7 emails sent", timeout=20)

    after = client.stats()
    assert after["submitted"] == 7
    assert after["queued"] == after["running"] == after["failed"] == 0
    assert len(smtp.recorder.arrived()) == 7


FAILURE_LOGGED = {
    # The pool logs a failed task (its last attempt) on logger "background".
    "fastapi": ("background", r"task 'send_email' \(id \d+\)"),
    "flask": ("background", r"task 'send_email' \(id \d+\)"),
    # Django's own task_finished receiver logs a FAILED result: logger "django.tasks", or
    # "django_tasks" with the backport (Django 5.2).
    "django": (
        "django_tasks" if importlib.util.find_spec("django.tasks") is None else "django.tasks",
        r"Task id=[0-9a-f]{32} path=demo_app\.django_views\.send_email state=FAILED",
    ),
}


def test_failed_sends_are_counted_and_logged_without_body_or_password(
    framework: str, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    logger, logged = FAILURE_LOGGED[framework]
    caplog.set_level(logging.ERROR, logger=logger)
    down = SmtpSettings(
        "127.0.0.1", free_port(), username="mailer", password="pa55-w0rd-xyz", sender=SENDER
    )
    up = SmtpSettings("127.0.0.1", smtp.port, sender=SENDER)
    secret_body = "the-secret-body-text"
    # One app after the other (Django's settings are the process's).
    with serving(framework, demo_api(down)) as to_down:
        # The server is down: each attempt's connection is refused, until the retries
        # run out.
        assert to_down.post("/emails", {**GOOD, "body": secret_body}).status == 202
        wait_until(
            lambda: to_down.stats()["failed"] == 1, "the send to a closed port failing", timeout=10
        )
        assert to_down.stats()["retried"] == 3
    with serving(framework, demo_api(up)) as to_up:
        # The server refuses the recipient: no retry.
        refused = {**GOOD, "to": "nobody@example.com", "body": secret_body}
        assert to_up.post("/emails", refused).status == 202
        wait_until(
            lambda: to_up.stats()["failed"] == 1, "the refused recipient failing", timeout=10
        )
        stats = to_up.stats()
        assert (stats["succeeded"], stats["retried"]) == (0, 0)

    records = [r for r in caplog.records if r.name == logger and r.levelno >= logging.ERROR]
    assert len(records) == 2, [r.getMessage() for r in records]
    texts = [logging.Formatter().format(record) for record in records]  # and tracebacks
    for text in texts:
        assert re.search(logged, text), text
        assert secret_body not in text
        assert "pa55-w0rd-xyz" not in text
    assert "ConnectionRefusedError" in texts[0]
    assert "SMTPRecipientsRefused" in texts[1]
    assert smtp.recorder.arrived() == []


# -- GET /inbox and GET / -------------------------------------------------------------


def test_the_inbox_shows_what_the_embedded_server_received(framework: str) -> None:
    sink = Sink().start()
    try:
        api = demo_api(SmtpSettings(sink.host, sink.port, sender=SENDER), inbox=sink.inbox)
        with serving(framework, api) as client:
            first = client.post("/emails", {**GOOD, "subject": "first ✉", "body": "één\n"})
            wait_until(lambda: sink.inbox.received == 1, "the first email", timeout=10)
            second = client.post("/emails", {**GOOD, "subject": "second"})
            wait_until(lambda: sink.inbox.received == 2, "the second email", timeout=10)

            reply = client.get("/inbox")
    finally:
        sink.stop()

    assert reply.status == 200
    assert reply.json["received"] == 2
    assert reply.json["kept"] == 100
    newest, oldest = reply.json["messages"]
    assert newest["subject"] == "second"
    assert newest["message_id"] == f"<{second.json['id']}@background-demo.invalid>"
    assert oldest["subject"] == "first ✉"
    assert oldest["body"] == "één\n"
    assert oldest["from"] == SENDER
    assert oldest["to"] == ["a@example.com"]
    assert oldest["message_id"] == f"<{first.json['id']}@background-demo.invalid>"


def test_the_inbox_is_404_with_a_real_server(client: Client, smtp: SmtpServer) -> None:
    reply = client.get("/inbox")

    assert reply.status == 404
    assert f"smtp://127.0.0.1:{smtp.port}" in reply.json["error"]
    assert "--smtp-url" in reply.json["error"]


def test_the_page_has_the_form_the_stats_and_the_configuration(client: Client) -> None:
    reply = client.get("/")

    assert reply.status == 200
    assert reply.content_type.startswith("text/html")
    for element in ('id="send-form"', 'id="remind"', 'id="burst"', 'id="inbox"'):
        assert element in reply.text
    for tile in ("queued", "scheduled", "running", "sent", "retried", "failed"):
        assert f'id="stat-{tile}"' in reply.text
    assert "2 worker threads" in reply.text
    assert "3 for a temporary failure (a 4xx reply" in reply.text
    assert "up to 10 s" in reply.text
    assert 'data-inbox="false"' in reply.text


# -- framework-free -------------------------------------------------------------------


def test_a_stopping_server_answers_503() -> None:
    api = demo_api(SmtpSettings("127.0.0.1", free_port()))
    pool = Background(1, name="closed")
    pool.shutdown()

    assert api.post_email(pool, b'{"to": "a@example.com", "subject": "s", "body": "b"}')[0] == 503
    status, payload = api.post_bulk(pool, b'{"to": "a@example.com", "count": 3}')
    assert (status, payload["queued"]) == (503, 0)


def test_a_full_queue_answers_503_with_retry_after_and_counts_what_it_refused(
    framework: str, smtp: SmtpServer
) -> None:
    settings = SmtpSettings("127.0.0.1", smtp.port, sender=SENDER)
    with serving(framework, demo_api(settings, max_queue=5)) as client:
        page = client.get("/")
        assert "at most 5 emails wait; when it is full, a request is answered 503" in page.text
        reply = client.post("/emails/bulk", {"to": "burst@example.com", "count": 1000})
        assert reply.status == 503, reply
        queued = reply.json["queued"]
        assert 5 <= queued < 1000
        assert reply.json["error"] == (
            f"the queue is full: 5 emails are waiting to be sent, so {1000 - queued} were "
            "refused. Retry in 1 s."
        )
        assert len(reply.json["ids"]) == queued
        stats = client.stats()
        assert (stats["submitted"], stats["rejected"]) == (queued, 1)
        assert len(smtp.recorder.wait_for(queued, timeout=20)) == queued
