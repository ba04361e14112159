"""The Django app's URLs, views and its one task, `send_email`: Django imports this module
once `django_app` has set it up (``ROOT_URLCONF``); its ``@task`` looks up its backend in
the settings.

The views enqueue `send_email`, Django's own task, which `django_background`'s backend
runs on the pool: ``send_email.enqueue(email)``, or ``send_email.using(run_after=...)``
for a reminder. Where an email is comes from Django's `TaskResult` of its latest attempt
(``send_email.get_result(id)``).

Retries: Django's tasks framework has none, and the backend submits each task with no
retry option. So an attempt that fails for now (`mail.RETRY_ON`: a 4xx reply, a connection
refused or dropped, a timeout) enqueues the next attempt itself, ``send_email.using(
run_after=now + backoff).enqueue(email, attempt + 1)``, with the other apps' retries and
backoff (`api.RETRYING`): it waits on the pool's timer, holding no thread, as the engine's
retries do. The last failure, and a permanent one, is raised: Django records the result
as FAILED, and logs it at ERROR with its traceback.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils import timezone

from background_core import Stats

from .api import RETRYING, Reply
from .django_app import BACKPORT, DjangoDemo, demo_of_settings
from .mail import Email
from .mail import send_email as send_over_smtp
from .outbox import Tracked

if BACKPORT:
    from django_tasks import TaskResultStatus, task
    from django_tasks.exceptions import TaskResultDoesNotExist
else:
    from django.tasks import TaskResultStatus, task
    from django.tasks.exceptions import TaskResultDoesNotExist

logger = logging.getLogger("demo_app")

View = Callable[..., HttpResponse]


@task  # type: ignore[untyped-decorator]  # Django ships no types
def send_email(email: dict[str, str], attempt: int = 1) -> str | None:
    """Send `email` (an `Email`'s fields, as JSON), as its attempt number `attempt`.

    Returns None once it is sent; after a temporary failure with attempts left, the id
    of the result of the next attempt, which it enqueued.
    """
    demo = demo_of_settings()
    try:
        send_over_smtp(demo.api.smtp, Email(**email))
    except RETRYING.retry_on as error:
        if attempt > RETRYING.retries:
            raise
        return _retry(demo, email, attempt, error)
    return None


def _retry(demo: DjangoDemo, email: dict[str, str], attempt: int, error: BaseException) -> str:
    """Enqueue attempt ``attempt + 1`` of `email` after the backoff; its result's id."""
    wait = RETRYING.wait_before(attempt)
    later = send_email.using(run_after=timezone.now() + datetime.timedelta(seconds=wait))
    following = later.enqueue(email, attempt + 1)
    demo.attempt(email["id"], following.id, attempt + 1)
    demo.retried()
    # As the engine words its own retries; the email's id, never its address.
    logger.warning(
        "task 'send_email' (email %s) in pool %r failed on attempt %d of %d (%s); "
        "retrying in %.3g s, as the task of Django result %s",
        email["id"],
        demo.pool.name,
        attempt,
        RETRYING.retries + 1,
        type(error).__name__,
        wait,
        following.id,
    )
    following_id: str = following.id
    return following_id


@dataclass(frozen=True)
class EmailTasks:
    """The Django app's `api.Sender`: each email a `send_email` task, followed by the
    `TaskResult` of its latest attempt."""

    demo: DjangoDemo

    def send(self, email: Email, delay: float) -> None:
        queued = send_email
        if delay:
            later = timezone.now() + datetime.timedelta(seconds=delay)
            queued = send_email.using(run_after=later)
        result = queued.enqueue(dataclasses.asdict(email))
        self.demo.attempt(email.id, result.id, 1)

    def find(self, email_id: str) -> Tracked | None:
        latest = self.demo.latest(email_id)
        if latest is None:
            return None
        result_id, attempt = latest
        try:
            result = send_email.get_result(result_id)
        except TaskResultDoesNotExist:  # forgotten (the backend keeps django_app.RESULTS)
            return None
        return _tracked(email_id, result, attempt)

    def stats(self) -> Stats:
        return self.demo.stats()


def _tracked(email_id: str, result: Any, attempt: int) -> Tracked:
    """Where the email is, from the `TaskResult` of its attempt number `attempt`."""
    status = result.status
    if status == TaskResultStatus.RUNNING:
        return Tracked(email_id, "sending")
    if status == TaskResultStatus.SUCCESSFUL:
        return Tracked(email_id, "sent")
    if status == TaskResultStatus.FAILED:
        # The exception's type only, as the other apps: its message may hold an address.
        path_of_class = result.errors[-1].exception_class_path if result.errors else ""
        kind = str(path_of_class).rpartition(".")[2] or "Exception"
        if kind == "CancelledError":  # the pool cancelled it at shutdown, never started
            return Tracked(email_id, "cancelled")
        return Tracked(email_id, "failed", kind)
    run_after = result.task.run_after  # READY: waiting for its time, or for a thread
    due_in = 0.0 if run_after is None else (run_after - timezone.now()).total_seconds()
    if due_in <= 0:
        return Tracked(email_id, "queued")
    return Tracked(
        email_id,
        "retrying" if attempt > 1 else "scheduled",
        attempt=attempt,
        due_in=round(due_in, 1),
    )


# -- views ------------------------------------------------------------------------------


def _emails() -> EmailTasks:
    return EmailTasks(demo_of_settings())


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(demo_of_settings().api.get_page())


def favicon(request: HttpRequest) -> HttpResponse:
    icon, headers = demo_of_settings().api.get_favicon()
    response = HttpResponse(icon, content_type=headers["Content-Type"])
    response["Cache-Control"] = headers["Cache-Control"]
    return response


def post_email(request: HttpRequest) -> HttpResponse:
    emails = _emails()
    return _json(emails.demo.api.post_email(emails, request.body))


def post_bulk(request: HttpRequest) -> HttpResponse:
    emails = _emails()
    return _json(emails.demo.api.post_bulk(emails, request.body))


def get_email(request: HttpRequest, email_id: str) -> HttpResponse:
    emails = _emails()
    return _json(emails.demo.api.get_email(emails, email_id))


def stats(request: HttpRequest) -> HttpResponse:
    emails = _emails()
    return _json(emails.demo.api.get_stats(emails))


def inbox(request: HttpRequest) -> HttpResponse:
    return _json(demo_of_settings().api.get_inbox())


def _json(reply: Reply) -> HttpResponse:
    status, payload = reply
    response = JsonResponse(payload, status=status)
    if "retry_after" in payload:
        response["Retry-After"] = str(payload["retry_after"])
    return response


def _only(method: str, view: View) -> View:
    """`view` for `method`; any other is answered 405 with ``Allow``, as JSON like
    FastAPI's."""

    def answer(request: HttpRequest, **kwargs: str) -> HttpResponse:
        if request.method != method:
            response = _detail(405, "Method Not Allowed")
            response["Allow"] = method
            return response
        return view(request, **kwargs)

    return answer


def _detail(status: int, reason: str) -> HttpResponse:
    """An error Django answers itself, as FastAPI words it: ``{"detail": reason}``."""
    return JsonResponse({"detail": reason}, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _detail(400, "Bad Request")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _detail(404, "Not Found")


def server_error(request: HttpRequest) -> HttpResponse:
    return _detail(500, "Internal Server Error")


urlpatterns = [
    path("", _only("GET", page)),
    path("favicon.ico", _only("GET", favicon)),
    path("emails", _only("POST", post_email)),
    path("emails/bulk", _only("POST", post_bulk)),
    path("emails/<str:email_id>", _only("GET", get_email)),
    path("stats", _only("GET", stats)),
    path("inbox", _only("GET", inbox)),
]
handler400 = bad_request
handler404 = not_found
handler500 = server_error
