"""The demo as `make demo` runs it: ``python -m demo_app ...`` from the repository's root,
as a subprocess on a free port of 127.0.0.1, in a process group of its own (started,
awaited and stopped by bench/server_process.py)."""

from __future__ import annotations

import http.client
import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from bench.server_process import HOST, ServerProcess, with_sigint

ROOT = Path(__file__).resolve().parents[2]


class DemoProcess(ServerProcess):
    """A running demo."""

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def request(self, method: str, path: str, payload: object = None) -> tuple[int, Any]:
        """One request; returns the status and the decoded JSON (or text) answer."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
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
        return self.send(signum, group=signum == signal.SIGINT)


@contextmanager
def running_demo(tmp_path: Path, framework: str, *options: str) -> Iterator[DemoProcess]:
    """Start the demo and wait until it answers; at the end, stop what is left of it
    (SIGTERM, then SIGKILL to its process group)."""
    argv = [sys.executable, "-m", "demo_app", "--framework", framework]
    demo = DemoProcess(
        # Ctrl-C restored, as in a terminal.
        with_sigint([*argv, "--host", HOST, "--port", "{port}", *options]),
        name=f"demo-{framework}",
        log_dir=tmp_path,
        cwd=ROOT,
        group=True,
        scrub=("SMTP_URL",),
    )
    try:
        demo.wait_until_serving(30, path="/stats")
        yield demo
    finally:
        if demo.exited_at is None:
            demo.send(signal.SIGTERM)
            with suppress(TimeoutError):
                demo.wait(30)
        demo.kill()  # a gunicorn worker left behind, say
