"""Runs `bench/micro_worker.py` for one contender in a fresh process of the right venv."""

from __future__ import annotations

import json
import os
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
    "background-planned": "background: bg.using(retries=3).submit (options, no delay)",
    "background-delayed": "background: bg.using(delay=3600).submit (scheduled)",
    "background-otel": "background: Background.submit, OpenTelemetry on (SDK providers)",
    "background-flask": "background: Flask extension, in a request",
    "ThreadPoolExecutor": "ThreadPoolExecutor.submit",
    "Flask-Executor": "Flask-Executor 1.0.0, in a request",
    "original": "original background 0.2.1: background.run",
}


def measure(
    contender: str, *args: str, source: Path | None = None, timeout: float = 120
) -> dict[str, Any]:
    """One measurement in a fresh process; the original package runs from its own venv.

    `source`: a directory whose ``background_core`` is measured instead of this checkout's
    (`bench.venvs.source_tree`); RuntimeError if another one was imported.
    """
    env = None
    if contender == "original":
        command = [str(original_python()), "-I", str(WORKER)]
    else:
        command = [sys.executable, str(WORKER)]
    if source is not None:
        env = {**os.environ, "PYTHONPATH": str(source)}
    done = subprocess.run(
        [*command, contender, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{contender} {' '.join(args)} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    if source is not None and Path(result.get("source", "")).parent != source:
        raise RuntimeError(f"{contender} ran {result.get('source')}, not the one in {source}")
    return result
