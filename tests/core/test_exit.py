"""Interpreter exit, SIGTERM and fork: nothing submitted is lost silently."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import run_script, start_script

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and fork")


def test_tasks_still_queued_at_exit_run(tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        """
        import threading
        from background_core import Background

        bg = Background(1, name="exit")
        out = open("ran.txt", "w")

        @bg.task
        def work(i):
            threading.Event().wait(0.02)
            out.write(f"{i}\\n")
            out.flush()

        for i in range(20):
            work(i)
        assert bg.stats().succeeded < 20
        print("main done")
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "main done\n"
    assert (tmp_path / "ran.txt").read_text().split() == [str(i) for i in range(20)]


def test_a_hung_task_does_not_keep_the_process_past_its_drain_timeout(tmp_path: Path) -> None:
    proc = start_script(
        tmp_path,
        """
        import threading
        from background_core import Background

        bg = Background(1, name="mail", drain_timeout=1)

        @bg.task
        def hang(secret):
            threading.Event().wait()

        hang("hunter2")
        print("main done", flush=True)
        """,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "main done"
    main_done = time.monotonic()
    try:
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert time.monotonic() - main_done < 2.0
    assert proc.returncode == 0, err
    assert (
        "pool 'mail' shut down with 1 task unfinished (1 running, 0 not started): 'hang' (id 1"
        in err
    ), err
    assert "hunter2" not in err


SIGTERM_SCRIPT = """
import os, signal, sys, threading
from background_core import Background, install_sigterm_handler

{prelude}
install_sigterm_handler()
bg = Background(4, name="jobs", drain_timeout=10)
out = open("ran.txt", "a")
lock = threading.Lock()

@bg.task
def job(i):
    threading.Event().wait(0.02)
    with lock:
        out.write(f"{{i}}\\n")
        out.flush()

for i in range(200):
    job(i)
print("queued", flush=True)
# Short waits: the kernel may hand SIGTERM to a worker thread, and Python runs the
# handler only when the main thread next wakes.
for _ in range(600):
    threading.Event().wait(0.1)
print("not reached")
"""


def _sigterm_run(tmp_path: Path, prelude: str = "") -> tuple[int, str, float]:
    proc = start_script(tmp_path, SIGTERM_SCRIPT.format(prelude=prelude))
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "queued"
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    return proc.returncode, out + err, time.monotonic() - sent


def test_sigterm_handler_drains_then_ends_the_process_as_sigterm_would(tmp_path: Path) -> None:
    code, output, elapsed = _sigterm_run(tmp_path)
    assert code == -signal.SIGTERM, output
    ran = (tmp_path / "ran.txt").read_text().split()
    assert sorted(map(int, ran)) == list(range(200))
    assert "not reached" not in output
    assert elapsed < 10


def test_sigterm_handler_chains_to_the_handler_installed_before(tmp_path: Path) -> None:
    prelude = """
def earlier(signum, frame):
    print("earlier handler ran", flush=True)
    os._exit(3)
signal.signal(signal.SIGTERM, earlier)
"""
    code, output, _ = _sigterm_run(tmp_path, prelude)
    assert code == 3, output
    assert "earlier handler ran" in output
    ran = (tmp_path / "ran.txt").read_text().split()
    assert sorted(map(int, ran)) == list(range(200))


def test_install_sigterm_handler_outside_the_main_thread_raises(tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        """
        import threading
        from background_core import install_sigterm_handler
        errors = []
        def worker():
            try:
                install_sigterm_handler()
            except RuntimeError as exc:
                errors.append(str(exc))
        t = threading.Thread(target=worker); t.start(); t.join()
        assert errors and "main thread" in errors[0], errors
        print("ok")
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_a_forked_child_starts_afresh_and_never_runs_the_parents_queue(tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        """
        import os, threading
        from background_core import Background

        bg = Background(1, name="forky", drain_timeout=5)
        gate = threading.Event()
        ran = open("ran.txt", "a")

        def record(tag):
            ran.write(f"{tag} {os.getpid()}\\n")
            ran.flush()

        blocker = bg.submit(gate.wait, 10)
        queued = [bg.submit(record, f"parent-{i}") for i in range(5)]
        pid = os.fork()
        if pid == 0:
            # The child: a fresh pool, its own worker, none of the parent's tasks.
            stats = bg.stats()
            assert stats.submitted == 0 and stats.queued == 0, stats
            assert bg.submit(record, "child").result(timeout=5) is None
            assert bg.stats().succeeded == 1
            bg.shutdown()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        gate.set()
        for f in [blocker, *queued]:
            f.result(timeout=5)
        print("child pid", pid)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    child = proc.stdout.split()[-1]
    lines = (tmp_path / "ran.txt").read_text().splitlines()
    assert f"child {child}" in lines
    by_child = [line for line in lines if line.endswith(f" {child}")]
    assert by_child == [f"child {child}"], lines
    assert sorted(line.split()[0] for line in lines if line not in by_child) == [
        f"parent-{i}" for i in range(5)
    ]
