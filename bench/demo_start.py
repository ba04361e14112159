"""How long `make demo` takes to its banner: on a fresh clone with an empty pip cache, then
once its virtual environment exists. ``python -m bench.demo_start`` (not part of
``make bench``: it clones this repository's HEAD and downloads the demo's packages).

Protocol: `git clone` of HEAD into a temporary directory; ``make demo`` there with
``PIP_NO_CACHE_DIR=1``, timed from its start to the banner's first line on stdout; then the
demo is stopped (SIGINT to its process group, as Ctrl-C) and started `--warm` more times.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BANNER = "background demo: open http://"


def time_to_banner(clone: Path, timeout: float) -> float:
    """Seconds from `make demo` to its banner; the demo is stopped before returning."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1", "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    make = subprocess.Popen(
        ["make", "demo", f"DEMO_ARGS=--host 127.0.0.1 --port {port}"],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert make.stdout is not None
    try:
        for line in make.stdout:
            if line.startswith(BANNER):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                break
        raise RuntimeError(f"no banner within {timeout:.0f} s")
    finally:
        os.killpg(make.pid, signal.SIGINT)
        try:
            make.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=3, help="warm starts to time (3)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per start (300)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="demo-start-") as tmp:
        clone = Path(tmp) / "background"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        cold = time_to_banner(clone, args.timeout)
        print(f"fresh clone, empty pip cache: banner after {cold:.1f} s", flush=True)
        warm = [time_to_banner(clone, args.timeout) for _ in range(args.warm)]
        print(
            f"venv exists: banner after {statistics.median(warm):.2f} s median"
            f" ({min(warm):.2f}-{max(warm):.2f}, {len(warm)} starts)"
        )
    sys.exit(0)


if __name__ == "__main__":
    main()
