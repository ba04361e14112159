"""The test suite on every supported Python: `make test-pythons` (CI runs it after `make test`).

Each interpreter gets its own virtual environment under .nox/ with the dev group. An
interpreter that is not on this machine is reported as skipped, never as passed. pyenv's
interpreters count as present even where pyenv's shims are not on PATH.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]  # requires-python >= 3.10, as pyproject.toml says

nox.options.error_on_missing_interpreters = False  # absent: "skipped", in nox's summary
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests"]


def _pyenv_bins() -> list[str]:
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    return [str(path) for path in sorted((root / "versions").glob("3.*/bin"))]


os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), *_pyenv_bins()])


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """pytest, as `make test` runs it; lint and types are checked once, by `make test`."""
    session.install("--quiet", "--upgrade", "pip")  # 25.1 or later installs groups
    session.install("--quiet", "-e", ".", "--group", "dev")
    session.run("python", "-m", "pytest", *session.posargs)
