"""The backend through Django's own API: ``@task``, ``enqueue``/``aenqueue``, results."""

from __future__ import annotations

import asyncio
import datetime
import gc
import logging
import os
import sys
import threading
import weakref
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.test import SimpleTestCase, override_settings
from django.utils import timezone

from background_core import QueueFull
from django_background import BackgroundBackend
from tests.django import tasks
from tests.django.conftest import BACKPORT, api, api_exceptions, backend_with, finish, tasks_setting
from tests.helpers import WAIT, Gate, error_records, run_script, start_thread, wait_until

Status = api.TaskResultStatus


def test_the_backend_declares_what_it_supports() -> None:
    assert BackgroundBackend.supports_defer is True
    assert BackgroundBackend.supports_async_task is True
    assert BackgroundBackend.supports_get_result is True
    assert BackgroundBackend.supports_priority is False


def test_a_task_goes_from_ready_to_running_to_successful() -> None:
    with backend_with(workers=1) as backend, Gate() as gate:
        tasks.GATES["running"] = gate
        running = tasks.wait_at.enqueue("running")
        assert gate.started.wait(WAIT)
        waiting = tasks.add.enqueue(2, 3)
        assert waiting.status == Status.READY  # the only worker is busy
        assert waiting.enqueued_at is not None
        assert waiting.started_at is None
        assert waiting.worker_ids == []
        with pytest.raises(ValueError, match="not finished"):
            waiting.return_value  # noqa: B018  (Django's property raises until finished)
        running.refresh()
        assert running.status == Status.RUNNING
        assert running.started_at == running.last_attempted_at is not None
        assert running.finished_at is None
        assert len(running.worker_ids) == 1
        gate.open()
        finish(backend)
        for result in (running, waiting):
            result.refresh()
            assert result.status == Status.SUCCESSFUL
            assert result.is_finished
            assert result.attempts == 1
            assert result.enqueued_at <= result.started_at <= result.finished_at
            assert result.errors == []
        assert running.return_value == "running"
        assert waiting.return_value == 5
        assert waiting.worker_ids == running.worker_ids  # one pool, one worker id


def test_a_failure_is_recorded_as_django_records_it() -> None:
    # The same task on Django's ImmediateBackend, then on ours: the same record.
    module = "django_tasks" if BACKPORT else "django.tasks"
    immediate = {"default": {"BACKEND": f"{module}.backends.immediate.ImmediateBackend"}}
    with override_settings(TASKS=immediate):
        theirs = tasks.fail.enqueue("boom")
    with backend_with() as backend:
        ours = tasks.fail.enqueue("boom")
        finish(backend)
        ours.refresh()
    for result in (theirs, ours):
        assert result.status == Status.FAILED
        assert result.is_finished
        assert result.attempts == 1
        assert result.started_at == result.last_attempted_at <= result.finished_at
        [error] = result.errors
        assert error.exception_class_path == "builtins.ValueError"
        assert error.exception_class is ValueError
        assert error.traceback.startswith("Traceback (most recent call last):")
        assert error.traceback.endswith("ValueError: boom\n")
        assert 'tasks.py", line' in error.traceback
        with pytest.raises(ValueError, match="Task failed"):
            result.return_value  # noqa: B018


def test_return_values_are_normalized_to_json_as_django_does() -> None:
    with backend_with() as backend:
        with_tuple = tasks.with_context.enqueue(7)
        not_json = tasks.returns_object.enqueue()
        finish(backend)
        with_tuple.refresh()
        not_json.refresh()
    assert with_tuple.return_value["value"] == 7
    assert not_json.status == Status.FAILED
    assert not_json.errors[0].exception_class_path == "builtins.TypeError"


def test_a_failure_is_logged_once_by_django_and_counted_by_the_pool(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with backend_with() as backend:
        result = tasks.fail.enqueue("logged once")
        finish(backend)
        backend.pool.shutdown()  # its threads gone, the pool would have logged by now
        stats = backend.pool.stats()
    gc.collect()
    assert stats.failed == 1
    django_logger = "django_tasks" if BACKPORT else "django.tasks"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.name for r in errors] == [django_logger]
    assert result.id in errors[0].getMessage()
    assert errors[0].exc_info is not None
    assert "logged once" in str(errors[0].exc_info[1])


def test_an_error_after_the_result_was_recorded_is_logged_by_the_pool(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken_receiver(**kwargs: object) -> None:
        raise RuntimeError("a receiver's bug")

    api.signals.task_finished.connect(broken_receiver)
    try:
        with backend_with() as backend:
            result = tasks.add.enqueue(1, 1)
            finish(backend)
            result.refresh()
    finally:
        api.signals.task_finished.disconnect(broken_receiver)
    assert result.status == Status.SUCCESSFUL  # what the task did stays true
    # Logged once the pool frees the task's future, just after the drain saw it end.
    wait_until(lambda: error_records(caplog), "the pool logged the receiver's error")
    [record] = error_records(caplog)
    assert record.exc_info is not None
    assert "a receiver's bug" in str(record.exc_info[1])
    assert record.task_name == "tests.django.tasks.add"


def test_a_task_s_error_is_not_kept_when_a_receiver_raises_after_it() -> None:
    # The pool gets the receiver's error, never the task's: nothing may keep the latter.
    seen: list[weakref.ref[BaseException]] = []

    def broken_receiver(task_result: api.TaskResult, **kwargs: object) -> None:
        if task_result.status == Status.FAILED:
            seen.append(weakref.ref(sys.exc_info()[1]))  # type: ignore[arg-type]
            raise RuntimeError("a receiver's bug")

    def freed() -> bool:
        gc.collect()
        return seen[0]() is None

    api.signals.task_finished.connect(broken_receiver)
    logging.disable(logging.CRITICAL)  # log records would hold it, through the receiver's
    try:
        with backend_with() as backend:
            result = tasks.fail_weakly.enqueue("kept?")
            finish(backend)
            assert backend.get_result(result.id).status == Status.FAILED
            wait_until(freed, "the task's error was freed")
    finally:
        logging.disable(logging.NOTSET)
        api.signals.task_finished.disconnect(broken_receiver)


def test_signals_come_in_django_order_from_whichever_thread() -> None:
    seen: list[tuple[str, str]] = []

    def receiver(signal: object, task_result: api.TaskResult, **kwargs: object) -> None:
        name = next(n for n in ("enqueued", "started", "finished") if signal is signals[n])
        seen.append((name, str(task_result.status)))

    signals = {
        "enqueued": api.signals.task_enqueued,
        "started": api.signals.task_started,
        "finished": api.signals.task_finished,
    }
    for signal in signals.values():
        signal.connect(receiver)
    try:
        for options in ({"workers": 1}, {"eager": True}):
            seen.clear()
            with backend_with(**options) as backend:
                tasks.add.enqueue(1, 2)
                finish(backend)
            assert seen == [
                ("enqueued", "READY"),
                ("started", "RUNNING"),
                ("finished", "SUCCESSFUL"),
            ], options
    finally:
        for signal in signals.values():
            signal.disconnect(receiver)


def test_a_worker_that_starts_first_waits_for_task_enqueued_to_be_delivered() -> None:
    # The enqueuing thread sends task_enqueued after the pool took the task; a slow
    # receiver there must not let the worker's task_started (and task_finished) go first.
    seen: list[tuple[str, str]] = []
    sending = threading.Event()

    def slow(signal: object, task_result: api.TaskResult, **kwargs: object) -> None:
        if task_result.task.name == "add":
            sending.set()
            threading.Event().wait(0.3)  # the worker is free meanwhile: it must wait
            seen.append(("enqueued", str(task_result.status)))

    def later(signal: object, task_result: api.TaskResult, **kwargs: object) -> None:
        if task_result.task.name == "add":
            seen.append(("started" if signal is api.signals.task_started else "finished", ""))

    api.signals.task_enqueued.connect(slow)
    api.signals.task_started.connect(later)
    try:
        with backend_with(workers=1) as backend:
            gate = tasks.GATES["first"] = Gate()
            tasks.wait_at.enqueue("first")
            assert gate.started.wait(WAIT)
            threading.Thread(target=lambda: sending.wait(WAIT) and gate.open()).start()
            tasks.add.enqueue(1, 2)
            finish(backend)
    finally:
        api.signals.task_enqueued.disconnect(slow)
        api.signals.task_started.disconnect(later)
    assert seen == [("enqueued", "READY"), ("started", "")]


def test_get_result_and_refresh_find_results_from_any_thread() -> None:
    with backend_with() as backend:
        result = tasks.add.enqueue(20, 22)
        finish(backend)
        found: list[api.TaskResult] = []

        def elsewhere() -> None:
            # Django makes a backend object per thread; they share the results.
            other = api.task_backends["default"]
            assert other is not backend
            found.append(other.get_result(result.id))

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join(WAIT)
        assert found[0].return_value == 42
        assert tasks.add.get_result(result.id).return_value == 42
        assert api.default_task_backend.get_result(result.id).status == Status.SUCCESSFUL
        with pytest.raises(api_exceptions.TaskResultDoesNotExist):
            backend.get_result("no-such-id")
        with pytest.raises(api_exceptions.TaskResultMismatch):
            tasks.fail.get_result(result.id)


def test_results_are_copies_that_refresh_updates() -> None:
    with backend_with(eager=True) as backend:
        result = tasks.fail.enqueue("copy")
        copy = backend.get_result(result.id)
        copy.errors.clear()  # a copy's lists are its own
        assert len(backend.get_result(result.id).errors) == 1
        assert copy is not backend.get_result(result.id)


def test_the_results_kept_are_bounded_and_unfinished_ones_are_never_dropped() -> None:
    with backend_with(workers=1, results=2) as backend, Gate() as gate:
        tasks.GATES["bounded"] = gate
        running = tasks.wait_at.enqueue("bounded")
        assert gate.started.wait(WAIT)
        queued = [tasks.add.enqueue(i, 0) for i in range(3)]
        # Four unfinished results, two more than `results`: all are held.
        for result in (running, *queued):
            assert backend.get_result(result.id).status in {Status.RUNNING, Status.READY}
        gate.open()
        finish(backend)
        # Finished, the oldest two are forgotten.
        for gone in (running, queued[0]):
            with pytest.raises(api_exceptions.TaskResultDoesNotExist):
                gone.refresh()
        assert [backend.get_result(r.id).return_value for r in queued[1:]] == [1, 2]


def test_a_deferred_task_runs_no_earlier_and_holds_no_worker() -> None:
    with backend_with(workers=1) as backend:
        run_after = timezone.now() + datetime.timedelta(seconds=0.5)
        deferred = tasks.record_time.using(run_after=run_after).enqueue("deferred")
        assert [t.state for t in backend.pool.scheduled()] == ["scheduled"]
        # The only worker is free meanwhile: a task enqueued later finishes first.
        now = tasks.add.enqueue(1, 1)
        now_done = backend.pool.stats()
        finish(backend)
        assert now_done.scheduled == 1
        deferred.refresh()
        now.refresh()
        assert deferred.status == Status.SUCCESSFUL
        assert tasks.RAN_AT["deferred"] >= run_after.timestamp()
        assert deferred.started_at >= run_after
        assert now.finished_at < deferred.started_at


def test_run_after_must_be_aware_and_a_naive_one_without_use_tz_is_local_time() -> None:
    with backend_with(), pytest.raises(api_exceptions.TaskException, match="aware"):
        tasks.add.using(run_after=datetime.datetime.now())
    with override_settings(USE_TZ=False), backend_with(eager=False) as backend:
        soon = datetime.datetime.now() + datetime.timedelta(seconds=0.2)
        result = tasks.record_time.using(run_after=soon).enqueue("naive")
        finish(backend)
        assert backend.get_result(result.id).status == Status.SUCCESSFUL
        assert tasks.RAN_AT["naive"] >= soon.timestamp()


def test_async_tasks_run_on_the_pool_loop() -> None:
    with backend_with() as backend:
        ok = tasks.async_add.enqueue(2, 5)
        bad = tasks.async_fail.enqueue("async boom")
        finish(backend)
        ok.refresh()
        bad.refresh()
    assert ok.status == Status.SUCCESSFUL
    assert ok.return_value == 7
    assert bad.status == Status.FAILED
    [error] = bad.errors
    assert error.exception_class_path == "builtins.KeyError"
    assert error.traceback.endswith("KeyError: 'async boom'\n")


def test_aenqueue_and_arefresh_from_a_running_event_loop() -> None:
    async def main() -> tuple[api.TaskResult, api.TaskResult]:
        first = await tasks.add.aenqueue(3, 4)
        second = await tasks.async_add.aenqueue(5, 6)
        await asyncio.wrap_future(asyncio.get_running_loop().run_in_executor(None, finish, backend))
        await first.arefresh()
        return first, await tasks.async_add.aget_result(second.id)

    with backend_with() as backend:
        first, second = asyncio.run(main())
    assert (first.status, first.return_value) == (Status.SUCCESSFUL, 7)
    assert (second.status, second.return_value) == (Status.SUCCESSFUL, 11)


def test_an_async_task_enqueued_inside_async_to_sync_finishes() -> None:
    # A sync view calling async code, or a Django async test: asgiref's executor of the
    # blocked sync thread must not reach the task, whose bookkeeping would go there.
    async def view() -> api.TaskResult:
        return await tasks.async_add.aenqueue(2, 3)

    with backend_with() as backend:
        result = async_to_sync(view)()
        finish(backend)
        result.refresh()
    assert (result.status, result.return_value) == (Status.SUCCESSFUL, 5)


def test_an_eager_async_task_enqueued_inside_async_to_sync_does_not_wait_for_itself() -> None:
    async def view() -> api.TaskResult:
        return await tasks.async_add.aenqueue(4, 5)

    answers: list[api.TaskResult] = []
    with backend_with(eager=True):
        caller = start_thread(lambda: answers.append(async_to_sync(view)()), "caller")
        caller.join(WAIT)  # a deadlock fails this test, not the whole run
    [done] = answers
    assert (done.status, done.return_value) == (Status.SUCCESSFUL, 9)


def test_takes_context_gets_the_task_result() -> None:
    with backend_with() as backend:
        result = tasks.with_context.enqueue(3)
        finish(backend)
        result.refresh()
    assert result.return_value == {"id": result.id, "attempt": 1, "status": "RUNNING", "value": 3}


def test_tasks_run_in_the_pool_threads() -> None:
    with backend_with(workers=1) as backend:
        result = tasks.thread_name.enqueue()
        finish(backend)
        assert backend.get_result(result.id).return_value == "background-django-1"
        assert backend.pool.name == "django"


def test_validation_is_django_s() -> None:
    with backend_with():
        with pytest.raises(api_exceptions.TaskException, match="priority"):
            tasks.add.using(priority=10)
        with pytest.raises(api_exceptions.TaskException, match="Queue 'email'"):
            tasks.add.using(queue_name="email")
    queues = tasks_setting()
    queues["default"]["QUEUES"] = ["default", "email"]
    with override_settings(TASKS=queues):
        backend = api.task_backends["default"]
        result = tasks.add.using(queue_name="email").enqueue(1, 2)
        finish(backend)
        assert backend.get_result(result.id).return_value == 3


def test_a_full_queue_raises_queue_full_and_keeps_no_result() -> None:
    with backend_with(workers=1, max_queue=1) as backend, Gate() as gate:
        tasks.GATES["full"] = gate
        tasks.wait_at.enqueue("full")
        assert gate.started.wait(WAIT)
        tasks.add.enqueue(1, 1)  # the one place in the queue
        with pytest.raises(QueueFull, match="pool 'django' is full"):
            tasks.add.enqueue(2, 2)
        assert backend.pool.stats().rejected == 1
        gate.open()
        finish(backend)
        assert backend.pool.stats().submitted == 2


def test_a_task_cancelled_at_shutdown_is_failed_as_unable_to_start() -> None:
    with backend_with(workers=1) as backend, Gate() as gate:
        tasks.GATES["shutdown"] = gate
        running = tasks.wait_at.enqueue("shutdown")
        assert gate.started.wait(WAIT)
        queued = tasks.add.enqueue(1, 1)
        backend.pool.shutdown(wait=False, cancel_futures=True)
        gate.open()
        finish(backend)
        assert backend.get_result(running.id).status == Status.SUCCESSFUL  # it had started
        queued.refresh()
    assert queued.status == Status.FAILED
    assert queued.started_at is None
    assert queued.worker_ids == []
    [error] = queued.errors
    assert error.exception_class_path == "concurrent.futures._base.CancelledError"
    assert "never started" in error.traceback


class EagerModeTests(SimpleTestCase):
    """Eager mode, the way a Django test suite uses it: ``override_settings``."""

    @override_settings(TASKS=tasks_setting(eager=True))
    def test_tasks_run_inline_and_their_results_are_final(self) -> None:
        result = tasks.add.enqueue(1, 2)
        assert result.status == Status.SUCCESSFUL
        assert result.return_value == 3
        assert tasks.async_add.enqueue(1, 1).return_value == 2
        failed = tasks.fail.enqueue("eager")
        assert failed.status == Status.FAILED
        assert failed.errors[0].exception_class_path == "builtins.ValueError"
        assert tasks.thread_name.enqueue().return_value == threading.current_thread().name

    @override_settings(TASKS=tasks_setting(eager=True))
    def test_a_deferred_task_runs_at_once(self) -> None:
        later = timezone.now() + datetime.timedelta(hours=1)
        result = tasks.add.using(run_after=later).enqueue(2, 2)
        assert result.return_value == 4

    def test_settings_switch_backends(self) -> None:
        with self.settings(TASKS=tasks_setting(eager=True)):
            assert tasks.add.enqueue(1, 1).status == Status.SUCCESSFUL
        dummy = "django_tasks" if BACKPORT else "django.tasks"
        with self.settings(TASKS={"default": {"BACKEND": f"{dummy}.backends.dummy.DummyBackend"}}):
            assert tasks.add.enqueue(1, 1).status == Status.READY  # never runs


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_a_forked_child_starts_with_no_result_of_its_parent(tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        f"""
        import os
        import django
        from django.conf import settings

        settings.configure(
            INSTALLED_APPS={["django_tasks"] if BACKPORT else []!r},
            TASKS={{"default": {{
                "BACKEND": "django_background.BackgroundBackend",
                "OPTIONS": {{"workers": 1}},
            }}}},
        )
        django.setup()
        try:
            from django.tasks import task, default_task_backend
            from django.tasks.exceptions import TaskResultDoesNotExist
        except ImportError:
            from django_tasks import task, default_task_backend
            from django_tasks.exceptions import TaskResultDoesNotExist

        @task
        def add(a, b):
            return a + b

        before = add.enqueue(1, 2)
        assert not default_task_backend.pool.drain(5).unfinished
        pid = os.fork()
        if pid == 0:
            try:
                default_task_backend.get_result(before.id)
            except TaskResultDoesNotExist:
                pass
            else:
                os._exit(3)
            after = add.enqueue(2, 3)
            assert not default_task_backend.pool.drain(5).unfinished
            after.refresh()
            os._exit(0 if after.return_value == 5 else 4)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        before.refresh()
        print("parent", before.return_value)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["parent", "3"]
