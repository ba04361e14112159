"""Run a Python script in a fresh interpreter with the checkout importable."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def script_env() -> dict[str, str]:
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
