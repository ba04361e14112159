"""`dask_executor`: a pool's tasks on a LocalCluster of worker processes on 127.0.0.1."""

from __future__ import annotations

import functools
import gc
import logging
import os
import pickle
import signal
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Client

from background_core import Background, TaskNotImportable
from background_core.dask import Arguments, dask_executor
from tests import helpers
from tests.dask import tasks

WAIT = 30  # seconds: the first task on a fresh worker process imports the test's modules
# Every poll waits as long as any other wait here.
wait_until = functools.partial(helpers.wait_until, timeout=WAIT)


@pytest.fixture
def bg(client: Client) -> Iterator[Background]:
    """A pool whose tasks go to the cluster."""
    executor = dask_executor(client)
    pool = Background(2, name="dask", executor=executor, drain_timeout=WAIT)
    yield pool
    pool.shutdown()
    executor.shutdown()


def test_tasks_run_in_another_process(bg: Background, tmp_path: Path) -> None:
    assert bg.submit(tasks.pid).result(timeout=WAIT) != os.getpid()


def test_identical_calls_run_twice(bg: Background, tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    first, second = bg.submit(tasks.note, out, "same"), bg.submit(tasks.note, out, "same")
    first.result(timeout=WAIT), second.result(timeout=WAIT)
    assert [line.split()[1] for line in tasks.lines(out)] == ["same", "same"]


def test_the_reserved_keyword_names_reach_the_function(bg: Background) -> None:
    # Client.submit would take these as its own options; here they are the task's.
    names = {"priority": 1, "key": "k", "retries": 2, "pure": True, "workers": 3, "resources": 4}
    assert bg.submit(tasks.keywords, **names).result(timeout=WAIT) == names


def test_exception_type_and_message_come_through(bg: Background) -> None:
    error = bg.submit(tasks.fail, "the mail server said no").exception(timeout=WAIT)
    assert type(error) is tasks.TaskFailed
    assert str(error) == "the mail server said no"
    missing = bg.submit(tasks.lookup, "absent").exception(timeout=WAIT)
    assert type(missing) is KeyError
    assert missing.args == ("absent",)
    bg.drain(WAIT)
    assert bg.stats().failed == 2


def test_an_unpicklable_result_fails_within_10_s(bg: Background) -> None:
    error = bg.submit(tasks.unpicklable).exception(timeout=10)
    assert isinstance(error, TypeError)
    assert "tests.dask.tasks:unpicklable" in str(error)
    assert "cannot be pickled" in str(error)


def test_unpicklable_arguments_fail_at_submission(bg: Background) -> None:
    with pytest.raises(TypeError, match=r"arguments of task 'tests.dask.tasks:keywords'"):
        bg.submit(tasks.keywords, lock=threading.Lock())
    assert bg.stats().rejected == 1


def test_tasks_defined_in_a_function_are_refused(bg: Background) -> None:
    def local() -> None: ...

    with pytest.raises(TaskNotImportable, match=r"define it at module level"):
        bg.submit(local)
    with pytest.raises(TaskNotImportable, match=r"lambda"):
        bg.submit(lambda: None)
    with pytest.raises(TaskNotImportable, match=r"module level"):
        bg.task(local)()
    assert bg.stats().rejected == 3


def test_decorated_tasks_methods_and_partials(bg: Background, tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    # A module-level @background.task: the worker runs the plain function, not a submission.
    assert bg.submit(tasks.decorated, out, "decorated").result(timeout=WAIT) != os.getpid()
    assert bg.task(tasks.note)(out, "task").result(timeout=WAIT) != os.getpid()
    assert bg.submit(functools.partial(tasks.note, out), "partial").result(timeout=WAIT)
    assert [line.split()[1] for line in tasks.lines(out)] == ["decorated", "task", "partial"]
    greeting = bg.submit(tasks.Greeter("Hello").greet, "Ada").result(timeout=WAIT)
    assert greeting.startswith("Hello, Ada from ")
    assert greeting != f"Hello, Ada from {os.getpid()}"
    assert bg.submit(tasks.Greeter.make, "Hi").result(timeout=WAIT) == "Hi"


def _scheduler_knows(key: str, dask_scheduler: Any) -> bool:
    return key in dask_scheduler.tasks


def _worker_knows(key: str, dask_worker: Any) -> bool:
    return key in dask_worker.state.tasks


def test_running_and_queued_are_reported_honestly(
    bg: Background, client: Client, tmp_path: Path
) -> None:
    out, release = str(tmp_path / "out"), tmp_path / "release"
    # Two workers of one thread each: two tasks run, the third waits.
    futures = [bg.submit(tasks.note_after, out, str(i), str(release)) for i in range(3)]
    wait_until(lambda: sum(f.running() for f in futures) == 2, "two tasks run")
    stats = bg.stats()
    assert (stats.running, stats.queued) == (2, 1)
    assert len(tasks.lines(out)) == 2
    waiting = next(f for f in futures if not f.running())
    started = [f for f in futures if f.running()]
    assert not any(f.cancel() for f in started)  # a task that started is never cancelled
    assert waiting.cancel()
    # The cancellation travels to the scheduler and on to the worker that may hold the task
    # in its ready queue: release the running tasks only once it has arrived everywhere.
    key = waiting.sent_to.key  # type: ignore[attr-defined]
    wait_until(
        lambda: (
            not client.run_on_scheduler(_scheduler_knows, key)
            and not any(client.run(_worker_knows, key).values())
        ),
        "the cluster forgets the cancelled task",
    )
    release.touch()
    assert all(f.result(timeout=WAIT) != os.getpid() for f in started)
    assert bg.drain(WAIT).unfinished == ()
    stats = bg.stats()
    assert (stats.succeeded, stats.cancelled, stats.running, stats.queued) == (2, 1, 0, 0)
    ran = sorted(line.split(maxsplit=1)[1] for line in tasks.lines(out))
    assert len(ran) == 4  # two starts, two ends; the cancelled task never started
    assert waiting.cancelled()


def test_drain_waits_for_tasks_in_flight(bg: Background, tmp_path: Path) -> None:
    out, release = str(tmp_path / "out"), tmp_path / "release"
    futures = [bg.submit(tasks.note_after, out, str(i), str(release)) for i in range(4)]
    wait_until(lambda: len(tasks.lines(out)) == 2, "two tasks started")
    assert bg.drain(0.2).unfinished  # still running: the drain's deadline passed
    release.touch()
    report = bg.drain(WAIT)
    assert (report.completed, report.unfinished) == (4, ())
    assert all(f.done() and not f.cancelled() for f in futures)
    assert sum(line.split()[1] == "done" for line in tasks.lines(out)) == 4


def test_shutdown_never_cancels_a_task_the_cluster_runs(client: Client, tmp_path: Path) -> None:
    out, release = str(tmp_path / "out"), tmp_path / "release"
    with dask_executor(client) as executor:
        bg = Background(name="dask-stop", executor=executor, drain_timeout=WAIT)
        running = bg.submit(tasks.note_after, out, "running", str(release))
        wait_until(running.running, "the task runs")
        report = bg.shutdown(timeout=0.2)
        assert [task.state for task in report.unfinished] == ["running"]
        assert not running.cancelled()
        release.touch()
        assert running.result(timeout=WAIT) != os.getpid()
    assert [line.split()[1] for line in tasks.lines(out)] == ["start", "done"]


def test_a_worker_killed_mid_task_makes_the_task_run_again(bg: Background, tmp_path: Path) -> None:
    # At-least-once delivery (see docs/dask.md): the scheduler sends the task of a worker
    # that died to another worker. The worker processes are this module's cluster's.
    out, release = str(tmp_path / "out"), tmp_path / "release"
    future = bg.submit(tasks.note_after, out, "killed", str(release))
    wait_until(lambda: len(tasks.lines(out)) == 1, "the task started")
    first = int(tasks.lines(out)[0].split()[0])
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: len(tasks.lines(out)) == 2, "the task started again")
    release.touch()
    second = future.result(timeout=WAIT)
    assert second != first
    assert tasks.lines(out) == [
        f"{first} start killed",
        f"{second} start killed",
        f"{second} done killed",
    ]
    assert bg.stats().succeeded == 1


def test_arguments_stay_out_of_the_logs(
    bg: Background, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "hunter2-do-not-log-4d1f"
    with caplog.at_level(logging.DEBUG):
        bg.submit(tasks.fail_quietly, secret)  # nobody retrieves the failure: it is logged
        wait_until(lambda: "the login failed" in caplog.text, "the pool logs the failure")
        assert bg.drain(WAIT).finished
    # The worker logs the failed task ("Compute Failed", with its arguments' repr).
    logs = str(client.get_worker_logs())
    assert "fail_quietly" in logs
    assert secret not in logs
    assert "the login failed" in caplog.text  # the pool logged the failure
    assert secret not in caplog.text
    # Older Dask versions log the task's arguments by repr: it hides them.
    payload = Arguments(pickle.dumps(((secret,), {})))
    assert secret not in repr(payload)
    assert secret not in str(payload)
    assert repr(payload) == f"<task arguments: {len(payload)} bytes>"
    assert type(pickle.loads(pickle.dumps(payload))) is Arguments


def test_a_cancel_during_submission_leaves_nothing_on_the_cluster(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    executor = dask_executor(client)
    submit = client.submit
    sent: list[Any] = []

    def submit_after_a_cancel(*args: Any, **kwargs: Any) -> Any:
        # Another thread's cancel() lands between the executor's bookkeeping and the
        # cluster's answer: reached here through the executor's table of pending tasks.
        assert executor._pending[kwargs["key"]].cancel()
        sent.append(submit(*args, **kwargs))
        return sent[-1]

    monkeypatch.setattr(client, "submit", submit_after_a_cancel)
    with executor:
        future = executor.submit(tasks.pid)
        assert future.cancelled()
        # The Dask future was cancelled too: the scheduler does not keep the task or its result.
        wait_until(sent[0].cancelled, "the Dask future is cancelled")
        wait_until(
            lambda: not client.run_on_scheduler(_scheduler_knows, sent[0].key),
            "the scheduler forgets the task",
        )


def test_one_topic_for_start_reports_and_executors_are_not_kept_alive(
    client: Client, tmp_path: Path
) -> None:
    refs = []
    for i in range(2):
        release = tmp_path / f"release-{i}"
        with dask_executor(client) as executor:
            future = executor.submit(tasks.note_after, str(tmp_path / "out"), "x", str(release))
            wait_until(future.running, "a worker reports the start")
            release.touch()
            future.result(timeout=WAIT)
        refs.append(weakref.ref(executor))
    del executor, future
    gc.collect()
    assert [ref() for ref in refs] == [None, None]  # the user's open client holds neither
    # One topic on the scheduler for all executors of all clients, not one each.
    assert [topic for topic in client.get_events() if "background" in topic] == [
        "background-started"
    ]
