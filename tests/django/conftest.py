"""Django, configured once for these tests: a SQLite file database (so that worker
threads share it), the tasks framework (Django 6's django.tasks, or the django-tasks
backport on Django 5.2), and a backend of ours as the default one."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("django", reason="the dev group installs Django")
if importlib.util.find_spec("django.tasks") is None:
    pytest.importorskip("django_tasks", reason="Django 5.2 needs the django-tasks backport")

import django
from django.conf import settings
from django.test import override_settings

from django_background import BackgroundBackend
from tests.helpers import WAIT

try:
    from django import tasks as api
except ImportError:  # Django 5.2: the django-tasks backport
    import django_tasks as api  # type: ignore[no-redef]
api_exceptions = api.exceptions

BACKPORT = importlib.util.find_spec("django.tasks") is None
_DB_DIR = Path(tempfile.mkdtemp(prefix="background-django-"))


def tasks_setting(alias: str = "default", **options: Any) -> dict[str, Any]:
    """``TASKS`` with our backend at `alias`, with these OPTIONS."""
    return {alias: {"BACKEND": "django_background.BackgroundBackend", "OPTIONS": options}}


def _database(**more: Any) -> dict[str, Any]:
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(_DB_DIR / "db.sqlite3"), **more}


if not settings.configured:
    settings.configure(
        INSTALLED_APPS=["django_tasks", "django_background"] if BACKPORT else ["django_background"],
        DATABASES={
            "default": _database(),  # CONN_MAX_AGE = 0: closed after each request, and task
            "persistent": _database(CONN_MAX_AGE=None),  # kept until broken
        },
        TASKS=tasks_setting(workers=2),
        USE_TZ=True,
        SECRET_KEY="tests",
        ROOT_URLCONF="tests.django.urls",
        MIDDLEWARE=["django_background.QueueFullMiddleware"],
        ALLOWED_HOSTS=["testserver"],
    )
    django.setup()


@contextmanager
def backend_with(**options: Any) -> Iterator[BackgroundBackend]:
    """Our backend as the default one, with these OPTIONS, for a block (a test).

    Leaving it restores the settings, which shuts down the pool it made (what waits is
    cancelled), as ``override_settings`` does in any Django test.
    """
    with override_settings(TASKS=tasks_setting(**options)):
        backend = api.task_backends["default"]
        assert isinstance(backend, BackgroundBackend)
        yield backend


def finish(backend: BackgroundBackend) -> None:
    """Wait until the backend's pool has run everything it took (bounded)."""
    report = backend.pool.drain(WAIT)
    assert not report.unfinished, report.summary()


@pytest.fixture(scope="session", autouse=True)
def notes_table() -> Iterator[None]:
    """The table of `tasks.Note`, in the database file; the file goes at the end."""
    from django.db import connections

    from tests.django.tasks import Note

    with connections["default"].schema_editor() as editor:
        editor.create_model(Note)
    connections.close_all()
    yield
    connections.close_all()
    shutil.rmtree(_DB_DIR, ignore_errors=True)
