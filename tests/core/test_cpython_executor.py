"""Conformance: CPython's own thread-pool executor tests, run against `Background`.

Each interpreter runs `cpython_executor_tests.py` in a process of its own, with the tests it
ships (``test.test_concurrent_futures``): loaded at run time, never copied here. An
interpreter that is not installed, or that ships no tests (pyenv's 3.11 and 3.12 here),
is skipped; under CI at least one must have run them.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import clean_env, runnable_interpreter

RUNNER = Path(__file__).with_name("cpython_executor_tests.py")
INTERPRETERS = ("python3.10", "python3.11", "python3.12", "python3.13")
TIMEOUT = 110  # about 25 s each here; under the test's own timeout, so a hang reports

ran_on: list[str] = []


def conformance(name: str, tmp_path: Path) -> dict[str, Any]:
    path, version_or_why = runnable_interpreter(name)
    if path is None:
        pytest.skip(version_or_why)
    has_tests = subprocess.run(
        [path, "-c", "import test.test_concurrent_futures"],
        capture_output=True,
        env=clean_env(),
        timeout=30,
        check=False,
    )
    if has_tests.returncode != 0:
        pytest.skip(f"{name} ({path}) ships no test.test_concurrent_futures")
    done = subprocess.run(
        [path, str(RUNNER)],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=tmp_path,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", INTERPRETERS)
def test_cpython_thread_pool_tests_pass(name: str, tmp_path: Path) -> None:
    result = conformance(name, tmp_path)
    assert not result["problems"], "\n\n".join(
        f"{test}\n{trace}" for test, trace in result["problems"].items()
    )
    assert result["ran"] >= 30, result["log"]  # 3.10 and 3.13 have 30 that check behaviour
    assert result["passed"] == result["ran"] - len(result["skipped"])
    assert len(result["deselected"]) <= 15, result["deselected"]
    ran_on.append(f"{result['python']}: {result['passed']} passed")


def test_the_conformance_ran_somewhere_under_ci() -> None:
    if os.environ.get("CI") != "true":
        pytest.skip("only CI insists: a machine without pyenv's 3.10 or 3.13 may have none")
    assert ran_on, "no interpreter ran CPython's executor tests: install Python 3.13 with pyenv"
