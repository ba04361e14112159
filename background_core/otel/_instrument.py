"""`instrument()`: one `OpenTelemetryObserver` told of every pool's tasks."""

from __future__ import annotations

import threading

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from .._observe import set_observer
from ._observer import OpenTelemetryObserver

_lock = threading.Lock()
_installed: OpenTelemetryObserver | None = None
# One observer per pair of providers, kept: OpenTelemetry cannot remove an instrument
# from a meter, and hands back the first one (with its callbacks) to a second request.
_made: dict[tuple[TracerProvider | None, MeterProvider | None], OpenTelemetryObserver] = {}


def instrument(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> None:
    """Trace and measure every pool's tasks, from now on, in this process.

    Each attempt of a task gets a span that continues the trace of the code that
    submitted it, and counters, a count by state and histograms record every pool's
    tasks by pool and task name. Arguments are never recorded. A second call with the
    same providers does nothing.

    Args:
        tracer_provider: Where spans go; by default OpenTelemetry's global one (set it
            before or after this call: the global one is looked up as spans start).
        meter_provider: Where metrics go; by default OpenTelemetry's global one.

    Raises:
        RuntimeError: It is instrumented with other providers already; call
            `uninstrument` first.
    """
    global _installed
    providers = (tracer_provider, meter_provider)
    with _lock:
        if _installed is not None:
            if _installed.providers != providers:
                raise RuntimeError(
                    "background_core.otel is instrumented with other providers already "
                    "(BACKGROUND_OTEL or lifespan(otel=True) use the global ones): call "
                    "uninstrument() first, or pass the same providers"
                )
            return
        observer = _made.get(providers)
        if observer is None:
            observer = _made[providers] = OpenTelemetryObserver(*providers)
        else:
            observer.resume()
        _installed = observer
        set_observer(observer)


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
