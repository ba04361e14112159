"""What the figures were measured on: cores, CPU, Python, versions of every contender."""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from bench import cpus

PACKAGES = ["flask", "gunicorn", "fastapi", "starlette", "uvicorn", "flask-executor"]


def describe() -> dict[str, Any]:
    cores = len(os.sched_getaffinity(0))
    cpu = _cpu_model()
    python = platform.python_version()
    versions = {name: _version(name) for name in PACKAGES}
    versions["original background"] = "0.2.1"
    load = _wrk_version() or "the Python generator in bench/http_load.py"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "cores": cores,
        "cpu": cpu,
        "python": python,
        "platform": platform.platform(terse=True),
        "versions": versions,
        "load_generator": load,
        "pinning": cpus.described(),
        "summary": f"{cores} cores ({cpu}), Python {python} on {platform.system()}; HTTP load "
        f"from {load}, {cpus.described()}",
    }


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _wrk_version() -> str | None:
    wrk = shutil.which("wrk")
    if wrk is None or os.environ.get("BENCH_LOAD") == "python":
        return None
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).split()
    tag = first[1].removeprefix("debian/").split("-")[0] if len(first) > 1 else ""
    return f"wrk {tag}".strip()
