"""What several tests share: a gate task, bounded waits, thread counters, log filters,
and finding other Python interpreters. Imports nothing but the stdlib at run time, so
scripts that run in other interpreters (without pytest) can use it too."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

ROOT = Path(__file__).resolve().parents[1]
"""The repository's root: what makes `background_core` importable in a child process."""

WAIT = 10.0
"""Seconds any single wait in a test may take before it counts as a failure."""

SECRET = "hunter2-secret-argument"
"""An argument value that must never appear in a log line, a report or an error."""


class Gate:
    """A task body that signals it started, then blocks until the gate opens (bounded).

    Returns its argument. As a context manager it opens on the way out of the test,
    whatever happens, before the pool that runs it is shut down.
    """

    def __init__(self) -> None:
        self.started = threading.Event()
        self.opened = threading.Event()

    def __call__(self, value: object = None) -> object:
        self.started.set()
        if not self.opened.wait(3 * WAIT):
            raise TimeoutError("gate never opened")
        return value

    def open(self) -> None:
        self.opened.set()

    def __enter__(self) -> Gate:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.open()


def noop() -> None:
    return None


def fail(message: str) -> None:
    raise ValueError(message)


def thread_name() -> str:
    return threading.current_thread().name


def pool_threads(name: str) -> list[threading.Thread]:
    """The live threads of the pool called `name` (workers and its loop)."""
    prefix = f"background-{name}-"
    return [t for t in threading.enumerate() if t.name.startswith(prefix) and t.is_alive()]


def wait_for_thread_count(name: str, count: int, timeout: float = WAIT) -> list[threading.Thread]:
    """Join the pool's threads in short slices until only `count` remain alive (bounded)."""
    deadline = time.monotonic() + timeout
    alive = pool_threads(name)
    while len(alive) > count and time.monotonic() < deadline:
        for thread in alive:
            thread.join(timeout=0.05)
        alive = pool_threads(name)
    return alive


def start_thread(target: Callable[[], object], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def wait_until(condition: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds.

    For states nothing signals (a thread gone, a cluster that forgot a task).
    """
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting until {what}"
        time.sleep(0.02)


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "background" and r.levelno == logging.ERROR]


# -- scripts in a fresh interpreter -----------------------------------------------------


def script_env() -> dict[str, str]:
    """This environment, with the checkout importable (for scripts run by this Python)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def write_script(tmp_path: Path, source: str, name: str = "script.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def run_script(
    tmp_path: Path, source: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run `source` to completion; return the finished process with its output."""
    path = write_script(tmp_path, source)
    return subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=script_env(),
        cwd=tmp_path,
        check=False,
    )


def start_script(tmp_path: Path, source: str) -> subprocess.Popen[str]:
    """Start `source`; the caller reads its stdout and must wait for it."""
    path = write_script(tmp_path, source)
    return subprocess.Popen(
        [sys.executable, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=script_env(),
        cwd=tmp_path,
    )


# -- other interpreters ------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment for a child interpreter: the checkout importable."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    env.pop("BACKGROUND_EAGER_FUTURES", None)
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def interpreters(name: str) -> list[str]:
    """`name` (``python3.13``) on PATH, then the same version under pyenv (whose shims may
    not run)."""
    found = [path] if (path := shutil.which(name)) else []
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    version = name.removeprefix("python")
    found += sorted(str(p) for p in root.glob(f"versions/{version}.*/bin/{name}"))
    return found


def runnable_interpreter(name: str) -> tuple[str | None, str]:
    """A runnable `name` and its ``X.Y`` version, or None and why none can run."""
    candidates = interpreters(name)
    if not candidates:
        return None, f"{name} is not installed (not on PATH, not under pyenv)"
    failures = []
    for path in candidates:
        probe = subprocess.run(
            [path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            env=clean_env(),
            check=False,
        )
        version = probe.stdout.strip()
        if probe.returncode == 0 and f"python{version}" == name:
            return path, version
        first_line = (probe.stderr.strip().splitlines() or [f"Python {version}"])[0]
        failures.append(f"{path}: {first_line}")
    return None, f"no runnable {name}: {'; '.join(failures)}"
