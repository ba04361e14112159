"""`Attempt`: one attempt's span, current while it runs, and its duration."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import Histogram
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer

Attributes = dict[str, Any]


class Observer(Protocol):
    """What an attempt needs of the observer that made it."""

    tracer: Tracer
    duration: Histogram

    def track(self, key: tuple[str, int], attempt: Attempt) -> None: ...

    def untrack(self, key: tuple[str, int]) -> None: ...

    def complain(self, what: str) -> None: ...


class Attempt:
    """One attempt's span (current while it runs) and its duration. Never raises."""

    __slots__ = (
        "_attributes",
        "_error",
        "_key",
        "_observer",
        "_span",
        "_span_attributes",
        "_started",
        "_token",
    )

    def __init__(
        self,
        observer: Observer,
        key: tuple[str, int],
        attributes: Attributes,
        span_attributes: Attributes,
    ) -> None:
        self._observer = observer
        self._key = key
        self._attributes = attributes
        self._span_attributes = span_attributes
        self._span: Span | None = None
        self._token: object = None
        self._error: BaseException | None = None

    def __enter__(self) -> Attempt:
        observer = self._observer
        try:
            # Entered in the task's context: the current span is the submitter's.
            parent = trace.get_current_span().get_span_context()
            attributes = self._span_attributes
            self._span = span = observer.tracer.start_span(
                f"process {attributes['background.task.name']}",
                kind=SpanKind.CONSUMER,
                attributes=attributes,
                links=[Link(parent)] if parent.is_valid else None,
                record_exception=False,
                set_status_on_exception=False,
            )
            self._token = otel_context.attach(trace.set_span_in_context(span))
        except Exception:
            observer.complain("starting a task's span")
        observer.track(self._key, self)
        self._started = time.perf_counter()
        return self

    def fail(self, error: BaseException) -> None:
        """The task failed while this attempt runs (its timeout): say so on the span."""
        self._error = error
        if self._span is not None:
            try:
                self._mark(self._span, error)
            except Exception:
                self._observer.complain("marking a task's span")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        elapsed = time.perf_counter() - self._started
        observer, span, attributes = self._observer, self._span, self._attributes
        observer.untrack(self._key)
        error = self._error or error  # a timeout's, if the task failed by it meanwhile
        try:
            if error is not None:
                error_type = _qualified_name(type(error))
                attributes = {**attributes, "error.type": error_type}
                if span is not None and self._error is None:
                    self._mark(span, error)
            if span is not None:
                span.end()
            observer.duration.record(
                elapsed,
                attributes,
                # The task's span, for exemplars (the current one is the task's still).
                context=trace.set_span_in_context(span) if span is not None else None,
            )
        except Exception:
            observer.complain("ending a task's span")
        finally:
            if self._token is not None:
                otel_context.detach(self._token)  # type: ignore[arg-type]
            self._span = self._token = self._error = None  # hold nothing past the attempt

    @staticmethod
    def _mark(span: Span, error: BaseException) -> None:
        error_type = _qualified_name(type(error))
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, error_type))  # not its message
        span.set_attribute("error.type", error_type)


def _qualified_name(kind: type[BaseException]) -> str:
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"
