"""`OpenTelemetryObserver`: spans and metrics for the engine's task events.

Spans follow OpenTelemetry's messaging conventions for a consumer that processes one
message at a time: kind CONSUMER, named ``process <task name>``, started when the
attempt starts. The submitting code's span is both the parent (so the task shows in the
request's trace, which is what a reader of that trace wants) and a link (what the
conventions require of every "process" span, and what survives in tools that cut long
traces). No "send" span is made at submission: it would time an in-memory append, at a
cost on every submission.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, TracerProvider

from .._pool import open_pools
from .._version import __version__

SCOPE = "background"
"""The instrumentation scope's name, for tracers and meters."""

# Seconds, from 5 ms to 10 min: what OpenTelemetry advises for durations, stretched to
# the minutes a background task or a backlog may take.
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip
STATES: tuple[str, ...] = ("queued", "scheduled", "running")
COUNTERS = (
    ("submitted", "Tasks a pool accepted."),
    ("succeeded", "Tasks that returned."),
    ("failed", "Tasks that raised, after their last attempt."),
    ("rejected", "Submissions a pool refused."),
)
SUBMITTED, SUCCEEDED, FAILED, REJECTED = range(len(COUNTERS))

Attributes = dict[str, Any]


class OpenTelemetryObserver:
    """The engine's `Observer` (see `background_core._observe`), recording through
    OpenTelemetry's API. Thread-safe."""

    def __init__(
        self, tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None
    ) -> None:
        self._tracer = trace.get_tracer(SCOPE, __version__, tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider)
        # Counted here and reported at collection (asynchronous counters): a synchronous
        # counter's add() costs microseconds, on the submitter's way.
        self._counts: dict[tuple[str, str], list[int]] = {}
        for index, (event, description) in enumerate(COUNTERS):
            meter.create_observable_counter(
                f"background.tasks.{event}", [self._reporter(index)], "{task}", description
            )
        self._queue_wait = meter.create_histogram(
            "background.task.queue_wait",
            "s",
            "Time an attempt waited in its pool's queue before it started.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._duration = meter.create_histogram(
            "background.task.duration",
            "s",
            "Time an attempt ran.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._unfinished = meter.create_observable_up_down_counter(
            "background.task.count",
            [self._observe],
            "{task}",
            "Tasks in flight now, by state: queued, scheduled (waiting for their time) or running.",
        )
        self._lock = threading.Lock()
        self._attributes: dict[tuple[str, str], Attributes] = {}
        self._seen: set[tuple[str, str]] = set()  # reported once: 0 when none are left
        self._stopped = False

    def stop(self) -> None:
        """Record no more; the count's callback, which cannot be removed, reports nothing."""
        self._stopped = True

    # -- the engine's events ---------------------------------------------------------

    def submitted(self, pool: str, name: str) -> None:
        self._count(pool, name, SUBMITTED)

    def rejected(self, pool: str, name: str) -> None:
        self._count(pool, name, REJECTED)

    def attempt(self, pool: str, name: str, task_id: int, attempt: int, waited: float) -> _Attempt:
        attributes = self._attributes_of(pool, name)
        self._queue_wait.record(waited, attributes)
        return _Attempt(
            self,
            attributes,
            {
                "messaging.system": "background",
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.destination.name": pool,
                "messaging.message.id": str(task_id),
                "background.pool": pool,
                "background.task.name": name,
                "background.task.id": task_id,
                "background.task.attempt": attempt,
                "background.task.queue_wait": waited,
            },
        )

    def finished(self, pool: str, name: str, error: BaseException | None) -> None:
        self._count(pool, name, SUCCEEDED if error is None else FAILED)

    # -- helpers -----------------------------------------------------------------------

    def _count(self, pool: str, name: str, index: int) -> None:
        with self._lock:
            counts = self._counts.get((pool, name))
            if counts is None:
                counts = self._counts[(pool, name)] = [0] * len(COUNTERS)
            counts[index] += 1

    def _reporter(self, index: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def report(options: CallbackOptions) -> Iterable[Observation]:
            if self._stopped:
                return []
            with self._lock:
                totals = [(key, counts[index]) for key, counts in self._counts.items()]
            return [Observation(total, self._attributes_of(*key)) for key, total in totals if total]

        return report

    def _attributes_of(self, pool: str, name: str) -> Attributes:
        """The metrics' attributes of a (pool, task name): one dict each, made once."""
        key = (pool, name)
        attributes = self._attributes.get(key)
        if attributes is None:
            with self._lock:
                attributes = self._attributes.setdefault(
                    key, {"background.pool": pool, "background.task.name": name}
                )
        return attributes

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        """How many tasks are in each state now, by pool and task name; 0 for those seen
        before and gone since, so the count falls back to 0 rather than staying put.

        Costs a walk over every task in flight, once per collection (a minute by
        default), not on any task's way.
        """
        if self._stopped:
            return []
        counts: Counter[tuple[str, str, str]] = Counter(
            (pool.name, task.name, task.state)
            for pool in open_pools()
            for task in pool.unfinished()
        )
        with self._lock:
            keys = {(pool, name) for pool, name, _ in counts} | self._seen
            self._seen = keys
        return [
            Observation(
                counts[(pool, name, state)],
                {**self._attributes_of(pool, name), "background.task.state": state},
            )
            for pool, name in sorted(keys)
            for state in STATES
        ]


class _Attempt:
    """One attempt's span (current while it runs) and its duration."""

    __slots__ = ("_attributes", "_observer", "_span", "_span_attributes", "_started", "_token")

    def __init__(
        self, observer: OpenTelemetryObserver, attributes: Attributes, span_attributes: Attributes
    ) -> None:
        self._observer = observer
        self._attributes = attributes
        self._span_attributes = span_attributes

    def __enter__(self) -> Span:
        # Entered in the task's context: the current span is the submitter's.
        parent = trace.get_current_span().get_span_context()
        attributes = self._span_attributes
        self._span = span = self._observer._tracer.start_span(
            f"process {attributes['background.task.name']}",
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=[Link(parent)] if parent.is_valid else None,
            record_exception=False,
            set_status_on_exception=False,
        )
        self._token = otel_context.attach(trace.set_span_in_context(span))
        self._started = time.perf_counter()
        return span

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        elapsed = time.perf_counter() - self._started
        span, attributes = self._span, self._attributes
        try:
            if error is not None:
                error_type = _qualified_name(type(error))
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, error_type))  # not its message
                span.set_attribute("error.type", error_type)
                attributes = {**attributes, "error.type": error_type}
            span.end()
        finally:
            otel_context.detach(self._token)
            del self._span, self._token  # the span's ended: hold nothing past the attempt
        self._observer._duration.record(elapsed, attributes)


def _qualified_name(kind: type[BaseException]) -> str:
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"
