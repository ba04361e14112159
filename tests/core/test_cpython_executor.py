"""Conformance: CPython's own thread-pool executor tests, run against `Background`.

An interpreter runs `cpython_executor_tests.py` in a process of its own, with the tests it
ships (``test.test_concurrent_futures``): loaded at run time, never copied here. The one
that runs this suite, if it ships them (under `make test-pythons`, 3.10 and 3.13 do);
else the first that does among the others (pyenv's 3.11 and 3.12 ship none): one per
suite run, in shards side by side (about 11 s, against 25 s in one process). Under CI one
must have run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import clean_env, runnable_interpreter

RUNNER = Path(__file__).with_name("cpython_executor_tests.py")
INTERPRETERS = ("python3.10", "python3.11", "python3.12", "python3.13")
TIMEOUT = 110  # under the test's own timeout, so a hang reports
# The suite mostly sleeps (about 25 s in one process, 2 s of CPU): its shards run side by side.
SHARDS = 5

ran_on: list[str] = []


def conformance(path: str, tmp_path: Path) -> dict[str, Any]:
    """Run CPython's tests against `Background` under the interpreter at `path`."""
    shards = [
        subprocess.Popen(
            [path, str(RUNNER), f"{shard}/{SHARDS}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
            cwd=tmp_path,
        )
        for shard in range(SHARDS)
    ]
    parts: list[dict[str, Any]] = []
    try:
        for shard in shards:
            out, err = shard.communicate(timeout=TIMEOUT)
            assert shard.returncode == 0, err
            parts.append(json.loads(out))
    finally:
        for shard in shards:
            shard.kill()
            shard.wait()
    result: dict[str, Any] = {"python": parts[0]["python"], "log": ""}
    for part in parts:
        for count in ("ran", "passed"):
            result[count] = result.get(count, 0) + part[count]
        for found in ("skipped", "problems", "deselected"):
            result[found] = {**result.get(found, {}), **part[found]}
        result["log"] += part["log"]
    return result


def chosen() -> str:
    """This interpreter if it ships the tests, else the first other one that does (its path)."""
    own = f"python{sys.version_info.major}.{sys.version_info.minor}"
    why = []
    for name in (own, *(name for name in INTERPRETERS if name != own)):
        path, version_or_why = runnable_interpreter(name)
        ships = path is not None and subprocess.run(
            [path, "-c", "import test.test_concurrent_futures"],
            capture_output=True,
            env=clean_env(),
            timeout=30,
            check=False,
        )
        if ships and ships.returncode == 0:
            assert path is not None
            return path
        why.append(version_or_why if path is None else f"{name} ships no tests")
    pytest.skip("; ".join(why))


@pytest.mark.timeout(120)
def test_cpython_thread_pool_tests_pass(tmp_path: Path) -> None:
    result = conformance(chosen(), tmp_path)
    assert not result["problems"], "\n\n".join(
        f"{test}\n{trace}" for test, trace in result["problems"].items()
    )
    assert result["ran"] >= 29, result["log"]  # 3.10 and 3.13 have 29 that check behaviour
    assert result["passed"] == result["ran"] - len(result["skipped"])
    assert len(result["deselected"]) <= 16, result["deselected"]
    ran_on.append(f"{result['python']}: {result['passed']} passed")


def test_the_conformance_ran_somewhere_under_ci() -> None:
    if os.environ.get("CI") != "true":
        pytest.skip("only CI insists: a machine without pyenv's 3.10 or 3.13 may have none")
    assert ran_on, "no interpreter ran CPython's executor tests: install Python 3.13 with pyenv"
