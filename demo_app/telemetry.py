"""``--otel``: OpenTelemetry's SDK in the serving process, the framework's official
instrumentation, and the library's switch, so that a request's span and the span of the
email task it fired are one trace.

``console`` prints each span as JSON on stdout, and the metrics once at the end; an
http(s) URL sends spans and metrics to that OTLP/HTTP endpoint (needs `OTLP_PACKAGE`,
which the demo does not install). Nothing of OpenTelemetry is imported until `check` or
`start` runs: without ``--otel`` the demo has none.

`start` runs in the process that serves, after any fork (the SDK's export threads do not
survive one): from the app factories, which gunicorn calls in its worker. `stop` flushes
what is buffered; the servers call it once the pool has drained, so the last tasks'
spans are printed or sent too.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .mail import redact

CONSOLE = "console"

SERVICE_NAME = "background-demo"
"""The spans' ``service.name``, unless ``OTEL_SERVICE_NAME`` (or ``service.name`` in
``OTEL_RESOURCE_ATTRIBUTES``) names another."""

OTLP_PACKAGE = "opentelemetry-exporter-otlp-proto-http"
"""What ``--otel URL`` needs; not in the demo's dependency group, to keep that small."""

OTLP_MODULE = "opentelemetry.exporter.otlp.proto.http"

METRICS_INTERVAL = 60.0
"""Seconds between two exports of the metrics to an OTLP endpoint (the SDK's default)."""

CONSOLE_METRICS_INTERVAL = math.inf
"""To the console, the metrics are printed once, at `stop`, after the last spans: a
summary of the run. Each export is one JSON document of some 450 lines after a single
email (the HTTP and the pool's histograms, every bucket), growing with each route and task
name; printed every minute, it would push the spans off the screen between two requests."""

EXCLUDED_URLS = "/stats,/inbox,/emails/[0-9a-f]{16}"
"""What the page polls, every second or faster (``GET /stats``, ``GET /inbox``, ``GET
/emails/{id}``): no spans for those, or they would bury the ones that show a task.
Regular expressions, each searched for in a request's URL."""

NEEDS = {
    "fastapi": {
        "opentelemetry.sdk": "opentelemetry-sdk",
        "opentelemetry.instrumentation.fastapi": "opentelemetry-instrumentation-fastapi",
    },
    "flask": {
        "opentelemetry.sdk": "opentelemetry-sdk",
        "opentelemetry.instrumentation.flask": "opentelemetry-instrumentation-flask",
    },
    "django": {
        "opentelemetry.sdk": "opentelemetry-sdk",
        "opentelemetry.instrumentation.django": "opentelemetry-instrumentation-django",
    },
}
"""The modules ``--otel`` needs with each framework, and the packages that have them (the
demo's dependency group installs them all)."""


def check(target: str, framework: str) -> None:
    """Raise ValueError, saying what to do, unless ``--otel target`` can work here."""
    if target != CONSOLE:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"--otel takes {CONSOLE!r} or the http(s) URL of an OTLP/HTTP endpoint "
                f"(such as http://127.0.0.1:4318), got {redact(target)!r}"
            )
    needs = dict(NEEDS[framework])
    if target != CONSOLE:
        needs[OTLP_MODULE] = OTLP_PACKAGE
    missing = [package for module, package in needs.items() if not _importable(module)]
    if missing:
        raise ValueError(
            f"--otel {redact(target)} needs {', '.join(missing)}: pip install {' '.join(missing)}"
        )


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


_lock = threading.Lock()
_started = False
_stops: list[Callable[[], object]] = []  # the providers' shutdowns, until `stop` runs


def start(target: str) -> None:
    """Set OpenTelemetry's global tracer and meter providers, exporting to `target`
    (``console`` or an OTLP/HTTP endpoint's URL). Once per process: the global providers
    cannot be replaced."""
    global _started
    with _lock:
        if _started:
            raise RuntimeError("OpenTelemetry's SDK is already set up in this process")
        _started = True
    from opentelemetry import metrics, trace  # noqa: PLC0415  (only with --otel)
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
    from opentelemetry.sdk.metrics.export import (  # noqa: PLC0415
        ConsoleMetricExporter,
        MetricExporter,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    span_exporter: SpanExporter
    metric_exporter: MetricExporter
    if target == CONSOLE:
        span_exporter, metric_exporter = ConsoleSpanExporter(), ConsoleMetricExporter()
        interval = CONSOLE_METRICS_INTERVAL
    else:
        span_exporter, metric_exporter = _otlp(target)
        interval = METRICS_INTERVAL
    resource = Resource.create()  # what OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES say
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=interval * 1000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    stops: list[Callable[[], object]] = [tracer_provider.shutdown]
    if interval == math.inf:  # no export thread: shutdown alone would export nothing
        stops.append(meter_provider.force_flush)
    stops.append(meter_provider.shutdown)
    with _lock:
        _stops[:] = stops


def _otlp(url: str) -> tuple[Any, Any]:
    """The OTLP/HTTP span and metric exporters to the endpoint at `url`, a base URL as in
    ``OTEL_EXPORTER_OTLP_ENDPOINT``: spans go to ``/v1/traces``, metrics to ``/v1/metrics``.
    (Imported by name: the package is optional, and not installed where the demo is
    type-checked.)"""
    base = url.rstrip("/")
    spans = importlib.import_module(f"{OTLP_MODULE}.trace_exporter")
    metrics = importlib.import_module(f"{OTLP_MODULE}.metric_exporter")
    return (
        spans.OTLPSpanExporter(endpoint=f"{base}/v1/traces"),
        metrics.OTLPMetricExporter(endpoint=f"{base}/v1/metrics"),
    )


def stop() -> None:
    """Export what the providers that `start` set up still hold, and shut them down.
    Does nothing if `start` did not run in this process, or `stop` already did."""
    with _lock:
        stops, _stops[:] = list(_stops), []
    for shutdown in stops:
        shutdown()
