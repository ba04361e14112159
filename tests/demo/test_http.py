"""The demo's HTTP surface as `make demo` serves it, on 127.0.0.1: FastAPI under uvicorn,
Flask under gunicorn and Django under uvicorn answer alike. Emails go to the test's own SMTP
server."""

from __future__ import annotations

import http.client
import json
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Any

import pytest

from demo_app.api import BACKOFF, RETRIES
from demo_app.mail import message_id
from demo_app.payloads import MAX_BODY, MAX_DELAY, MAX_REQUEST_BYTES
from tests.helpers import wait_until

from .demo_process import DemoProcess, running_demo
from .smtp_server import SmtpServer, smtp_server

FRAMEWORKS = ("fastapi", "flask", "django")
GOOD = {"to": "reader@example.com", "subject": "Hello", "body": "Hi.\n"}
REFUSED = "nobody@example.com"  # the test's SMTP server refuses this recipient (550)
DEFERRED = "later@example.com"  # it refuses the first attempt of each email to this one (451)


# What a failed email's log record says: the pool's ERROR, or for Django, Django's own
# receiver's (logger django.tasks, or django_tasks with the backport).
FAILURE_LOGGED = {
    "fastapi": "task 'send_email' (id ",
    "flask": "task 'send_email' (id ",
    "django": "path=demo_app.django_views.send_email state=FAILED",
}


@dataclass(frozen=True)
class Served:
    """The demo, and the SMTP server it sends to."""

    framework: str
    demo: DemoProcess
    smtp: SmtpServer


@pytest.fixture(scope="module", params=FRAMEWORKS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One demo per framework for the whole module, with 2 worker threads."""
    framework: str = request.param
    with (
        smtp_server(refuse=frozenset({REFUSED}), defer=frozenset({DEFERRED})) as smtp,
        running_demo(
            tmp_path_factory.mktemp(framework),
            framework,
            "--smtp-url",
            smtp.url,
            "--threads",
            "2",
        ) as demo,
    ):
        yield Served(framework, demo, smtp)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        assert self.headers["Content-Type"] == "application/json", self
        return json.loads(self.body)


def exchange(
    demo: DemoProcess, method: str, path: str, body: bytes | None = None, **headers: str
) -> Answer:
    """One request, as sent (no header added but Host and, with a body, Content-Length)."""
    conn = http.client.HTTPConnection("127.0.0.1", demo.port, timeout=10)
    try:
        conn.request(method, path, body, {k.replace("_", "-"): v for k, v in headers.items()})
        response = conn.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        conn.close()


def status_of(demo: DemoProcess, email_id: str) -> dict[str, Any]:
    """``GET /emails/{id}``'s answer, which must be 200."""
    answer = exchange(demo, "GET", f"/emails/{email_id}")
    assert answer.status == 200, answer
    found: dict[str, Any] = answer.json()
    return found


def post_email(demo: DemoProcess, payload: dict[str, object]) -> str:
    """Send one email; its id."""
    answer = exchange(
        demo, "POST", "/emails", json.dumps(payload).encode(), Content_Type="application/json"
    )
    assert answer.status == 202, answer
    email_id: str = answer.json()["id"]
    return email_id


def wait_for_status(demo: DemoProcess, email_id: str, status: str) -> dict[str, Any]:
    """Poll ``GET /emails/{id}`` until the email has `status` (10 s at most)."""
    wait_until(lambda: status_of(demo, email_id)["status"] == status, f"email {status}", timeout=10)
    return status_of(demo, email_id)


# -- GET /emails/{id} -----------------------------------------------------------------


def test_an_accepted_email_is_found_by_its_id_queued_sending_then_sent(served: Served) -> None:
    demo, smtp = served.demo, served.smtp
    smtp.recorder.hold()  # the SMTP server keeps each email waiting at DATA
    try:
        first, second = post_email(demo, GOOD), post_email(demo, GOOD)
        wait_for_status(demo, first, "sending")
        wait_for_status(demo, second, "sending")
        third = post_email(demo, GOOD)  # both worker threads are busy
        assert status_of(demo, third) == {"id": third, "status": "queued", "error": None}
    finally:
        smtp.recorder.release()

    for email_id in (first, second, third):
        assert wait_for_status(demo, email_id, "sent") == {
            "id": email_id,
            "status": "sent",
            "error": None,
        }


def test_a_failed_email_says_failed_with_the_error_type_and_is_still_logged(
    served: Served,
) -> None:
    logged = served.demo.output().count("SMTPRecipientsRefused")
    email_id = post_email(served.demo, {**GOOD, "to": REFUSED})

    assert wait_for_status(served.demo, email_id, "failed") == {
        "id": email_id,
        "status": "failed",
        "error": "SMTPRecipientsRefused",
    }
    # Looking the email up does not take its failure from the pool, which logs it.
    wait_until(
        lambda: served.demo.output().count("SMTPRecipientsRefused") > logged,
        "the failure logged",
        timeout=10,
    )
    assert FAILURE_LOGGED[served.framework] in served.demo.output()


def test_every_email_of_a_burst_is_found_by_its_id(served: Served) -> None:
    answer = exchange(
        served.demo,
        "POST",
        "/emails/bulk",
        json.dumps({"to": "burst@example.com", "count": 5}).encode(),
        Content_Type="application/json",
    )
    assert answer.status == 202, answer

    for email_id in answer.json()["ids"]:
        assert wait_for_status(served.demo, email_id, "sent")["id"] == email_id


@pytest.mark.parametrize("email_id", ["0123456789abcdef", "not-an-id", "%3Cb%3Ehi"])
def test_an_unknown_id_is_404_naming_where_ids_come_from(served: Served, email_id: str) -> None:
    answer = exchange(served.demo, "GET", f"/emails/{email_id}")

    assert answer.status == 404, answer
    error = answer.json()["error"]
    assert "POST /emails" in error
    assert email_id not in error
    assert "<b>" not in error


# -- retries and delays -------------------------------------------------------------


def statuses_until(demo: DemoProcess, email_id: str, end: str) -> list[dict[str, Any]]:
    """Each distinct answer of ``GET /emails/{id}`` (polled without pause) until the email
    has the status `end` (10 s at most), in order."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while not seen or seen[-1]["status"] != end:
        assert time.monotonic() < deadline, f"email not {end} after 10 s: {seen}"
        found = status_of(demo, email_id)
        if not seen or {**found, "due_in": 0} != {**seen[-1], "due_in": 0}:
            seen.append(found)
    return seen


def retry_warnings(output: str) -> list[str]:
    """The WARNING of each retry: the pool's, or the Django app's own in its words (the
    email's id, where the pool names its task's), in pool 'django'."""
    return re.findall(
        r"task 'send_email' \((?:id \d+|email [0-9a-f]{16})\) in pool '(?:demo_app|django)' "
        r"failed on attempt .*",
        output,
    )


def test_an_email_refused_for_now_is_retried_and_sent(served: Served) -> None:
    demo, smtp = served.demo, served.smtp
    before = demo.stats()
    email_id = post_email(demo, {**GOOD, "to": DEFERRED})

    seen = statuses_until(demo, email_id, "sent")

    statuses = [found["status"] for found in seen]
    assert statuses[-1] == "sent"
    assert "retrying" in statuses, seen
    [retrying] = [found for found in seen if found["status"] == "retrying"]
    assert retrying["attempt"] == 2
    assert 0 <= retrying["due_in"] <= BACKOFF
    assert seen[-1] == {"id": email_id, "status": "sent", "error": None}
    assert smtp.recorder.attempts().count(message_id(email_id)) == 2  # refused, then taken
    assert [a.message_id for a in smtp.recorder.arrived()].count(message_id(email_id)) == 1
    after = demo.stats()
    assert after["retried"] == before["retried"] + 1
    assert after["succeeded"] == before["succeeded"] + 1
    assert after["failed"] == before["failed"]
    wait_until(lambda: retry_warnings(demo.output()), "the retry logged", timeout=10)
    assert (
        f"failed on attempt 1 of {RETRIES + 1} (TemporarySmtpError); retrying in"
        in (retry_warnings(demo.output())[-1])
    )


def test_an_email_refused_for_good_fails_at_once_without_a_retry(served: Served) -> None:
    demo = served.demo
    before = demo.stats()
    warned = len(retry_warnings(demo.output()))
    email_id = post_email(demo, {**GOOD, "to": REFUSED})

    seen = statuses_until(demo, email_id, "failed")

    assert {found["status"] for found in seen} <= {"queued", "sending", "failed"}, seen
    assert seen[-1]["error"] == "SMTPRecipientsRefused"  # a 550: no TemporarySmtpError
    after = demo.stats()
    assert after["retried"] == before["retried"]
    assert after["failed"] == before["failed"] + 1
    assert len(retry_warnings(demo.output())) == warned


def test_a_delayed_email_is_scheduled_then_sent_no_earlier(served: Served) -> None:
    demo, smtp = served.demo, served.smtp
    delay = 2
    posted = time.monotonic()
    email_id = post_email(demo, {**GOOD, "subject": "Reminder", "delay": delay})
    waiting = status_of(demo, email_id)
    stats = demo.stats()

    assert waiting["status"] == "scheduled", waiting
    assert waiting["attempt"] == 1
    assert 0 < waiting["due_in"] <= delay
    assert stats["scheduled"] >= 1
    assert message_id(email_id) not in smtp.recorder.attempts()
    assert wait_for_status(demo, email_id, "sent")["error"] is None
    assert time.monotonic() - posted >= delay
    assert smtp.recorder.attempts().count(message_id(email_id)) == 1


@pytest.mark.parametrize("delay", [-7, MAX_DELAY + 0.5, "nine", True, None])
def test_a_bad_delay_is_422_naming_the_field_and_not_its_value(
    served: Served, delay: object
) -> None:
    submitted = served.demo.stats()["submitted"]
    answer = exchange(
        served.demo,
        "POST",
        "/emails",
        json.dumps({**GOOD, "delay": delay}).encode(),
        Content_Type="application/json",
    )

    assert answer.status == 422, answer
    assert answer.json() == {
        "error": f"delay must be a number of seconds from 0 to {MAX_DELAY}",
        "field": "delay",
    }
    assert served.demo.stats()["submitted"] == submitted


# -- GET /favicon.ico and GET / -------------------------------------------------------


def test_the_favicon_is_an_svg_the_page_links_to(served: Served) -> None:
    icon = exchange(served.demo, "GET", "/favicon.ico")
    page = exchange(served.demo, "GET", "/")

    assert icon.status == 200, icon
    assert icon.headers["Content-Type"] == "image/svg+xml"
    assert icon.body.startswith(b"<svg ")
    assert icon.body.rstrip().endswith(b"</svg>")
    assert "max-age=" in icon.headers["Cache-Control"]
    assert page.status == 200
    assert b'<link rel="icon" href="/favicon.ico" type="image/svg+xml">' in page.body


# -- errors the frameworks answer themselves ------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("POST", "/stats", "GET"), ("DELETE", "/emails", "POST"), ("PUT", "/", "GET")],
)
def test_a_wrong_method_is_405_json_with_allow(
    served: Served, method: str, path: str, allowed: str
) -> None:
    answer = exchange(served.demo, method, path)

    assert answer.status == 405, answer
    assert answer.json() == {"detail": "Method Not Allowed"}
    allow = {name.strip() for name in answer.headers["Allow"].split(",")}
    assert allowed in allow
    assert method not in allow


def test_an_unknown_path_is_404_json(served: Served) -> None:
    answer = exchange(served.demo, "GET", "/no/such/page")

    assert answer.status == 404, answer
    assert answer.json() == {"detail": "Not Found"}


# -- request bodies over the cap ------------------------------------------------------

TOO_LARGE = 413


def assert_too_large(answer: Answer) -> None:
    assert answer.status == TOO_LARGE, answer
    error = answer.json()["error"]
    assert error.startswith("the request body is over 64 KiB"), error
    assert "POST /emails" in error


def open_request(demo: DemoProcess, path: str, *headers: tuple[str, str]) -> socket.socket:
    """A connection on which a POST to `path` has sent its headers, and no body yet."""
    sock = socket.create_connection(("127.0.0.1", demo.port), timeout=10)
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{demo.port}"]
    lines += [f"{name}: {value}" for name, value in headers]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def read_answer(sock: socket.socket) -> Answer:
    """The answer on `sock`, read while the request's body is still unfinished."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    return Answer(response.status, response.headers, response.read())


@pytest.mark.parametrize("path", ["/emails", "/emails/bulk"])
def test_a_body_declared_over_the_cap_is_413_before_it_is_read(served: Served, path: str) -> None:
    # 50 MB announced, 1 KB sent: the server must answer without waiting for the rest.
    sock = open_request(
        served.demo, path, ("Content-Type", "application/json"), ("Content-Length", "50000000")
    )
    with sock:
        sock.sendall(b"{" + b" " * 1023)
        assert_too_large(read_answer(sock))
    assert exchange(served.demo, "GET", "/stats").status == 200  # still serving


@pytest.mark.parametrize("path", ["/emails", "/emails/bulk"])
def test_a_chunked_body_is_413_once_it_goes_over_the_cap(served: Served, path: str) -> None:
    # Chunks of 8 KB to 16 KB over the cap, and never the last (empty) chunk: the server
    # must count as it reads, and answer once the body is over.
    chunk = b"%x\r\n%s\r\n" % (8192, b" " * 8192)
    sock = open_request(
        served.demo,
        path,
        ("Content-Type", "application/json"),
        ("Transfer-Encoding", "chunked"),
    )
    with sock:
        sock.sendall(chunk * (MAX_REQUEST_BYTES // 8192 + 2))
        assert_too_large(read_answer(sock))


def test_a_body_under_the_cap_is_read_and_checked(served: Served) -> None:
    # The largest body the API takes, in three-byte characters: about 60 KB.
    payload = {**GOOD, "subject": "€" * 200, "body": "€" * MAX_BODY}
    raw = json.dumps(payload, ensure_ascii=False).encode()
    assert len(raw) <= MAX_REQUEST_BYTES
    accepted = exchange(served.demo, "POST", "/emails", raw, Content_Type="application/json")
    too_long = exchange(
        served.demo,
        "POST",
        "/emails",
        json.dumps({**payload, "body": "x" * (MAX_BODY + 1)}).encode(),
        Content_Type="application/json",
    )
    over = exchange(
        served.demo,
        "POST",
        "/emails",
        json.dumps({**GOOD, "body": "x" * MAX_REQUEST_BYTES}).encode(),
        Content_Type="application/json",
    )

    assert accepted.status == 202, accepted
    assert too_long.status == 422, too_long
    assert too_long.json()["field"] == "body"
    assert_too_large(over)


def body_of(size: int) -> bytes:
    """A ``POST /emails`` body of exactly `size` bytes (its email body is too long)."""
    head = json.dumps({**GOOD, "body": ""}).encode()  # ends with "body": ""}
    raw = head[:-2] + b"x" * (size - len(head)) + b'"}'
    assert len(raw) == size
    return raw


def post_raw(demo: DemoProcess, raw: bytes, *, chunked: bool) -> Answer:
    """POST `raw` to /emails with a Content-Length, or in chunks of 8 KB."""
    if not chunked:
        return exchange(demo, "POST", "/emails", raw, Content_Type="application/json")
    sock = open_request(
        demo, "/emails", ("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")
    )
    with sock:
        for start in range(0, len(raw), 8192):
            part = raw[start : start + 8192]
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        sock.sendall(b"0\r\n\r\n")
        return read_answer(sock)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_the_cap_is_64_kib_to_the_byte(served: Served, chunked: bool) -> None:
    assert MAX_REQUEST_BYTES == 64 * 1024
    at_cap = post_raw(served.demo, body_of(MAX_REQUEST_BYTES), chunked=chunked)
    over = post_raw(served.demo, body_of(MAX_REQUEST_BYTES + 1), chunked=chunked)

    assert at_cap.status == 422, at_cap  # read, then refused for its email body's length
    assert at_cap.json()["field"] == "body"
    assert_too_large(over)
