"""A server as a subprocess of ours on a free port of 127.0.0.1: start it with its output in
a log file, wait (bounded) until it serves, signal it, time its exit, and kill whatever is
left of it.

The one implementation that the benchmarks (bench/server.py) and the tests
(tests/servers/harness.py, tests/demo/demo_process.py) build on. It imports nothing but the
stdlib, so the tests import it without the benchmarks' dependencies; bench/ never imports
tests/.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

HOST = "127.0.0.1"

# Runs argv[1:] in its place with Ctrl-C restored: a shell's background job (`make test &`)
# starts with SIGINT ignored, and its children would inherit that. (No braces in it:
# `{port}` is replaced in every item of a command.)
_WITH_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def free_port() -> int:
    """A port of 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def with_sigint(argv: list[str]) -> list[str]:
    """`argv` (its first item a path) run with Ctrl-C's default action, as from a terminal."""
    return [sys.executable, "-c", _WITH_SIGINT, *argv]


def get(port: int, path: str, timeout: float = 5) -> tuple[int, str]:
    """``GET path`` from 127.0.0.1:`port`: the status and the body."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


class ServerProcess:
    """A server subprocess that we started, listening on `port` of 127.0.0.1.

    Args:
        argv: The command; ``{port}`` in any item is replaced by the port.
        name: What messages call it; its log is ``<log_dir>/<name>-<port>.log``.
        log_dir: Where its log (its stdout and stderr) goes.
        cwd: Its working directory.
        group: Run it in a process group (a session) of its own, so that `kill` reaches the
            workers it starts, which we never hear of.
        env: Variables to set, over those it inherits.
        scrub: Prefixes of our variables it does not inherit.
        pythonpath: Folders to put before PYTHONPATH.

    A thread of its own waits for the exit, so `exited_at` is exact (``Popen.wait`` with a
    timeout polls). Raises OSError if the command cannot be started. For one thread.
    """

    def __init__(
        self,
        argv: list[str],
        *,
        name: str,
        log_dir: Path,
        cwd: Path,
        group: bool,
        env: Mapping[str, str] | None = None,
        scrub: tuple[str, ...] = (),
        pythonpath: Sequence[Path] = (),
    ) -> None:
        self.name = name
        self.port = free_port()
        self.log = log_dir / f"{name}-{self.port}.log"
        self.cwd = cwd
        self.group = group
        self.exited_at: float | None = None  # time.monotonic() when the main process exited
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [arg.format(port=self.port) for arg in argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_environment(env or {}, scrub, pythonpath),
                cwd=cwd,
                start_new_session=group,
            )
        self._waiter = threading.Thread(target=self._reap, name=f"wait-{name}", daemon=True)
        self._waiter.start()

    def _reap(self) -> None:
        self.proc.wait()
        self.exited_at = time.monotonic()

    def output(self) -> str:
        """What it wrote so far, stdout and stderr."""
        return self.log.read_text(errors="replace")

    def wait_until_serving(self, timeout: float, *, path: str | None = None) -> None:
        """Return once it accepts connections or, with `path`, once ``GET path`` answers
        200; ask every 50 ms for at most `timeout` seconds.

        Raises:
            RuntimeError: It exited first.
            TimeoutError: It did not serve within `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self.exited_at is not None:  # before asking: another may serve on its port
                code = self.proc.returncode
                raise RuntimeError(f"{self.name} exited with {code}:\n{self.output()}")
            if self._serves(path):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not serve within {timeout}s:\n{self.output()}")
            time.sleep(0.05)

    def _serves(self, path: str | None) -> bool:
        try:
            if path is None:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return True
            return get(self.port, path, timeout=2)[0] == 200
        except (OSError, http.client.HTTPException):
            return False

    def send(self, signum: int, *, group: bool = False) -> float:
        """Send `signum` to its main process (a supervisor relays it to its workers), or with
        `group` to its whole process group; return when (time.monotonic())."""
        if group:
            if not self.group:
                raise ValueError(f"{self.name} has no process group of its own")
            os.killpg(self.proc.pid, signum)
        else:
            self.proc.send_signal(signum)
        return time.monotonic()

    def wait(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for the main process to exit; its exit status.

        Raises:
            TimeoutError: It is still running (the message holds its log).
        """
        self._waiter.join(timeout)
        if self.exited_at is None:
            raise TimeoutError(f"{self.name} did not exit within {timeout}s:\n{self.output()}")
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL whatever is left of it: its process group if it has one of its own, else
        its main process; then reap the main process (waiting 10 s at the most)."""
        if self.group:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        elif self.exited_at is None:
            self.proc.kill()
        self._waiter.join(10)


def _environment(
    env: Mapping[str, str], scrub: tuple[str, ...], pythonpath: Sequence[Path]
) -> dict[str, str]:
    """Ours without the variables whose names start with `scrub`, with `pythonpath` before
    PYTHONPATH, unbuffered output, and `env` over all that."""
    child = {key: value for key, value in os.environ.items() if not key.startswith(scrub)}
    if pythonpath:
        paths = [*map(str, pythonpath), os.environ.get("PYTHONPATH", "")]
        child["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    child["PYTHONUNBUFFERED"] = "1"
    return {**child, **env}
