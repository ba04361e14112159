"""An instrumented process: the SDK's in-memory span exporter and metric reader, with
`instrument()` on for the test and off after it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the dev group installs OpenTelemetry's SDK")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from background_core.otel import instrument, uninstrument


@dataclass
class Recorded:
    """What the instrumentation recorded, read through the SDK."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        spans = self.exporter.get_finished_spans()
        return [s for s in spans if name is None or s.name == name]

    def points(self, metric: str) -> list[Any]:
        """The data points of `metric` now (an empty list if it has none)."""
        data = self.reader.get_metrics_data()
        if data is None:
            return []
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for found in scope.metrics
            if found.name == metric
            for point in found.data.data_points
        ]

    def value(self, metric: str, **attributes: str) -> Any:
        """The value (a sum, or a histogram's count) of `metric`'s point with these
        attributes (``background.pool`` as pool=, ``background.task.name`` as task=)."""
        wanted = {
            "background.pool": attributes.pop("pool"),
            "background.task.name": attributes.pop("task"),
            **attributes,
        }
        for point in self.points(metric):
            if dict(point.attributes) == wanted:
                return getattr(point, "value", None) if hasattr(point, "value") else point.count
        return None


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield Recorded(tracer_provider, meter_provider, exporter, reader)
    finally:
        uninstrument()
        meter_provider.shutdown()
        tracer_provider.shutdown()
