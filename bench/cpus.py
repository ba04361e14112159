"""Servers on one CPU, load generators on another: neither steals the other's core.

On a machine with fewer than two usable CPUs, or without ``taskset``, nothing is pinned.
"""

from __future__ import annotations

import os
import shutil

_CPUS = sorted(os.sched_getaffinity(0))
_PIN = shutil.which("taskset") is not None and len(_CPUS) >= 2


def for_server(argv: list[str]) -> list[str]:
    """`argv` run on the first usable CPU."""
    return ["taskset", "-c", str(_CPUS[0]), *argv] if _PIN else argv


def for_load(argv: list[str]) -> list[str]:
    """`argv` run on the second usable CPU."""
    return ["taskset", "-c", str(_CPUS[1]), *argv] if _PIN else argv


def described() -> str:
    if not _PIN:
        return "processes not pinned to CPUs"
    return f"the server pinned to CPU {_CPUS[0]}, the load generator to CPU {_CPUS[1]}"
