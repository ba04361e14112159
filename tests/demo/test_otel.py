"""``python -m demo_app --otel console``, as `make demo DEMO_ARGS="--otel console"` runs it:
the request's span and the span of the email task it fired are one trace, printed as JSON
on the demo's stdout, from the process that serves (gunicorn's worker for Flask)."""

from __future__ import annotations

import importlib.util
import json
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from demo_app.cli import main
from demo_app.telemetry import OTLP_MODULE, OTLP_PACKAGE, SERVICE_NAME
from tests.helpers import run_script, wait_until

from .demo_process import running_demo
from .smtp_server import free_port, smtp_server

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals, gunicorn")

EMAIL = {"to": "reader@example.com", "subject": "Traced", "body": "One trace.\n"}

# How each server exits on SIGTERM once drained (as in test_process.py): uvicorn re-raises
# the signal after its lifespan, gunicorn's master exits with 0.
EXIT_STATUS = {"fastapi": -signal.SIGTERM, "flask": 0, "django": -signal.SIGTERM}

# The request's span name, and the email task's name and pool in its span: the pool's
# task is send_email, in the app's pool. Django's instrumentation names a request by its
# URL pattern (no leading slash); Django's backend names a task by its import path, and
# its pool "django".
SPAN_NAMES = {
    "fastapi": ("POST /emails", "send_email", "demo_app"),
    "flask": ("POST /emails", "send_email", "demo_app"),
    "django": ("POST emails", "demo_app.django_views.send_email", "django"),
}


def printed_spans(output: str) -> list[dict[str, Any]]:
    """The spans ConsoleSpanExporter printed in `output`: JSON documents that start with
    a ``{`` line, among the servers' log lines and the metrics (which are JSON too)."""
    decoder = json.JSONDecoder()
    documents = []
    for start in re.finditer(r"^\{$", output, re.MULTILINE):
        try:
            document, _ = decoder.raw_decode(output, start.start())
        except json.JSONDecodeError:
            continue
        documents.append(document)
    return [d for d in documents if isinstance(d, dict) and {"context", "kind"} <= d.keys()]


def email_status(demo: Any, email_id: str) -> str:
    status, reply = demo.request("GET", f"/emails/{email_id}")
    assert status == 200, reply
    return str(reply["status"])


@pytest.mark.parametrize("framework", ["fastapi", "flask", "django"])
def test_a_request_and_its_email_task_are_one_trace_on_the_console(
    tmp_path: Path, framework: str
) -> None:
    with (
        smtp_server() as smtp,
        running_demo(tmp_path, framework, "--smtp-url", smtp.url, "--otel", "console") as demo,
    ):
        status, reply = demo.request("POST", "/emails", EMAIL)
        assert status == 202, reply
        email_id = reply["id"]
        (arrived,) = smtp.recorder.wait_for(1, timeout=10)
        wait_until(lambda: email_status(demo, email_id) == "sent", "the email is sent")
        demo.signal(signal.SIGTERM)  # the spans are flushed as the server stops
        code = demo.wait(30)
        output = demo.output()

    assert arrived.subject == EMAIL["subject"]
    assert code == EXIT_STATUS[framework], output
    assert "Traceback" not in output, output
    assert "otel      spans printed below as JSON" in output  # the banner says so
    spans = printed_spans(output)
    (server,) = [s for s in spans if s["kind"] == "SpanKind.SERVER"]  # the polls: no spans
    (task,) = [s for s in spans if s["name"].startswith("process ")]
    request_name, task_name, pool = SPAN_NAMES[framework]
    assert server["name"] == request_name
    assert task["name"] == f"process {task_name}"
    assert task["kind"] == "SpanKind.CONSUMER"
    assert task["attributes"]["background.pool"] == pool
    assert task["attributes"]["background.task.attempt"] == 1
    assert task["status"]["status_code"] == "UNSET"
    # One trace: the task's parent is the request's server span itself (the frameworks'
    # instrumentation makes no span between them: FastAPI's receive and send spans are
    # off, and would be siblings anyway), and it links to it too.
    assert task["context"]["trace_id"] == server["context"]["trace_id"]
    assert task["parent_id"] == server["context"]["span_id"]
    assert server["parent_id"] is None
    assert [link["context"]["span_id"] for link in task["links"]] == [server["context"]["span_id"]]
    for span in (server, task):
        assert span["resource"]["attributes"]["service.name"] == SERVICE_NAME
    # The metrics, printed once as the server stops, count the task.
    assert '"name": "background.tasks.succeeded"' in output


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


@pytest.mark.skipif(installed(OTLP_MODULE), reason=f"{OTLP_PACKAGE} is installed here")
def test_an_otlp_url_without_the_exporter_stops_naming_the_package(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--otel", "http://127.0.0.1:1", "--port", str(free_port())])

    assert stopped.value.code == 2
    assert f"pip install {OTLP_PACKAGE}" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["stdout", "ftp://collector:4318", "http://"])
def test_otel_takes_console_or_an_http_url(target: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--otel", target, "--port", str(free_port())])

    assert stopped.value.code == 2
    assert "--otel takes 'console' or the http(s) URL" in capsys.readouterr().err


def test_without_otel_the_demo_sets_up_nothing_of_opentelemetry(tmp_path: Path) -> None:
    """No SDK, no instrumentation, no provider: OpenTelemetry's API alone may be imported,
    by FastAPI itself (its native telemetry, which stays off without a provider)."""
    finished = run_script(
        tmp_path,
        """
        import sys

        from demo_app import cli, django_app, fastapi_app, flask_app
        from demo_app.api import DemoApi
        from demo_app.mail import SmtpSettings

        api = DemoApi(SmtpSettings("127.0.0.1", 1))
        fastapi_app.create_app(api)
        app = flask_app.create_app(api)
        app.extensions["background"].shutdown()
        django_app.create_app(django_app.configure(api))
        cli.parser().parse_args([])
        setup = ("opentelemetry.sdk", "opentelemetry.instrumentation", "background_core.otel")
        print(sorted(name for name in sys.modules if name.startswith(setup)))
        if "opentelemetry.trace" in sys.modules:
            from opentelemetry import trace

            print(type(trace.get_tracer_provider()).__name__)
        else:
            print("ProxyTracerProvider")  # what it would be
        """,
    )

    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.split() == ["[]", "ProxyTracerProvider"]
