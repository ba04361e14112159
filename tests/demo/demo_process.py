"""The demo as `make demo` runs it: ``python -m demo_app ...`` from the repository's root,
as a subprocess on a free port of 127.0.0.1, in a process group of its own."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .smtp_server import free_port

ROOT = Path(__file__).resolve().parents[2]

# Runs `python -m demo_app` in its place with Ctrl-C restored, as in a terminal: a shell's
# background job (`make test &`) starts with SIGINT ignored, and children inherit that.
WITH_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, '-m', 'demo_app', *sys.argv[1:]])"
)


@dataclass
class DemoProcess:
    """A running demo."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def output(self) -> str:
        """What it printed so far (stdout and stderr)."""
        return self.log.read_text(errors="replace")

    def request(self, method: str, path: str, payload: object = None) -> tuple[int, Any]:
        """One request; returns the status and the decoded JSON (or text) answer."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            body = None if payload is None else json.dumps(payload)
            conn.request(method, path, body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read().decode()
            is_json = (response.getheader("Content-Type") or "").startswith("application/json")
            return response.status, json.loads(data) if is_json else data
        finally:
            conn.close()

    def stats(self) -> dict[str, Any]:
        status, stats = self.request("GET", "/stats")
        assert status == 200, (status, stats)
        return dict(stats)

    def signal(self, signum: int) -> float:
        """Send `signum`: SIGINT to the process group, as Ctrl-C in a terminal does; any
        other signal to the process. Returns when."""
        if signum == signal.SIGINT:
            os.killpg(self.proc.pid, signum)
        else:
            self.proc.send_signal(signum)
        return time.monotonic()

    def wait(self, timeout: float) -> int:
        """The exit status; fails the test if the demo is still running after `timeout`."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the demo did not exit within {timeout}s:\n{self.output()}")


@contextmanager
def running_demo(tmp_path: Path, framework: str, *options: str) -> Iterator[DemoProcess]:
    """Start the demo and wait until it answers; at the end, stop what is left of it
    (SIGTERM, then SIGKILL to its process group)."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "SMTP_URL"}
    env["PYTHONUNBUFFERED"] = "1"
    log = tmp_path / f"demo-{framework}-{port}.log"
    argv = ["--framework", framework, "--host", "127.0.0.1", "--port", str(port), *options]
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-c", WITH_SIGINT, *argv],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    demo = DemoProcess(proc, port, log)
    try:
        _wait_until_serving(demo, timeout=30)
        yield demo
    finally:
        if proc.poll() is None:
            proc.terminate()
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # a gunicorn worker left behind, say
        proc.wait(timeout=10)


def _wait_until_serving(demo: DemoProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if demo.proc.poll() is not None:
            pytest.fail(f"the demo exited with {demo.proc.returncode}:\n{demo.output()}")
        try:
            if demo.request("GET", "/stats")[0] == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the demo did not answer within {timeout}s:\n{demo.output()}")
        threading.Event().wait(0.1)
