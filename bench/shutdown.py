"""Shutdown: 200 tasks of 20 ms in flight, then SIGTERM to the server (or, for a plain
script, the normal end of main): how many tasks ran, and seconds from SIGTERM to the exit.

Servers get 200 requests, each firing one task that appends a line to a file when it has
run; the moment the 200th answer is in, the server's main process (gunicorn's master) gets
SIGTERM. A plain script fires 200 tasks and lets main end. Each wait is bounded: a process
still alive `BOUND` seconds on is killed, and counted as such.

Run alone: ``python -m bench.shutdown [--quick]``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import http_load, server
from bench.apps import WORKERS
from bench.section import Section, Target, median
from bench.venvs import original_python

TASKS = 200
TASK_MS = 20
BOUND = 35.0  # seconds a process may take to exit before it is killed
FIRE_CONNECTIONS = 4
ROUNDS = 3
SCRIPT = Path(__file__).resolve().parent / "apps" / "script.py"

# (kind, contender): the row's label. A kind is a server, or "script".
CONTENDERS = {
    ("uvicorn", "ours"): "ours (fastapi_background)",
    ("uvicorn", "tasks-sync"): "BackgroundTasks, sync task",
    ("uvicorn", "tasks-async"): "BackgroundTasks, async task",
    ("uvicorn", "executor"): "ThreadPoolExecutor",
    ("gunicorn", "ours"): "ours (flask_background)",
    ("gunicorn", "flask-executor"): "Flask-Executor",
    ("gunicorn", "executor"): "ThreadPoolExecutor",
    ("script", "ours"): "ours (import background)",
    ("script", "original"): "original background 0.2.1",
    ("script", "executor"): "ThreadPoolExecutor",
}
KIND = {
    "uvicorn": "FastAPI, uvicorn: SIGTERM",
    "gunicorn": "Flask, gunicorn gthread: SIGTERM to the master",
    "script": "plain script: main ends",
}


@dataclass(frozen=True)
class Outcome:
    """One run: tasks that ran, seconds from SIGTERM (or main's end) to the exit."""

    ran: int
    seconds: float
    killed: bool
    answered: int = TASKS  # requests answered before the signal (servers)
    ran_at_signal: int = 0


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def measure_server(running: server.Server, out: Path) -> Outcome:
    """Fire `TASKS` tasks through HTTP, SIGTERM the server once all are answered, wait."""
    try:
        fired = http_load.generate(
            running.url("/fire"), seconds=BOUND, connections=FIRE_CONNECTIONS, max_requests=TASKS
        )
        at_signal = lines(out)
        seconds = running.stop(BOUND)
        return Outcome(
            lines(out), seconds, running.killed, fired.requests - fired.errors, at_signal
        )
    finally:
        running.kill()


def measure_script(contender: str, out: Path) -> Outcome:
    """Run the plain script of `contender`; time its exit from the end of its main."""
    python = original_python() if contender == "original" else Path(sys.executable)
    kind = "executor" if contender == "executor" else "seed"
    argv = [str(python), "-I", str(SCRIPT), kind, str(out), str(TASKS), str(TASK_MS)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
    killed = False
    try:
        stdout, _ = proc.communicate(timeout=BOUND + 5)
    except subprocess.TimeoutExpired:
        killed = True
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, _ = proc.communicate()
    exited = time.monotonic()
    ended = float(stdout.split()[0]) if stdout.strip() else exited
    return Outcome(lines(out), exited - ended, killed)


def run(quick: bool) -> Section:
    rounds = 1 if quick else ROUNDS
    keys = [f"{kind}/{contender}" for kind, contender in CONTENDERS]
    outcomes: dict[str, list[Outcome]] = {key: [] for key in keys}
    work = Path(tempfile.mkdtemp(prefix="bench-shutdown-"))
    original_python()  # made before any timing, on first use
    for r, order in enumerate(server.rounds_order(keys, rounds, seed=5)):
        outs = {key: work / f"{r}-{key.replace('/', '-')}.txt" for key in order}
        served = [key for key in order if not key.startswith("script/")]
        specs = [(key.split("/")[0], env(key.split("/")[1], outs[key])) for key in served]
        # launched in `order`, each only when the previous one is done with (unless quick)
        with closing(server.launch_each(specs, at_once=quick)) as servers:
            for key in order:
                kind, contender = key.split("/")
                if kind == "script":
                    outcomes[key].append(measure_script(contender, outs[key]))
                else:
                    outcomes[key].append(measure_server(next(servers), outs[key]))
    shutil.rmtree(work, ignore_errors=True)
    return section(outcomes, rounds)


def env(contender: str, out: Path) -> dict[str, str]:
    return {"BENCH_CONTENDER": contender, "BENCH_TASK_MS": str(TASK_MS), "BENCH_OUT": str(out)}


def section(outcomes: dict[str, list[Outcome]], rounds: int) -> Section:
    rows: list[list[str | int | float | None]] = []
    for (kind, contender), label in CONTENDERS.items():
        got = outcomes[f"{kind}/{contender}"]
        killed = sum(o.killed for o in got)
        rows.append(
            [
                KIND[kind],
                label,
                f"{round(median(o.ran for o in got))}/{TASKS}",
                f"{min(o.ran for o in got)}/{TASKS}",
                None if kind == "script" else round(median(o.ran_at_signal for o in got)),
                round(median(o.seconds for o in got), 2),
                f"{killed} of {len(got)}" if killed else "no",
            ]
        )
    targets = [
        Target(f"{KIND[kind].split(':')[0]}: ours ran (worst of {rounds})", worst, TASKS, ">=")
        for kind in KIND
        for worst in [min(o.ran for o in outcomes[f"{kind}/ours"])]
    ]
    short = sum(o.answered < TASKS for got in outcomes.values() for o in got)
    notes = [
        f"{TASKS} tasks of {TASK_MS} ms sleep, fired by {TASKS} requests over "
        f"{FIRE_CONNECTIONS} keep-alive connections; SIGTERM the moment the last answer is "
        f"in. Every pool has {WORKERS} worker threads (about {TASKS * TASK_MS / WORKERS / 1000:g}"
        " s of work). Servers: uvicorn (one process), gunicorn gthread (1 worker, 4 threads).",
        f"Ran: median and worst of {rounds} interleaved rounds (seeded shuffle), one fresh "
        f"process per run; exit: median seconds from SIGTERM (scripts: from main's end); a "
        f"process still alive after {BOUND:g} s is killed.",
    ]
    if short:
        notes.append(f"{short} runs had fewer than {TASKS} requests answered before SIGTERM.")
    return Section(
        key="shutdown",
        title=f"Shutdown: {TASKS} tasks of {TASK_MS} ms in flight, then SIGTERM or exit",
        columns=[
            "server",
            "pool",
            "ran (median)",
            "ran (worst)",
            "ran before SIGTERM",
            "s to exit",
            "killed",
        ],
        rows=rows,
        targets=targets,
        notes=notes,
        raw={
            "rounds": rounds,
            "tasks": TASKS,
            "task_ms": TASK_MS,
            "workers": WORKERS,
            "bound_s": BOUND,
            "outcomes": {key: [asdict(o) for o in got] for key, got in outcomes.items()},
        },
    )


if __name__ == "__main__":
    from bench.report import main_for

    main_for(run)
