"""Database connections in pool threads, handled as Django's request cycle handles them.

SQLite in a file, so that every thread opens a connection of its own to one database.
One worker, so that consecutive tasks share a thread; a plain submission to the pool
(no Django task around it) looks at what the last task left in that thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.db.backends.signals import connection_created
from django.db.backends.sqlite3.base import DatabaseWrapper

from django_background import BackgroundBackend
from tests.django import tasks
from tests.django.conftest import api, backend_with, finish
from tests.helpers import WAIT

Status = api.TaskResultStatus


@pytest.fixture
def opened() -> Iterator[list[str]]:
    """The aliases of the connections Django opens during the test, in order."""
    seen: list[str] = []

    def receiver(sender: object, connection: DatabaseWrapper, **kwargs: object) -> None:
        seen.append(connection.alias)

    connection_created.connect(receiver)
    yield seen
    connection_created.disconnect(receiver)


def in_worker(backend: BackgroundBackend, fn: object, *args: object) -> object:
    """`fn(*args)` in the pool's worker thread, outside any Django task."""
    return backend.pool.submit(fn, *args).result(timeout=WAIT)  # type: ignore[arg-type]


def is_open(alias: str) -> bool:
    return connections[alias].connection is not None


def query(alias: str) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")


def test_a_task_leaves_no_connection_open() -> None:
    with backend_with(workers=1) as backend:
        result = tasks.write_note.enqueue("default", "one")
        finish(backend)
        assert backend.get_result(result.id).status == Status.SUCCESSFUL
        assert in_worker(backend, is_open, "default") is False  # CONN_MAX_AGE = 0
        # Without a task around it, a query leaves its connection open in the thread:
        in_worker(backend, query, "default")
        assert in_worker(backend, is_open, "default") is True
        # which the next task closes first, as a request would, then its own at its end.
        tasks.add.enqueue(1, 1)
        finish(backend)
        assert in_worker(backend, is_open, "default") is False


def test_conn_max_age_keeps_a_connection_for_the_next_task(opened: list[str]) -> None:
    with backend_with(workers=1) as backend:
        first = tasks.write_note.enqueue("persistent", "a")
        second = tasks.write_note.enqueue("persistent", "b")
        finish(backend)
        first_id = backend.get_result(first.id).return_value
        assert backend.get_result(second.id).return_value == first_id
        assert opened == ["persistent"]  # CONN_MAX_AGE = None: one connection for both
        assert in_worker(backend, is_open, "persistent") is True

        def reach_max_age() -> None:  # as if CONN_MAX_AGE seconds had passed
            connections["persistent"].close_at = time.monotonic()

        in_worker(backend, reach_max_age)
        tasks.write_note.enqueue("persistent", "c")
        finish(backend)
        assert opened == ["persistent", "persistent"]  # closed before the task, reopened
        in_worker(backend, connections.close_all)  # not left to the collector (3.13 warns)


def test_a_broken_connection_is_not_reused(opened: list[str]) -> None:
    # Django asks is_usable() whether a connection that raised can still be used. SQLite's
    # always says yes; this one answers as PostgreSQL's does, with a query.
    def is_usable(self: DatabaseWrapper) -> bool:
        try:
            self.connection.execute("SELECT 1")
        except sqlite3.Error:
            return False
        return True

    with mock.patch.object(DatabaseWrapper, "is_usable", is_usable), backend_with(workers=1) as b:
        broken = tasks.break_connection.enqueue("persistent")
        finish(b)
        [error] = b.get_result(broken.id).errors
        assert error.exception_class_path.startswith("django.db.utils.")
        assert in_worker(b, is_open, "persistent") is False
        after = tasks.write_note.enqueue("persistent", "after")
        finish(b)
        assert b.get_result(after.id).status == Status.SUCCESSFUL
        assert opened == ["persistent", "persistent"]
        in_worker(b, connections.close_all)


def test_a_connection_left_outside_autocommit_is_closed(opened: list[str]) -> None:
    with backend_with(workers=1) as backend:
        result = tasks.leave_autocommit_off.enqueue("persistent")
        finish(backend)
        assert backend.get_result(result.id).status == Status.SUCCESSFUL
        # Django "doesn't take chances" with it, even under CONN_MAX_AGE = None.
        assert in_worker(backend, is_open, "persistent") is False


def test_an_async_task_s_orm_connection_is_closed_where_it_was_opened() -> None:
    with backend_with() as backend:
        result = tasks.async_count_notes.enqueue("default")
        finish(backend)
        assert backend.get_result(result.id).status == Status.SUCCESSFUL
    # Its ORM calls ran in asgiref's thread for sync code, which this call reaches too.
    assert asyncio.run(sync_to_async(is_open)("default")) is False


@pytest.mark.parametrize(
    "options",
    [{"eager": True}, {"workers": 1, "max_queue": 1, "on_full": "caller_runs"}],
    ids=["eager", "caller-runs"],
)
def test_a_task_run_inline_leaves_the_callers_transaction_alone(options: dict[str, object]) -> None:
    from django.db import transaction

    from tests.django.tasks import Note

    gate = threading.Event()
    with backend_with(**options) as backend:
        if not options.get("eager"):
            backend.pool.submit(gate.wait, WAIT)  # the one worker, busy
            tasks.add.enqueue(1, 1)  # the one queue slot, taken: the next runs inline
        before = Note.objects.count()
        try:
            with transaction.atomic():  # a view under ATOMIC_REQUESTS, or a TestCase
                Note.objects.create(text="kept")
                result = tasks.write_note.enqueue("default", "inline")
                assert result.status == Status.SUCCESSFUL
                assert Note.objects.count() == before + 2  # the connection is still open
        finally:
            gate.set()
        finish(backend)
    assert Note.objects.count() == before + 2
    Note.objects.filter(text__in=["kept", "inline"]).delete()
    connections.close_all()
