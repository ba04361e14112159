"""Runs `bench/micro_worker.py` for one contender in a fresh process of the right venv."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.venvs import original_python

WORKER = Path(__file__).with_name("micro_worker.py")
ROOT = WORKER.parent.parent
LABELS = {
    "SimpleQueue": "SimpleQueue.put (the floor)",
    "background": "background: Background.submit",
    "background-flask": "background: Flask extension, in a request",
    "ThreadPoolExecutor": "ThreadPoolExecutor.submit",
    "Flask-Executor": "Flask-Executor 1.0.0, in a request",
    "original": "original background 0.2.1: background.run",
}


def measure(contender: str, *args: str, timeout: float = 120) -> dict[str, Any]:
    """One measurement in a fresh process; the original package runs from its own venv."""
    if contender == "original":
        command = [str(original_python()), "-I", str(WORKER)]
    else:
        command = [sys.executable, str(WORKER)]
    done = subprocess.run(
        [*command, contender, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{contender} {' '.join(args)} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result
