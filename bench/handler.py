"""Handler cost: requests per second and latency of an endpoint that fires one 50 ms task,
against the same endpoint firing nothing.

Flask under gunicorn (gthread, one worker, 4 threads): ours, Flask-Executor, a bare
``ThreadPoolExecutor``. FastAPI under uvicorn (``async def`` endpoints): ours through a
``@task`` function and through ``BackgroundDep``, ``BackgroundTasks`` with a sync and with an
async task, a bare ``ThreadPoolExecutor``. Each contender gets a fresh server per round, in
a seeded shuffled order; on it, ``/nothing`` and ``/fire`` take turns (nothing, fire, fire,
nothing), and each ratio is fire over the adjacent nothing on the same server.

Run alone: ``python -m bench.handler [--quick]``.
"""

from __future__ import annotations

from contextlib import closing

from bench import http_load, server
from bench.apps import WORKERS
from bench.section import Section, Target, median, pair_ratios

# (server, contender): what the row says it fires
CONTENDERS = {
    ("gunicorn", "ours"): "ours: a task of flask_background",
    ("gunicorn", "flask-executor"): "Flask-Executor",
    ("gunicorn", "executor"): "ThreadPoolExecutor",
    ("uvicorn", "ours-task"): "ours: a @task function",
    ("uvicorn", "ours"): "ours: bg.submit, bg from BackgroundDep",
    ("uvicorn", "tasks-sync"): "BackgroundTasks, sync task",
    ("uvicorn", "tasks-async"): "BackgroundTasks, async task",
    ("uvicorn", "executor"): "ThreadPoolExecutor",
}
FRAMEWORK = {"gunicorn": "Flask, gunicorn gthread", "uvicorn": "FastAPI, uvicorn"}
CONNECTIONS = 16
TASK_MS = 50
ROUNDS = 2
PATTERN = ["/nothing", "/fire", "/fire", "/nothing"]  # each fire beside a nothing


def env(contender: str) -> dict[str, str]:
    return {"BENCH_CONTENDER": contender, "BENCH_TASK_MS": str(TASK_MS)}


Samples = dict[str, list[http_load.LoadResult]]


def measure(running: server.Server, seconds: float, quick: bool) -> Samples:
    """Warm a fresh server up, then load ``/nothing`` and ``/fire`` in turn."""
    got: Samples = {"/nothing": [], "/fire": []}
    try:
        server.warm_up(running, ["/ping", "/nothing", "/fire"])
        for path in PATTERN[:2] if quick else PATTERN:
            url = running.url(path)
            got[path].append(http_load.load(url, seconds=seconds, connections=CONNECTIONS))
    finally:
        running.kill()  # its backlog of tasks is not what is measured
    return got


def run(quick: bool) -> Section:
    rounds, seconds = (1, 1.0) if quick else (ROUNDS, 1.0)
    keys = [f"{name}/{contender}" for name, contender in CONTENDERS]
    fire: Samples = {key: [] for key in keys}
    nothing: Samples = {key: [] for key in keys}
    for order in server.rounds_order(keys, rounds, seed=3):
        specs = [(key.split("/")[0], env(key.split("/")[1])) for key in order]
        with closing(server.launch_each(specs, at_once=quick)) as servers:
            for key, running in zip(order, servers, strict=True):
                got = measure(running, seconds, quick)
                fire[key] += got["/fire"]
                nothing[key] += got["/nothing"]

    rows: list[list[str | int | float | None]] = []
    ratios: dict[str, float] = {}
    for name, framework in FRAMEWORK.items():
        base = [r for key, got in nothing.items() if key.startswith(name) for r in got]
        rows.append([framework, "nothing", *_figures(base), 1.0])
        for (server_name, contender), label in CONTENDERS.items():
            if server_name != name:
                continue
            key = f"{name}/{contender}"
            rps = [r.rps for r in fire[key]]
            ratios[key] = median(pair_ratios(rps, [r.rps for r in nothing[key]]))
            rows.append([framework, label, *_figures(fire[key]), round(ratios[key], 2)])
    errors = sum(r.errors for got in (*fire.values(), *nothing.values()) for r in got)
    tool = next(iter(fire.values()))[0].tool
    notes = [
        f"Medians of {rounds} rounds, each contender on a fresh server per round; on it, "
        f"{seconds:g} s loads of /nothing and /fire take turns (nothing, fire, fire, "
        f"nothing), closed-loop from {tool} on 127.0.0.1 with {CONNECTIONS} keep-alive "
        "connections. 'vs nothing' is fire over the adjacent nothing on the same server; the "
        "'nothing' rows pool every server's /nothing.",
        f"Each request fires one {TASK_MS} ms sleep task; every pool (ours, Flask-Executor, "
        f"ThreadPoolExecutor) has {WORKERS} worker threads, so a backlog builds: the cost of "
        "firing is what is measured. The FastAPI endpoints are `async def`; BackgroundDep "
        "adds FastAPI's resolution of one dependency to the request.",
    ]
    if errors:
        notes.append(f"{errors} requests failed or answered >= 400 over all runs.")
    return Section(
        key="handler",
        title="Handler cost: an endpoint that fires one 50 ms task, against firing nothing",
        columns=["server", "fires", "req/s", "p50 ms", "p99 ms", "req/s vs nothing"],
        rows=rows,
        targets=[
            Target("Flask: ours req/s vs nothing", ratios["gunicorn/ours"], 0.95, ">="),
            Target(
                "FastAPI: ours (@task) req/s vs nothing", ratios["uvicorn/ours-task"], 0.95, ">="
            ),
            Target(
                "FastAPI: ours (BackgroundDep) req/s vs nothing", ratios["uvicorn/ours"], 0.95, ">="
            ),
        ],
        notes=notes,
        raw={
            "rounds": rounds,
            "seconds": seconds,
            "connections": CONNECTIONS,
            "workers": WORKERS,
            "tool": tool,
            "fire": {key: [r.as_dict() for r in got] for key, got in fire.items()},
            "nothing": {key: [r.as_dict() for r in got] for key, got in nothing.items()},
            "rps_vs_nothing": ratios,
        },
    )


def _figures(results: list[http_load.LoadResult]) -> list[float | int]:
    return [
        round(median(r.rps for r in results)),
        round(median(r.p50_ms for r in results), 2),
        round(median(r.p99_ms for r in results), 2),
    ]


if __name__ == "__main__":
    from bench.report import main_for

    main_for(run)
