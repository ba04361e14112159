"""`instrument()`: one `OpenTelemetryObserver` told of every pool's tasks."""

from __future__ import annotations

import threading

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from .._observe import set_observer
from ._observer import OpenTelemetryObserver

_lock = threading.Lock()
_installed: OpenTelemetryObserver | None = None


def instrument(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> None:
    """Trace and measure every pool's tasks, from now on, in this process.

    Each attempt of a task gets a span that continues the trace of the code that
    submitted it, and counters, gauges and histograms record every pool's tasks by pool
    and task name. Arguments are never recorded. Idempotent: a second call while
    instrumented does nothing; call `uninstrument` first to change providers.

    Args:
        tracer_provider: Where spans go; by default OpenTelemetry's global one (set it
            before or after this call: the global one is looked up as spans start).
        meter_provider: Where metrics go; by default OpenTelemetry's global one.
    """
    global _installed
    with _lock:
        if _installed is not None:
            return
        _installed = OpenTelemetryObserver(tracer_provider, meter_provider)
        set_observer(_installed)


def uninstrument() -> None:
    """Stop recording (what was recorded stays with the providers). Idempotent."""
    global _installed
    with _lock:
        if _installed is None:
            return
        set_observer(None)
        _installed.stop()
        _installed = None


def is_instrumented() -> bool:
    """True between `instrument` and `uninstrument`."""
    return _installed is not None
