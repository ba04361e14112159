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

import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import TracerProvider

from .._pool import running_pools
from .._report import log_fields
from .._version import __version__
from ._attempt import Attempt

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

logger = logging.getLogger("background")


class OpenTelemetryObserver:
    """The engine's `Observer` (see `background_core._observe`), recording through
    OpenTelemetry's API. Thread-safe. What OpenTelemetry raises (a user's exporter, say)
    is logged once and never reaches a task."""

    def __init__(
        self, tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None
    ) -> None:
        self.providers = (tracer_provider, meter_provider)
        # The state first: a collection may come as soon as an instrument exists.
        self._stopped = self._complained = False
        self._reset()
        os.register_at_fork(after_in_child=self._reset)
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider)
        # Counted here and reported at collection (asynchronous counters): a synchronous
        # counter's add() costs microseconds, on the submitter's way.
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
        self.duration = meter.create_histogram(
            "background.task.duration",
            "s",
            "Time an attempt ran.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        meter.create_observable_up_down_counter(
            "background.task.count",
            [self._observe],
            "{task}",
            "Tasks in flight now, by state: queued, scheduled (waiting for their time) or running.",
        )

    def _reset(self) -> None:
        """Start counting afresh: at first, and in a forked child (whose pools start
        afresh too; a lock held in the parent at the fork would never be released)."""
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], list[int]] = {}
        self._attributes: dict[tuple[str, str], Attributes] = {}
        self._seen: set[tuple[str, str]] = set()  # reported once: 0 when none are left
        self._running: dict[tuple[str, int], Attempt] = {}  # attempts under way

    def stop(self) -> None:
        """Record no more. The instruments stay with the meter (OpenTelemetry cannot
        remove them), and report nothing until `resume`."""
        self._stopped = True

    def resume(self) -> None:
        """Record again, with the same instruments; the counters go on from where they
        were (they are cumulative)."""
        self._stopped = False

    # -- the engine's events ---------------------------------------------------------

    def submitted(self, pool: str, name: str) -> None:
        self._count(pool, name, SUBMITTED)

    def rejected(self, pool: str, name: str) -> None:
        self._count(pool, name, REJECTED)

    def attempt(
        self, pool: str, name: str, task_id: int, attempt: int, waited: float
    ) -> Attempt | None:
        if self._stopped:
            return None
        attributes = self._attributes_of(pool, name)
        self._queue_wait.record(waited, attributes)
        return Attempt(
            self,
            (pool, task_id),
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

    def finished(self, pool: str, name: str, task_id: int, error: BaseException | None) -> None:
        self._count(pool, name, SUCCEEDED if error is None else FAILED)
        if error is not None:
            # A sync task that timed out: its future failed at the deadline, while its
            # thread still runs the attempt. Its span says so now.
            with self._lock:
                running = self._running.get((pool, task_id))
            if running is not None:
                running.fail(error)

    # -- helpers -----------------------------------------------------------------------

    def _count(self, pool: str, name: str, index: int) -> None:
        if self._stopped:
            return
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
        default), not on any task's way. Pools that are shutting down count until their
        drain ends: that is when their backlog matters.
        """
        if self._stopped:
            return []
        counts: Counter[tuple[str, str, str]] = Counter(
            (pool.name, task.name, task.state)
            for pool in running_pools()
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

    def track(self, key: tuple[str, int], attempt: Attempt) -> None:
        """`attempt` of task `key` (pool, id) started."""
        with self._lock:
            self._running[key] = attempt

    def untrack(self, key: tuple[str, int]) -> None:
        """The attempt of task `key` ended."""
        with self._lock:
            self._running.pop(key, None)

    def complain(self, what: str) -> None:
        """Log what OpenTelemetry raised, the first time only (it may raise each time)."""
        if not self._complained:
            self._complained = True
            logger.exception(
                "OpenTelemetry raised while %s; the task goes on, and further errors of "
                "the instrumentation are not logged",
                what,
                extra=log_fields(None),
            )
