"""OpenTelemetry through the public API, read back with the SDK's in-memory exporter and
metric reader: one span per attempt in the submitter's trace, error status, counters,
gauges and histograms by pool and task name; nothing recorded, nor imported, when off."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.trace import SpanKind, StatusCode

from background_core import Background, QueueFull
from background_core.otel import instrument, is_instrumented, uninstrument
from tests.helpers import SECRET, WAIT, Gate, run_script, wait_until

from .conftest import Recorded


def send_email(address: str) -> str:
    return "sent"


def bounce(address: str) -> None:
    raise ConnectionRefusedError("the SMTP server said no")


def test_a_task_span_continues_the_submitters_trace(recorded: Recorded) -> None:
    tracer = recorded.tracer_provider.get_tracer("test")
    with Background(2, name="mail") as bg, tracer.start_as_current_span("request") as request:
        future = bg.submit(send_email, SECRET)
        assert future.result(timeout=WAIT) == "sent"
    (span,) = recorded.spans("process send_email")
    parent = request.get_span_context()
    assert span.kind is SpanKind.CONSUMER
    assert span.parent is not None
    assert span.parent.span_id == parent.span_id
    assert span.context.trace_id == parent.trace_id
    assert [link.context.span_id for link in span.links] == [parent.span_id]
    assert span.status.status_code is StatusCode.UNSET
    attributes = dict(span.attributes or {})
    waited = attributes.pop("background.task.queue_wait")
    assert isinstance(waited, float)
    assert 0 <= waited < WAIT
    assert attributes == {
        "messaging.system": "background",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": "mail",
        "messaging.message.id": "1",
        "background.pool": "mail",
        "background.task.name": "send_email",
        "background.task.id": 1,
        "background.task.attempt": 1,
    }
    assert SECRET not in repr(span.to_json())


def test_a_task_submitted_outside_any_span_starts_a_trace_of_its_own(
    recorded: Recorded,
) -> None:
    with Background(1, name="mail") as bg:
        bg.submit(send_email, SECRET).result(timeout=WAIT)
    (span,) = recorded.spans()
    assert span.parent is None
    assert not span.links


def test_the_task_span_is_current_while_it_runs(recorded: Recorded) -> None:
    tracer = recorded.tracer_provider.get_tracer("test")

    def connect() -> None:
        with tracer.start_as_current_span("smtp connect"):
            pass

    with Background(1, name="mail") as bg:
        bg.submit(connect).result(timeout=WAIT)
    (inner,) = recorded.spans("smtp connect")
    (task,) = recorded.spans("process test_the_task_span_is_current_while_it_runs.<locals>.connect")
    assert inner.parent is not None
    assert inner.parent.span_id == task.context.span_id


def test_a_failure_sets_error_status_and_records_the_exception(recorded: Recorded) -> None:
    with Background(1, name="mail") as bg:
        future = bg.submit(bounce, SECRET)
        assert isinstance(future.exception(timeout=WAIT), ConnectionRefusedError)
    (span,) = recorded.spans("process bounce")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "ConnectionRefusedError"
    assert span.attributes is not None
    assert span.attributes["error.type"] == "ConnectionRefusedError"
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "ConnectionRefusedError"
    assert SECRET not in repr(span.to_json())
    assert recorded.value("background.tasks.failed", pool="mail", task="bounce") == 1
    assert recorded.value("background.tasks.succeeded", pool="mail", task="bounce") is None
    duration = recorded.value(
        "background.task.duration",
        pool="mail",
        task="bounce",
        **{"error.type": "ConnectionRefusedError"},
    )
    assert duration == 1


def test_each_attempt_of_a_retried_task_has_its_span(recorded: Recorded) -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("down")
        return "up"

    with Background(1, name="mail") as bg:
        task = bg.task(name="flaky", retries=2, backoff=0.01, jitter=False)(flaky)
        assert task().result(timeout=WAIT) == "up"
    spans = sorted(recorded.spans("process flaky"), key=lambda s: s.start_time or 0)
    assert [s.attributes["background.task.attempt"] for s in spans] == [1, 2, 3]  # type: ignore[index]
    assert [s.status.status_code for s in spans] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    # The backoff is not queue wait: each attempt waited in the queue only after its time came.
    for span in spans:
        assert span.attributes is not None
        assert span.attributes["background.task.queue_wait"] < 0.5  # type: ignore[operator]
    # One task: submitted once, succeeded once, three attempts timed.
    assert recorded.value("background.tasks.submitted", pool="mail", task="flaky") == 1
    assert recorded.value("background.tasks.succeeded", pool="mail", task="flaky") == 1
    assert recorded.value("background.tasks.failed", pool="mail", task="flaky") is None
    assert recorded.value("background.task.duration", pool="mail", task="flaky") == 1
    errors = recorded.value(
        "background.task.duration", pool="mail", task="flaky", **{"error.type": "ConnectionError"}
    )
    assert errors == 2
    assert recorded.value("background.task.queue_wait", pool="mail", task="flaky") == 3


def test_an_async_task_has_its_span_in_the_submitters_trace(recorded: Recorded) -> None:
    tracer = recorded.tracer_provider.get_tracer("test")

    async def notify() -> str:
        await asyncio.sleep(0)
        with tracer.start_as_current_span("inside"):
            return "done"

    with Background(1, name="mail") as bg, tracer.start_as_current_span("request") as request:
        assert bg.submit(notify).result(timeout=WAIT) == "done"
    (task,) = [s for s in recorded.spans() if s.name.endswith("notify")]
    (inside,) = recorded.spans("inside")
    assert task.parent is not None
    assert task.parent.span_id == request.get_span_context().span_id
    assert inside.parent is not None
    assert inside.parent.span_id == task.context.span_id


def test_an_async_task_that_times_out_ends_its_span_in_error(recorded: Recorded) -> None:
    async def hang() -> None:
        await asyncio.Event().wait()

    with Background(1, name="mail") as bg:
        future = bg.task(name="hang", timeout=0.05)(hang)()
        assert isinstance(future.exception(timeout=WAIT), TimeoutError)
    (span,) = recorded.spans("process hang")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "TimeoutError"


def test_counters_and_histograms_by_pool_and_task(recorded: Recorded) -> None:
    with Background(2, name="mail") as mail, Background(1, name="sms") as sms:
        futures = [mail.submit(send_email, SECRET) for _ in range(5)]
        futures += [sms.submit(send_email, SECRET) for _ in range(2)]
        futures.append(mail.submit(bounce, SECRET))
        for future in futures:
            future.exception(timeout=WAIT)
    assert recorded.value("background.tasks.submitted", pool="mail", task="send_email") == 5
    assert recorded.value("background.tasks.submitted", pool="sms", task="send_email") == 2
    assert recorded.value("background.tasks.submitted", pool="mail", task="bounce") == 1
    assert recorded.value("background.tasks.succeeded", pool="mail", task="send_email") == 5
    assert recorded.value("background.tasks.succeeded", pool="sms", task="send_email") == 2
    (histogram,) = [
        p
        for p in recorded.points("background.task.queue_wait")
        if dict(p.attributes) == {"background.pool": "mail", "background.task.name": "send_email"}
    ]
    assert histogram.count == 5
    assert histogram.sum >= 0
    assert sum(histogram.bucket_counts) == 5
    assert histogram.explicit_bounds[0] == 0.005  # seconds, not the SDK's milliseconds
    assert recorded.value("background.task.duration", pool="sms", task="send_email") == 2


def test_a_refused_submission_is_counted_rejected(recorded: Recorded) -> None:
    gate = Gate()
    with Background(1, name="mail", max_queue=1, on_full="raise") as bg:
        bg.submit(gate)
        assert gate.started.wait(WAIT)
        bg.submit(send_email, SECRET)  # waits in the queue, which is now full
        with pytest.raises(QueueFull):
            bg.submit(send_email, SECRET)
        with pytest.raises(QueueFull):
            bg.task(delay=60)(send_email)(SECRET)  # a delayed one needs room too
        gate.open()
    with pytest.raises(RuntimeError):
        bg.submit(send_email, SECRET)  # closed
    assert recorded.value("background.tasks.rejected", pool="mail", task="send_email") == 3
    assert recorded.value("background.tasks.submitted", pool="mail", task="send_email") == 1


def test_gauges_count_tasks_queued_scheduled_and_running(recorded: Recorded) -> None:
    gate = Gate()
    bg = Background(1, name="mail")
    try:
        bg.submit(gate)
        assert gate.started.wait(WAIT)
        for _ in range(3):
            bg.submit(send_email, SECRET)
        bg.task(delay=60)(send_email)(SECRET)
        running = threading.Event()
        bg.submit(running.set)  # queued behind the gate: proves nothing ran yet
        assert not running.is_set()
        count = "background.task.count"
        state = "background.task.state"
        assert recorded.value(count, pool="mail", task="Gate", **{state: "running"}) == 1
        assert recorded.value(count, pool="mail", task="send_email", **{state: "queued"}) == 3
        assert recorded.value(count, pool="mail", task="send_email", **{state: "scheduled"}) == 1
        assert recorded.value(count, pool="mail", task="send_email", **{state: "running"}) == 0
    finally:
        gate.open()
        bg.shutdown(cancel_futures=True)
    for each in ("queued", "scheduled", "running"):
        assert recorded.value(count, pool="mail", task="send_email", **{state: each}) == 0


def test_tasks_sent_to_another_executor_are_counted_without_a_span(recorded: Recorded) -> None:
    with ThreadPoolExecutor(1) as executor, Background(1, name="mail", executor=executor) as bg:
        assert bg.submit(send_email, SECRET).result(timeout=WAIT) == "sent"
    assert recorded.value("background.tasks.succeeded", pool="mail", task="send_email") == 1
    assert not recorded.spans()


def test_nothing_is_recorded_once_uninstrumented(recorded: Recorded) -> None:
    uninstrument()
    assert not is_instrumented()
    with Background(1, name="mail") as bg:
        bg.submit(send_email, SECRET).result(timeout=WAIT)
    assert not recorded.spans()
    assert recorded.points("background.tasks.submitted") == []
    assert recorded.points("background.task.count") == []


def test_instrument_again_with_the_same_providers_does_nothing_and_others_raise(
    recorded: Recorded,
) -> None:
    instrument(tracer_provider=recorded.tracer_provider, meter_provider=recorded.meter_provider)
    with pytest.raises(RuntimeError, match=r"uninstrument\(\) first"):
        instrument()  # the global providers
    assert is_instrumented()
    with Background(1, name="mail") as bg:
        bg.submit(send_email, SECRET).result(timeout=WAIT)
    assert len(recorded.spans()) == 1
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_instrumented_again_the_counters_go_on(recorded: Recorded) -> None:
    # OpenTelemetry keeps a meter's instruments, callbacks and all: a second instrument()
    # on the same providers must not leave the counters to the first one's.
    with Background(1, name="mail") as bg:
        bg.submit(send_email, SECRET).result(timeout=WAIT)
        uninstrument()
        bg.submit(send_email, SECRET).result(timeout=WAIT)  # not recorded
        instrument(tracer_provider=recorded.tracer_provider, meter_provider=recorded.meter_provider)
        bg.submit(send_email, SECRET).result(timeout=WAIT)
    assert recorded.value("background.tasks.submitted", pool="mail", task="send_email") == 2
    assert recorded.value("background.tasks.succeeded", pool="mail", task="send_email") == 2
    assert len(recorded.spans()) == 2


class Raising:
    """A span processor (or metric exporter's part) that raises: a user's, broken."""

    def __init__(self, where: str) -> None:
        self.where = where

    def on_start(self, span: object, parent_context: object = None) -> None:
        if self.where == "start":
            raise RuntimeError("exporter hiccup")

    def on_end(self, span: object) -> None:
        if self.where == "end":
            raise RuntimeError("exporter hiccup")

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@pytest.mark.parametrize("where", ["start", "end"])
def test_an_instrumentation_that_raises_never_reaches_the_task(
    recorded: Recorded, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    recorded.tracer_provider.add_span_processor(Raising(where))  # type: ignore[arg-type]
    sent = []

    def send(address: str) -> str:
        sent.append(address)
        return "sent"

    with Background(2, name="mail") as bg:
        once = bg.task(name="send", retries=2, backoff=0.01)(send)
        assert [once(SECRET).result(timeout=WAIT) for _ in range(3)] == ["sent"] * 3
        assert bg.submit(asyncio.sleep, 0, "slept").result(timeout=WAIT) == "slept"
    assert len(sent) == 3  # each ran once: no failure made up, no retry
    assert recorded.value("background.tasks.succeeded", pool="mail", task="send") == 3
    complaints = [r for r in caplog.records if "OpenTelemetry raised" in r.getMessage()]
    assert len(complaints) == 1, complaints  # once, not per task
    assert SECRET not in caplog.text


class RaisingMeterProvider(NoOpMeterProvider):
    """A meter provider whose histograms raise on every record: a user's, broken."""

    def get_meter(self, *args: Any, **kwargs: Any) -> Any:
        meter = super().get_meter(*args, **kwargs)

        class Histogram:
            def record(self, *args: object, **kwargs: object) -> None:
                raise RuntimeError("meter hiccup")

        meter.create_histogram = lambda *a, **k: Histogram()  # type: ignore[method-assign]
        return meter


def test_a_meter_that_raises_never_reaches_the_task(caplog: pytest.LogCaptureFixture) -> None:
    uninstrument()
    instrument(meter_provider=RaisingMeterProvider())
    try:
        with Background(1, name="mail") as bg:
            assert bg.submit(send_email, SECRET).result(timeout=WAIT) == "sent"
            assert bg.submit(asyncio.sleep, 0, "slept").result(timeout=WAIT) == "slept"
            assert isinstance(bg.submit(bounce, SECRET).exception(timeout=WAIT), OSError)
        assert bg.stats().succeeded == 2
        assert bg.stats().failed == 1
    finally:
        uninstrument()
    assert any("raised" in r.getMessage() for r in caplog.records)


def test_a_sync_task_that_times_out_has_its_span_in_error_at_the_deadline(
    recorded: Recorded,
) -> None:
    gate = Gate()
    with Background(1, name="mail") as bg, gate:  # the gate opens first
        future = bg.task(name="slow", timeout=0.05)(gate)()
        assert isinstance(future.exception(timeout=WAIT), TimeoutError)
        assert recorded.value("background.tasks.failed", pool="mail", task="slow") == 1
    (span,) = recorded.spans("process slow")  # ended when its thread returned
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "TimeoutError"
    failed = recorded.value(
        "background.task.duration", pool="mail", task="slow", **{"error.type": "TimeoutError"}
    )
    assert failed == 1


def test_a_task_an_executor_refuses_is_counted_rejected(recorded: Recorded) -> None:
    executor = ThreadPoolExecutor(1)
    executor.shutdown()
    with Background(1, name="mail", executor=executor) as bg:
        with pytest.raises(RuntimeError):
            bg.submit(send_email, SECRET)
        assert bg.stats().rejected == 1
    assert recorded.value("background.tasks.rejected", pool="mail", task="send_email") == 1
    assert recorded.value("background.tasks.submitted", pool="mail", task="send_email") is None


def test_the_count_goes_on_while_a_pool_drains(recorded: Recorded) -> None:
    gate = Gate()
    bg = Background(1, name="mail", drain_timeout=WAIT)
    bg.submit(gate)
    assert gate.started.wait(WAIT)
    bg.submit(send_email, SECRET)
    closing = threading.Thread(target=bg.shutdown)
    closing.start()
    try:
        wait_until(lambda: bg.closed, "the pool closed")
        state = "background.task.state"
        count = "background.task.count"
        assert recorded.value(count, pool="mail", task="send_email", **{state: "queued"}) == 1
        assert recorded.value(count, pool="mail", task="Gate", **{state: "running"}) == 1
    finally:
        gate.open()
        closing.join(WAIT)


def test_nothing_of_the_instrumentation_is_imported_when_off(tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        """
        import sys
        import fastapi, flask, starlette  # FastAPI may import OpenTelemetry's API itself
        before = {m for m in sys.modules if m.startswith("opentelemetry")}

        import background
        import background_core
        import fastapi_background
        import flask_background

        app = flask.Flask("off")
        ext = flask_background.Background(app)
        with app.app_context():
            ext.submit(print, "flask").result(timeout=10)
        background.task(print)("seed").result(timeout=10)
        with background_core.Background(1) as bg:
            bg.submit(print, "core").result(timeout=10)
        ours = [m for m in sys.modules if m.startswith("background_core.otel")]
        more = {m for m in sys.modules if m.startswith("opentelemetry")} - before
        print("loaded:", ours, sorted(more))
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert "loaded: [] []" in proc.stdout
