"""Structured log fields: each record the engine writes carries ``pool``, ``task_name``,
``task_id`` and ``attempt`` as attributes (``extra=``), so a JSON formatter gives them as
top-level keys. Each kind of record is provoked through the public API."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import types
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from pythonjsonlogger.json import JsonFormatter

from background_core import (
    Background,
    BrokenPool,
    QueueFull,
    TaskInfo,
    log_fields,
    warn_if_unguarded,
)

from ..helpers import SECRET, WAIT, Gate, noop

FIELDS = ("pool", "task_name", "task_id", "attempt")


class Collected(logging.Handler):
    """Keeps the records of logger "background"; a test waits for them on a condition."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.changed:
            self.records.append(record)
            self.changed.notify_all()

    def of(self, pool: str) -> list[logging.LogRecord]:
        """The records of `pool` (a future of another test may be freed meanwhile)."""
        with self.changed:
            return [r for r in self.records if getattr(r, "pool", None) == pool]

    def wait_for(self, pool: str, count: int) -> list[logging.LogRecord]:
        """The records of `pool`, once there are `count` of them (bounded)."""
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.of(pool)) >= count, WAIT), (
                f"{count} records of pool {pool!r}; got {[r.getMessage() for r in self.of(pool)]}"
            )
        return self.of(pool)


@pytest.fixture
def logged() -> Iterator[Collected]:
    handler = Collected()
    logger = logging.getLogger("background")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def fields_of(record: logging.LogRecord) -> tuple[object, ...]:
    """The four fields, each of which every record must have (None is a value)."""
    missing = [key for key in FIELDS if key not in record.__dict__]
    assert not missing, f"{record.getMessage()!r} lacks {missing}"
    return tuple(record.__dict__[key] for key in FIELDS)


def as_json(record: logging.LogRecord) -> dict[str, Any]:
    """The record as python-json-logger writes it: one JSON object per line."""
    line = JsonFormatter().format(record)
    assert "\n" not in line
    document: dict[str, Any] = json.loads(line)
    assert SECRET not in line
    return document


def check(record: logging.LogRecord, expected: tuple[object, ...]) -> dict[str, Any]:
    """The record's fields are `expected`, and top-level keys of its JSON form too."""
    assert fields_of(record) == expected
    document = as_json(record)
    assert tuple(document[key] for key in FIELDS) == expected
    return document


# -- the helper --------------------------------------------------------------------------


def test_log_fields_always_has_the_four_keys() -> None:
    assert log_fields("mail") == dict.fromkeys(FIELDS, None) | {"pool": "mail"}
    assert log_fields("mail", "send", 3, 2, refused=5) == {
        "pool": "mail",
        "task_name": "send",
        "task_id": 3,
        "attempt": 2,
        "refused": 5,
    }
    assert log_fields(None)["pool"] is None


def test_log_fields_never_names_a_log_record_attribute() -> None:
    info = TaskInfo(name="send", id=4, state="running", age=1.0, started_at=None, attempt=2)
    fields = log_fields("mail", "send", 4, 2, unfinished=[info], refused=1)
    unfinished = fields["unfinished"]
    assert unfinished == [{"task_name": "send", "task_id": 4, "attempt": 2, "state": "running"}]
    # logging refuses extra= keys that a record has, or that it makes when formatted.
    reserved = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
    assert not set(fields) & reserved
    assert isinstance(unfinished, list)
    assert not set(unfinished[0]) & reserved


# -- records about one task ----------------------------------------------------------------


def test_a_failure_nobody_retrieves_names_its_task(logged: Collected) -> None:
    with Background(1, name="lf-fail") as bg:
        explode = bg.task(name="explode")(fail_with)
        explode(SECRET)  # fired and forgotten: logged as soon as it failed
        [record] = logged.wait_for("lf-fail", 1)
    assert record.levelno == logging.ERROR
    document = check(record, ("lf-fail", "explode", 1, 1))
    assert document["message"] == "task 'explode' (id 1) in pool 'lf-fail' failed"
    assert "exc_info" in document  # the traceback, as one JSON string


def test_a_retry_warns_with_the_attempt_and_the_last_failure_counts_it(
    logged: Collected,
) -> None:
    with Background(1, name="lf-retry") as bg:
        always = bg.task(name="always", retries=1, backoff=0.01, jitter=False)(fail_with)
        always(SECRET)  # fired and forgotten: fails twice, then is logged
        retry, failure = logged.wait_for("lf-retry", 2)
        flaky = bg.using(retries=1, backoff=0.01, jitter=False).submit(Flaky())
        assert flaky.result(timeout=WAIT) == "ok"
        records = logged.wait_for("lf-retry", 3)
    assert retry.levelno == logging.WARNING
    assert "failed on attempt 1 of 2" in retry.getMessage()
    check(retry, ("lf-retry", "always", 1, 1))
    assert failure.levelno == logging.ERROR
    check(failure, ("lf-retry", "always", 1, 2))
    check(records[2], ("lf-retry", "Flaky", 2, 1))
    assert len(records) == 3  # the retry that succeeded warned once; nothing failed


def test_a_raising_callback_names_the_task_it_was_called_for(logged: Collected) -> None:
    with Background(1, name="lf-callback") as bg:

        @bg.callback
        def broken(future: Future[Any]) -> None:
            raise RuntimeError("callback broke")

        bg.submit(noop).result(timeout=WAIT)
        assert bg.drain(timeout=WAIT).finished  # callbacks have run once a drain ends
    [record] = logged.of("lf-callback")
    assert record.levelno == logging.ERROR
    assert record.getMessage() == (
        "callback test_a_raising_callback_names_the_task_it_was_called_for.<locals>.broken "
        "raised for task 'noop' (id 1) in pool 'lf-callback'"
    )
    check(record, ("lf-callback", "noop", 1, 1))


def test_a_raising_on_error_hook_and_the_failure_both_name_the_task(
    logged: Collected,
) -> None:
    def on_error(error: BaseException, task: TaskInfo) -> None:
        raise RuntimeError("hook broke")

    with Background(1, name="lf-hook", on_error=on_error) as bg:
        bg.submit(noop).result(timeout=WAIT)
        failed = bg.task(name="explode", retries=1, backoff=0.01, jitter=False)(fail_with)
        assert isinstance(failed(SECRET).exception(timeout=WAIT), ValueError)
        assert bg.drain(timeout=WAIT).finished  # hooks have run once a drain ends
    retry, hook, failure = logged.of("lf-hook")
    check(retry, ("lf-hook", "explode", 2, 1))
    assert hook.getMessage() == (
        "the on_error hook raised for task 'explode' (id 2) in pool 'lf-hook'"
    )
    check(hook, ("lf-hook", "explode", 2, 2))
    assert failure.getMessage() == "task 'explode' (id 2) in pool 'lf-hook' failed"
    check(failure, ("lf-hook", "explode", 2, 2))


class Stop(BaseException):
    """Not an Exception: the stdlib's future lets it out of a done-callback."""


def test_a_done_callback_that_raises_past_the_future_names_the_task(
    logged: Collected,
) -> None:
    with Background(1, name="lf-done") as bg, Gate() as gate:
        future = bg.task(name="held")(gate)()
        assert gate.started.wait(WAIT)

        def stop(done: Future[Any]) -> None:
            raise Stop

        future.add_done_callback(stop)
        gate.open()
        [record] = logged.wait_for("lf-done", 1)
    assert record.getMessage() == "a done-callback raised for task 'held' (id 1) in pool 'lf-done'"
    check(record, ("lf-done", "held", 1, 1))


# -- records about a pool ------------------------------------------------------------------


def test_a_shutdown_lists_the_tasks_it_left(logged: Collected) -> None:
    bg = Background(1, name="lf-shutdown", drain_timeout=0.1)
    with Gate() as gate:
        bg.task(name="blocked")(gate)(SECRET)
        assert gate.started.wait(WAIT)
        bg.task(name="waiting")(noop)()
        report = bg.shutdown()  # at its drain_timeout, with the gate still closed
        [record] = logged.of("lf-shutdown")
    assert len(report.unfinished) == 2
    assert record.levelno == logging.WARNING
    unfinished = [
        {"task_name": "blocked", "task_id": 1, "attempt": 1, "state": "running"},
        {"task_name": "waiting", "task_id": 2, "attempt": 1, "state": "queued"},
    ]
    assert record.__dict__["unfinished"] == unfinished
    document = check(record, ("lf-shutdown", None, None, None))
    assert document["unfinished"] == unfinished


def test_the_refusal_summary_keeps_its_count(logged: Collected) -> None:
    bg = Background(1, name="lf-full", max_queue=1, on_full="raise")
    with Gate() as gate:
        bg.submit(gate)
        assert gate.started.wait(WAIT)
        bg.submit(noop)
        with pytest.raises(QueueFull):
            bg.submit(noop, SECRET)
        [record] = logged.of("lf-full")  # the first refusal is logged at once
        gate.open()
        bg.shutdown()
    assert record.__dict__["refused"] == 1
    document = check(record, ("lf-full", None, None, None))
    assert document["refused"] == 1


def test_a_broken_initializer_names_its_pool(logged: Collected) -> None:
    def setup() -> None:
        raise ValueError("no database")

    bg = Background(1, name="lf-broken", initializer=setup)
    try:
        with pytest.raises(BrokenPool):
            bg.submit(noop).result(timeout=WAIT)
    finally:
        bg.shutdown()
    [record] = logged.of("lf-broken")
    assert record.levelno == logging.CRITICAL
    check(record, ("lf-broken", None, None, None))


def test_an_owned_executor_that_fails_to_shut_down_names_the_pool(logged: Collected) -> None:
    class Stubborn(ThreadPoolExecutor):
        def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
            super().shutdown(wait=wait, cancel_futures=cancel_futures)
            raise RuntimeError("will not stop")

    threads = Stubborn(1)
    bg = Background(name="lf-owned", executor=threads, own_executor=True)
    assert bg.submit(noop).result(timeout=WAIT) is None
    bg.shutdown()
    ThreadPoolExecutor.shutdown(threads)  # joins its thread
    [record] = logged.of("lf-owned")
    assert record.levelno == logging.ERROR
    check(record, ("lf-owned", None, None, None))


def test_the_unguarded_server_warning_names_the_pool(
    logged: Collected, monkeypatch: pytest.MonkeyPatch
) -> None:
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.skip("something here handles SIGTERM: no server would end the process")
    monkeypatch.setitem(sys.modules, "waitress", types.ModuleType("waitress"))
    assert warn_if_unguarded("lf-server", "Set the switch")
    [record] = logged.of("lf-server")
    check(record, ("lf-server", None, None, None))


# -- task bodies ---------------------------------------------------------------------------


def fail_with(secret: str) -> None:
    raise ValueError("boom")


class Flaky:
    """Fails its first call, then returns "ok"."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("temporarily down")
        return "ok"
