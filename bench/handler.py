"""Handler cost: requests per second of an endpoint that fires one 50 ms task, against the
same server's endpoint firing nothing, with a backlog of tasks building.

The protocol of issue 19's harness: each server runs `SERVER_WORKERS` worker processes, and
wrk keeps `CONNECTIONS` keep-alive connections busy. Flask under gunicorn (gthread,
`server.THREADS` threads per worker): ours, Flask-Executor, a bare ``ThreadPoolExecutor``.
FastAPI under uvicorn (``async def`` endpoints): ours through a ``@task`` function and,
on the same server and pool, through ``BackgroundDep``; ``BackgroundTasks`` with a sync and
with an async task; a bare ``ThreadPoolExecutor``. Every pool has `WORKERS` threads per
worker process, so the queue grows all along: what is measured is the cost of firing.

Each contender gets a fresh server per round, in a seeded shuffled order. On it, once every
worker process has answered and served each path, ``/nothing`` and ``/fire`` take turns
(nothing, fire, fire, nothing); each ratio is fire over the adjacent nothing on the same
server. Ours under uvicorn runs nothing, task, dep, nothing, dep, task, nothing (task and dep
swapped in the next round), so BackgroundDep is also compared with the ``@task`` call beside
it. The table gives every round's ratios, their median and min-max.

Run alone: ``python -m bench.handler [--quick]``.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field

from bench import http_load, server
from bench.apps import WORKERS
from bench.section import Section, Target, median
from bench.server_process import HOST

# (server, contender) -> {path: what the row says it fires}
CONTENDERS = {
    ("gunicorn", "ours"): {"/fire": "ours: a task of flask_background"},
    ("gunicorn", "flask-executor"): {"/fire": "Flask-Executor"},
    ("gunicorn", "executor"): {"/fire": "ThreadPoolExecutor"},
    ("uvicorn", "ours-task"): {
        "/fire": "ours: a @task function",
        "/fire-dep": "ours: bg.submit, bg from BackgroundDep",
        "/fire-const": "ours: a @task function, and a constant async dependency",
    },
    ("uvicorn", "tasks-sync"): {"/fire": "BackgroundTasks, sync task"},
    ("uvicorn", "tasks-async"): {"/fire": "BackgroundTasks, async task"},
    ("uvicorn", "executor"): {"/fire": "ThreadPoolExecutor"},
}
FRAMEWORK = {"gunicorn": "Flask, gunicorn gthread", "uvicorn": "FastAPI, uvicorn"}
SERVER_WORKERS = 6  # worker processes per server
CONNECTIONS = 32
TASK_MS = 50
ROUNDS = 2
SECONDS = 1.0  # per load; wrk takes whole seconds
READY_TIMEOUT = 30.0  # seconds for every worker process to answer
CPU_TARGETS = {
    ("gunicorn/ours", "/fire"): "Flask: ours server CPU/req vs nothing",
    ("uvicorn/ours-task", "/fire"): "FastAPI: ours (@task) server CPU/req vs nothing",
    ("uvicorn/ours-task", "/fire-dep"): "FastAPI: ours (BackgroundDep) server CPU/req vs nothing",
}
# Compared directly with the @task call beside them: BackgroundDep, and FastAPI's floor for
# one dependency (an async one returning a constant).
BESIDE_TASK = {
    "/fire-dep": "BackgroundDep over @task (beside it)",
    "/fire-const": "a constant dependency over @task (beside it)",
}


def env(contender: str) -> dict[str, str]:
    return {"BENCH_CONTENDER": contender, "BENCH_TASK_MS": str(TASK_MS)}


def pattern(paths: list[str], number: int) -> list[str]:
    """The loads on one server, each fire beside a nothing: N F F N, or with several fire
    paths N A B C N C B A N (reversed in odd rounds)."""
    if len(paths) == 1:
        return ["/nothing", paths[0], paths[0], "/nothing"]
    ordered = paths if number % 2 == 0 else paths[::-1]
    return ["/nothing", *ordered, "/nothing", *ordered[::-1], "/nothing"]


def neighbour(loads: list[str], index: int, path: str) -> int:
    """The index of the load on `path` nearest to load `index` (the earlier one on a tie)."""
    return min((j for j, each in enumerate(loads) if each == path), key=lambda j: abs(j - index))


def ready(running: server.Server, paths: list[str]) -> None:
    """Wait (bounded) until each of the `SERVER_WORKERS` processes has answered ``/pid``,
    then send a few requests to every path over `CONNECTIONS` connections at once, so each
    worker has served each path (its first-request costs are not measured)."""
    pids: set[int] = set()
    deadline = time.monotonic() + READY_TIMEOUT
    while len(pids) < SERVER_WORKERS:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{len(pids)} of {SERVER_WORKERS} workers answered:\n{running.output()}"
            )
        conn = http.client.HTTPConnection(HOST, running.port, timeout=10)
        try:
            conn.request("GET", "/pid")
            pids.add(json.loads(conn.getresponse().read())["pid"])
        finally:
            conn.close()
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        for each in [pool.submit(server.warm_up, running, paths, 5) for _ in range(CONNECTIONS)]:
            each.result()


Loads = list[tuple[str, http_load.LoadResult, float]]
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(group: int) -> float:
    """CPU time (user and system) used so far by the live processes of process group
    `group`: a server's master and workers, with all their threads."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == group:  # pgrp; then utime and stime at 11 and 12
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def measure(running: server.Server, loads: list[str], seconds: float) -> Loads:
    """Load each of `loads` in turn on a fresh server, then kill it. For each: the path, what
    the load saw, and the server's CPU µs per response."""
    got: Loads = []
    try:
        ready(running, sorted(set(loads)))
        for path in loads:
            before = cpu_seconds(running.proc.pid)
            result = http_load.load(running.url(path), seconds=seconds, connections=CONNECTIONS)
            used = cpu_seconds(running.proc.pid) - before
            got.append((path, result, used * 1e6 / result.requests if result.requests else 0.0))
        return got
    finally:
        running.kill()  # its backlog of tasks is not what is measured


@dataclass
class Collected:
    """Every load's figures, and the ratios taken within each round (a list per round)."""

    nothing: dict[str, list[http_load.LoadResult]] = field(default_factory=dict)
    nothing_cpu: dict[str, list[float]] = field(default_factory=dict)
    fired: dict[tuple[str, str], list[http_load.LoadResult]] = field(default_factory=dict)
    fired_cpu: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    rps: dict[tuple[str, str], list[list[float]]] = field(default_factory=dict)
    cpu: dict[tuple[str, str], list[list[float]]] = field(default_factory=dict)
    beside: dict[str, list[list[float]]] = field(default_factory=dict)
    beside_cpu: dict[str, list[list[float]]] = field(default_factory=dict)

    def add(self, key: str, got: Loads, number: int) -> None:
        """One server's loads, in round `number`: each fire against its adjacent nothing."""
        loads = [path for path, _, _ in got]
        for index, (path, result, cpu) in enumerate(got):
            if path == "/nothing":
                self.nothing.setdefault(key, []).append(result)
                self.nothing_cpu.setdefault(key, []).append(cpu)
                continue
            self.fired.setdefault((key, path), []).append(result)
            self.fired_cpu.setdefault((key, path), []).append(cpu)
            _, base, base_cpu = got[neighbour(loads, index, "/nothing")]
            _in_round(self.rps.setdefault((key, path), []), number, _ratio(result.rps, base.rps))
            _in_round(self.cpu.setdefault((key, path), []), number, _ratio(cpu, base_cpu))
            if path in BESIDE_TASK:
                _, task, task_cpu = got[neighbour(loads, index, "/fire")]
                each = self.beside.setdefault(path, [])
                _in_round(each, number, _ratio(result.rps, task.rps))
                each = self.beside_cpu.setdefault(path, [])
                _in_round(each, number, _ratio(cpu, task_cpu))


def _in_round(per_round: list[list[float]], number: int, value: float) -> None:
    while len(per_round) <= number:
        per_round.append([])
    per_round[number].append(value)


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def run(quick: bool) -> Section:
    rounds, seconds = (1, 1.0) if quick else (ROUNDS, SECONDS)
    keys = [f"{name}/{contender}" for name, contender in CONTENDERS]
    got = Collected()
    for number, order in enumerate(server.rounds_order(keys, rounds, seed=3)):
        specs = [(key.split("/")[0], env(key.split("/")[1])) for key in order]
        launched = server.launch_each(specs, at_once=False, workers=SERVER_WORKERS)
        with closing(launched) as servers:
            for key, running in zip(order, servers, strict=True):
                name, contender = key.split("/")
                loads = pattern(list(CONTENDERS[name, contender]), number)
                if quick:  # each fire path once
                    loads = loads[: 2 if len(loads) == 4 else len(loads) // 2 + 1]
                got.add(key, measure(running, loads, seconds), number)

    rows: list[list[str | int | float | None]] = []
    medians: dict[tuple[str, str], float] = {}
    for name, framework in FRAMEWORK.items():
        base = [r for key, each in got.nothing.items() if key.startswith(name + "/") for r in each]
        base_cpu = [
            c for k, each in got.nothing_cpu.items() if k.startswith(name + "/") for c in each
        ]
        rows.append(
            [framework, "nothing", *_figures(base), 1.0, "", "", round(median(base_cpu)), 1.0, ""]
        )
        for (server_name, contender), paths in CONTENDERS.items():
            if server_name != name:
                continue
            key = f"{name}/{contender}"
            for path, label in paths.items():
                per_round = got.rps[key, path]
                medians[key, path] = _median(per_round)
                rows.append(
                    [
                        framework,
                        label,
                        *_figures(got.fired[key, path]),
                        round(medians[key, path], 2),
                        _range(per_round),
                        _by_round(per_round),
                        round(median(got.fired_cpu[key, path])),
                        round(_median(got.cpu[key, path]), 2),
                        _range(got.cpu[key, path]),
                    ]
                )
    for path, label in BESIDE_TASK.items():
        if path in got.beside:
            per_round = got.beside[path]
            rows.append(
                [
                    FRAMEWORK["uvicorn"],
                    label,
                    *([None] * 3),
                    round(_median(per_round), 2),
                    _range(per_round),
                    _by_round(per_round),
                    None,
                    round(_median(got.beside_cpu[path]), 2),
                    _range(got.beside_cpu[path]),
                ]
            )

    return Section(
        key="handler",
        title="Handler cost: an endpoint that fires one 50 ms task, against firing nothing",
        columns=[
            "server",
            "fires",
            "req/s",
            "p50 ms",
            "p99 ms",
            "req/s vs nothing",
            "min-max",
            "each round",
            "server CPU µs/req",
            "CPU/req vs nothing",
            "CPU min-max",
        ],
        rows=rows,
        targets=_targets(medians, got),
        notes=_notes(got, rounds, seconds),
        raw={
            "rounds": rounds,
            "seconds": seconds,
            "server_workers": SERVER_WORKERS,
            "connections": CONNECTIONS,
            "workers": WORKERS,
            "tool": http_load.tool(),
            "fire": {f"{k}{p}": [r.as_dict() for r in each] for (k, p), each in got.fired.items()},
            "nothing": {key: [r.as_dict() for r in each] for key, each in got.nothing.items()},
            "rps_vs_nothing": {f"{k}{p}": each for (k, p), each in got.rps.items()},
            "cpu_vs_nothing": {f"{k}{p}": each for (k, p), each in got.cpu.items()},
            "over_task": got.beside,
        },
    )


def _targets(medians: dict[tuple[str, str], float], got: Collected) -> list[Target]:
    targets = [
        Target("Flask: ours req/s vs nothing", medians["gunicorn/ours", "/fire"], 0.95, ">="),
        Target(
            "FastAPI: ours (@task) req/s vs nothing",
            medians["uvicorn/ours-task", "/fire"],
            0.95,
            ">=",
        ),
        Target(
            "FastAPI: ours (BackgroundDep) req/s vs nothing",
            medians["uvicorn/ours-task", "/fire-dep"],
            0.95,
            ">=",
        ),
    ]
    # The same goals read from the server's CPU time per response, which a noisy machine
    # disturbs less than req/s: a saturated server's req/s goes as 1 / CPU per request.
    for (key, path), label in CPU_TARGETS.items():
        targets.append(Target(label, _median(got.cpu[key, path]), round(1 / 0.95, 3), "<="))
    if "/fire-dep" in got.beside:
        dep = _median(got.beside["/fire-dep"])
        targets.append(Target("FastAPI: BackgroundDep req/s over @task", dep, 0.97, ">="))
        dep_cpu = _median(got.beside_cpu["/fire-dep"])
        limit = round(1 / 0.97, 3)
        targets.append(
            Target("FastAPI: BackgroundDep server CPU/req over @task", dep_cpu, limit, "<=")
        )
    return targets


def _notes(got: Collected, rounds: int, seconds: float) -> list[str]:
    notes = [
        f"Each server runs {SERVER_WORKERS} worker processes (gunicorn gthread of "
        f"{server.THREADS} threads each; uvicorn's --workers, its socket with TCP_NODELAY), "
        f"pinned to one CPU; wrk, on the other, keeps {CONNECTIONS} keep-alive connections "
        f"busy. Each contender gets a fresh server per round ({rounds} rounds, seeded shuffled "
        f"order); once every worker has answered, {seconds:g} s loads of /nothing and /fire take "
        "turns (nothing, fire, fire, nothing). 'vs nothing' is fire over the adjacent nothing "
        "on the same server: median, min-max, and each round's ratios; the 'nothing' rows pool "
        "every server's /nothing. 'server CPU µs/req' is the CPU time of all the server's "
        "processes and threads over the responses of a load (less sensitive to a noisy "
        "machine than req/s).",
        f"Each request fires one {TASK_MS} ms sleep task; every pool (ours, Flask-Executor, "
        f"ThreadPoolExecutor) has {WORKERS} worker threads per worker process, so a backlog "
        "builds: the cost of firing is what is measured. The FastAPI endpoints are `async def`. "
        "Ours under uvicorn serves on one server (one pool) the @task call, BackgroundDep, and "
        "the @task call with one async dependency that returns a constant (FastAPI's own cost "
        "of a dependency), as nothing, task, dep, const, nothing, const, dep, task, nothing "
        "(reversed in the next round); 'over @task' is over the task load nearest to it. The "
        "CPU targets restate the req/s ones for a saturated server: 1/0.95 and 1/0.97.",
    ]
    errors = sum(r.errors for each in (*got.fired.values(), *got.nothing.values()) for r in each)
    if errors:
        notes.append(f"{errors} requests failed or answered >= 400 over all runs.")
    return notes


def _median(per_round: list[list[float]]) -> float:
    return median(r for each in per_round for r in each)


def _figures(results: list[http_load.LoadResult]) -> list[float | int]:
    return [
        round(median(r.rps for r in results)),
        round(median(r.p50_ms for r in results), 2),
        round(median(r.p99_ms for r in results), 2),
    ]


def _range(per_round: list[list[float]]) -> str:
    flat = [r for each in per_round for r in each]
    return f"{min(flat):.2f}-{max(flat):.2f}"


def _by_round(per_round: list[list[float]]) -> str:
    return " | ".join(" ".join(f"{r:.2f}" for r in each) for each in per_round)


if __name__ == "__main__":
    from bench.report import main_for

    main_for(run)
