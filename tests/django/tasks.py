"""Tasks (module-level, as Django requires) and a model, for the Django tests."""

from __future__ import annotations

import asyncio
import threading
import time

from django.db import connections, models

try:
    from django.tasks import TaskContext, task
except ImportError:  # Django 5.2: the django-tasks backport
    from django_tasks import TaskContext, task  # type: ignore[no-redef]

from tests.helpers import Gate

GATES: dict[str, Gate] = {}
"""Gates that tasks wait on, by name: a task's arguments must be JSON."""

RAN_AT: dict[str, float] = {}
"""time.time() when a task called `record_time` ran, by key."""


class Note(models.Model):
    text = models.CharField(max_length=100)

    class Meta:
        app_label = "background_tests"


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def fail(message: str) -> None:
    raise ValueError(message)


class Failure(Exception):
    """A task's error that a test can hold a weak reference to (builtin ones take none)."""


@task
def fail_weakly(message: str) -> None:
    raise Failure(message)


@task
def wait_at(gate: str) -> str:
    GATES[gate]()
    return gate


@task
def record_time(key: str) -> None:
    RAN_AT[key] = time.time()


@task
def thread_name() -> str:
    return threading.current_thread().name


@task
def returns_object() -> object:
    return object()  # not JSON: the task fails, as Django's backends fail it


@task
async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


@task
async def async_fail(message: str) -> None:
    await asyncio.sleep(0)
    raise KeyError(message)


@task(takes_context=True)
def with_context(context: TaskContext, value: int) -> dict[str, object]:
    return {
        "id": context.task_result.id,
        "attempt": context.attempt,
        "status": str(context.task_result.status),
        "value": value,
    }


# -- the database ----------------------------------------------------------------------


@task
def write_note(alias: str, text: str) -> int:
    """Write through the ORM; the id of the DB-API connection it used."""
    Note.objects.using(alias).create(text=text)
    return id(connections[alias].connection)


@task
def break_connection(alias: str) -> None:
    """Close the DB-API connection under Django's feet, then use it: the query fails,
    as one on a connection the server dropped would."""
    Note.objects.using(alias).count()
    connections[alias].connection.close()
    Note.objects.using(alias).count()


@task
def leave_autocommit_off(alias: str) -> None:
    """Leave the connection out of autocommit, as a task that forgot to restore it."""
    from django.db import transaction

    transaction.set_autocommit(False, using=alias)
    Note.objects.using(alias).count()


@task
async def async_count_notes(alias: str) -> int:
    return await Note.objects.using(alias).acount()
