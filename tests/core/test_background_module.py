"""The seed's module-level API: `background.task`, `run`, `callback` and `n`."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path

import pytest

import background
from background_core import usable_cpus
from tests.helpers import run_script


def test_task_returns_future_at_once() -> None:
    release = threading.Event()

    @background.task
    def wait_then_double(x: int) -> int:
        release.wait(10)
        return x * 2

    future = wait_then_double(21)
    assert isinstance(future, Future)
    assert not future.done()
    release.set()
    assert future.result(timeout=10) == 42


def test_task_with_a_name() -> None:
    @background.task(name="double")
    def twice(x: int) -> int:
        return 2 * x

    assert twice.name == "double"
    assert twice(4).result(timeout=10) == 8


def test_run_submits_a_plain_callable() -> None:
    assert background.run(sum, [1, 2, 3]).result(timeout=10) == 6
    assert background.run(dict, a=1).result(timeout=10) == {"a": 1}


def test_n_defaults_to_usable_cpus_and_rejects_bad_values(tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        """
        import background, background_core
        assert background.n == background_core.usable_cpus(), background.n
        for bad, kind in [(0, ValueError), (-3, ValueError), (10**9, ValueError),
                          (2.5, TypeError), ("8", TypeError), (True, TypeError),
                          (None, TypeError)]:
            try:
                background.n = bad
            except kind as exc:
                assert "background.n" in str(exc), exc
            else:
                raise AssertionError(f"background.n = {bad!r} was accepted")
        assert background.n == background_core.usable_cpus()
        print("ok")
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    assert usable_cpus() >= 1


def test_setting_n_after_tasks_ran_resizes_without_losing_queued_tasks(tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        """
        import threading
        import background

        background.n = 1
        gate = threading.Event()
        ran = []

        @background.task
        def work(i):
            gate.wait(10)
            ran.append(i)

        futures = [work(i) for i in range(100)]
        background.n = 6
        assert background.default_pool().stats().workers == 6
        background.n = 2
        gate.set()
        for f in futures:
            f.result(timeout=10)
        assert sorted(ran) == list(range(100)), ran
        assert background.n == 2
        print("ok")
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_callback_gets_each_finished_future(tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        """
        import threading
        import background

        seen = []
        all_seen = threading.Event()

        @background.callback
        def on_done(future):
            seen.append(future.result())
            if len(seen) == 3:
                all_seen.set()

        @background.task
        def square(x):
            return x * x

        for i in (1, 2, 3):
            square(i)
        assert all_seen.wait(10)
        assert sorted(seen) == [1, 4, 9], seen
        print("ok")
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_default_pool_is_one_pool() -> None:
    assert background.default_pool() is background.default_pool()
    assert background.default_pool().name == "default"


def test_decorating_a_non_callable_raises() -> None:
    with pytest.raises(TypeError, match="decorates functions"):
        background.task(42)  # type: ignore[call-overload]
