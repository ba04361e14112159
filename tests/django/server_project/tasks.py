"""The task each request enqueues: it takes ``SERVER_APP_TASK_SECONDS`` (0.02 s), then
appends ``"<pid> <tag>"`` to the file of ``SERVER_APP_OUT``."""

from __future__ import annotations

import app_support

try:
    from django.tasks import task
except ImportError:  # Django 5.2: the django-tasks backport
    from django_tasks import task


@task
def record(tag: str) -> None:
    app_support.record_after_a_while(tag)
