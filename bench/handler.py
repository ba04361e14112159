"""Handler cost: requests per second and latency of an endpoint that fires one 50 ms task,
against the same endpoint firing nothing.

Flask under gunicorn (gthread, one worker, 4 threads): ours, Flask-Executor, a bare
``ThreadPoolExecutor``. FastAPI under uvicorn (an ``async def`` endpoint): ours,
``BackgroundTasks`` with a sync and with an async task, a bare ``ThreadPoolExecutor``.
Each measurement gets a fresh server; each round measures every contender once, in a
seeded shuffled order; ratios to "nothing" are taken round by round.

Run alone: ``python -m bench.handler [--quick]``.
"""

from __future__ import annotations

from bench import http_load, server
from bench.apps import WORKERS
from bench.section import Section, Target, median, pair_ratios

# (server, contender): what the row says it fires
CONTENDERS = {
    ("gunicorn", "nothing"): "nothing",
    ("gunicorn", "ours"): "ours (flask_background)",
    ("gunicorn", "flask-executor"): "Flask-Executor",
    ("gunicorn", "executor"): "ThreadPoolExecutor",
    ("uvicorn", "nothing"): "nothing",
    ("uvicorn", "ours"): "ours (fastapi_background)",
    ("uvicorn", "tasks-sync"): "BackgroundTasks, sync task",
    ("uvicorn", "tasks-async"): "BackgroundTasks, async task",
    ("uvicorn", "executor"): "ThreadPoolExecutor",
}
FRAMEWORK = {"gunicorn": "Flask, gunicorn gthread", "uvicorn": "FastAPI, uvicorn"}
CONNECTIONS = 16
TASK_MS = 50


def measure(name: str, contender: str, seconds: float) -> http_load.LoadResult:
    """One fresh server, a short warm-up, then `seconds` of full load on ``/fire``."""
    running = server.launch(name, {"BENCH_CONTENDER": contender, "BENCH_TASK_MS": str(TASK_MS)})
    try:
        server.warm_up(running, ["/ping", "/fire"])
        return http_load.load(running.url("/fire"), seconds=seconds, connections=CONNECTIONS)
    finally:
        running.kill()  # its backlog of tasks is not what is measured


def run(quick: bool) -> Section:
    rounds, seconds = (1, 0.5) if quick else (3, 2.0)
    keys = [f"{name}/{contender}" for name, contender in CONTENDERS]
    samples: dict[str, list[http_load.LoadResult]] = {key: [] for key in keys}
    for order in server.rounds_order(keys, rounds, seed=3):
        for key in order:
            name, contender = key.split("/")
            samples[key].append(measure(name, contender, seconds))

    rows: list[list[str | int | float | None]] = []
    ratios: dict[str, float] = {}
    for (name, contender), label in CONTENDERS.items():
        got = samples[f"{name}/{contender}"]
        base = [r.rps for r in samples[f"{name}/nothing"]]
        ratio = median(pair_ratios([r.rps for r in got], base))
        ratios[f"{name}/{contender}"] = ratio
        rows.append(
            [
                FRAMEWORK[name],
                label,
                round(median(r.rps for r in got)),
                round(median(r.p50_ms for r in got), 2),
                round(median(r.p99_ms for r in got), 2),
                round(ratio, 2),
            ]
        )
    errors = sum(r.errors for results in samples.values() for r in results)
    tool = next(iter(samples.values()))[0].tool
    notes = [
        f"Each figure: the median of {rounds} interleaved rounds; one fresh server per "
        f"measurement, {seconds:g} s of closed-loop load from {tool} on 127.0.0.1 with "
        f"{CONNECTIONS} keep-alive connections; 'vs nothing' is req/s over the same server's "
        "'nothing' req/s, round by round.",
        f"Each request fires one {TASK_MS} ms sleep task; every pool (ours, Flask-Executor, "
        f"ThreadPoolExecutor) has {WORKERS} worker threads, so a backlog builds: the cost of "
        "firing is what is measured. The FastAPI endpoints are `async def`.",
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
            Target("FastAPI: ours req/s vs nothing", ratios["uvicorn/ours"], 0.95, ">="),
        ],
        notes=notes,
        raw={
            "rounds": rounds,
            "seconds": seconds,
            "connections": CONNECTIONS,
            "workers": WORKERS,
            "tool": tool,
            "samples": {key: [r.as_dict() for r in got] for key, got in samples.items()},
            "rps_vs_nothing": ratios,
        },
    )


if __name__ == "__main__":
    server.cli(run)
