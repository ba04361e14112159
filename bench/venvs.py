"""Virtual environments of their own for contenders that clash with ours.

The original ``background`` package installs under our import name, so it runs from
``bench/.venvs/original`` (ignored by git), made on first use.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent / ".venvs"
ORIGINAL = "background==0.2.1"


def original_python() -> Path:
    """The interpreter of a venv where ``import background`` is the original package."""
    home = ROOT / "original"
    python = home / "bin" / "python"
    stamp = home / f".installed-{ORIGINAL}"
    if not stamp.exists():
        print(f"bench: creating {home} with {ORIGINAL} (first run only)", file=sys.stderr)
        venv.create(home, with_pip=True, clear=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", ORIGINAL],
            check=True,
        )
        stamp.touch()
    return python
