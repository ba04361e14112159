"""Places of their own for contenders that clash with ours, under ``bench/.venvs``
(ignored by git), made on first use.

The original ``background`` package installs under our import name, so it runs from
``bench/.venvs/original``. An earlier revision of our engine is exported from git into
``bench/.venvs/tree-<commit>``: put on ``PYTHONPATH``, its ``background_core`` is imported
instead of this checkout's.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent / ".venvs"
CHECKOUT = ROOT.parent.parent
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


def source_tree(rev: str) -> tuple[Path, str]:
    """A directory holding ``background_core`` as it was at git revision `rev`, and the
    commit's short hash.

    Raises:
        RuntimeError: git is missing, or `rev` names no commit of this checkout.
    """

    def git(*args: str) -> bytes:
        try:
            done = subprocess.run(["git", *args], cwd=CHECKOUT, capture_output=True, check=True)
        except (OSError, subprocess.CalledProcessError) as error:
            detail = getattr(error, "stderr", b"").decode(errors="replace").strip()
            raise RuntimeError(f"git {' '.join(args)} failed: {detail or error}") from error
        return done.stdout

    commit = git("rev-parse", "--verify", "--short=9", f"{rev}^{{commit}}").decode().strip()
    home = ROOT / f"tree-{commit}"
    if not (home / "background_core").is_dir():
        archive = git("archive", "--format=tar", commit, "background_core")
        ROOT.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=ROOT))
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(staging, filter="data")
        shutil.rmtree(home, ignore_errors=True)
        staging.rename(home)  # a tree half written is never used
    return home, commit
