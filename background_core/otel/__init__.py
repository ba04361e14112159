"""OpenTelemetry traces and metrics for every pool's tasks: ``instrument()``.

Needs ``opentelemetry-api`` (the ``otel`` extra); importing this package without it
raises an ImportError that says so. Nothing of it is imported, and nothing is recorded,
until you import it and call `instrument`. See the docs' Observability guide for the
spans, attributes and metrics it records.
"""

from __future__ import annotations

try:
    import opentelemetry.trace as _trace  # noqa: F401  (the one check that it is installed)
except ImportError as missing:
    raise ImportError(
        "background_core.otel needs OpenTelemetry's API: pip install opentelemetry-api, or "
        "install background with its 'otel' extra (see the README's Install)"
    ) from missing

from ._instrument import instrument as instrument
from ._instrument import is_instrumented as is_instrumented
from ._instrument import uninstrument as uninstrument

__all__ = ("instrument", "is_instrumented", "uninstrument")
