"""The adapters' switches: ``BACKGROUND_OTEL = True`` (Flask) and ``lifespan(otel=True)``
(FastAPI) instrument through OpenTelemetry's global providers; without OpenTelemetry
installed they fail at once, naming the extra to install. Each in a process of its own:
the global providers can be set once per process."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import run_script

GLOBAL_PROVIDERS = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
"""


def test_flask_background_otel_instruments(tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        GLOBAL_PROVIDERS
        + """
import flask
import flask_background
from background_core.otel import is_instrumented

app = flask.Flask("switched")
app.config["BACKGROUND_OTEL"] = True
ext = flask_background.Background(app)
assert is_instrumented()

@ext.task
def send_welcome():
    return "sent"

with app.app_context():
    assert send_welcome().result(timeout=10) == "sent"
print([s.name for s in exporter.get_finished_spans()])
""",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['process send_welcome']"


def test_fastapi_lifespan_otel_instruments_at_startup(tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        GLOBAL_PROVIDERS
        + """
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fastapi_background import BackgroundDep, lifespan
from background_core.otel import is_instrumented

def send_welcome():
    return "sent"

app = FastAPI(lifespan=lifespan(otel=True))

@app.post("/signup")
def signup(bg: BackgroundDep):
    return {"sent": bg.submit(send_welcome).result(timeout=10)}

assert not is_instrumented()  # not before the app starts
with TestClient(app) as client:
    assert is_instrumented()
    assert client.post("/signup").json() == {"sent": "sent"}
spans = exporter.get_finished_spans()
(task,) = [s for s in spans if s.name == "process send_welcome"]
print(len({s.context.trace_id for s in spans}), task.parent is not None)
""",
    )
    assert proc.returncode == 0, proc.stderr
    # FastAPI may make spans of its own: with the task's, they make one trace.
    assert proc.stdout.strip() == "1 True"


def test_without_opentelemetry_the_switches_name_the_extra(tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        """
import sys
sys.modules["opentelemetry.trace"] = None  # as if it were not installed
import flask
import flask_background
from fastapi_background import lifespan

app = flask.Flask("switched")
app.config["BACKGROUND_OTEL"] = True
for make in (lambda: flask_background.Background(app), lambda: lifespan(otel=True)):
    try:
        make()
    except ImportError as error:
        print(error)
""",
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert "pip install opentelemetry-api" in line
        assert "'otel' extra" in line
