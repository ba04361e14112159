"""Isolation: latency of a FastAPI sync (``def``) endpoint while another endpoint fires
50 ms sync tasks at full load.

Under uvicorn, ``/ping`` (``def``, tiny work) gets a light closed-loop load while a second
generator puts full load on ``/fire-def`` (``def``), which fires one 50 ms ``time.sleep``
task per request: with nothing (the baseline: the same traffic, no task), with ours, or
with ``BackgroundTasks``. ``/ping`` with no other traffic at all is shown for orientation.
Each measurement gets a fresh server. In each round, in a seeded shuffled order, every
contender is measured right beside a baseline of its own (before it in one round, after it
in the next), and its ratio is taken against that adjacent baseline: the machine's speed
drifts over seconds, which pairs further apart would measure instead.

Run alone: ``python -m bench.isolation [--quick]``.
"""

from __future__ import annotations

import time
from contextlib import closing

from bench import http_load, server
from bench.apps import WORKERS
from bench.section import Section, Target, median, pair_ratios

CONTENDERS = {
    "idle": "no other traffic",
    "nothing": "/fire-def loaded, fires nothing",
    "ours-task": "/fire-def loaded, fires ours (@task)",
    "ours": "/fire-def loaded, fires ours (BackgroundDep)",
    "tasks-sync": "/fire-def loaded, fires BackgroundTasks",
}
PING_CONNECTIONS = 4
FIRE_CONNECTIONS = 16
LEAD = 0.5  # seconds of load on /fire-def before /ping is measured
TASK_MS = 50
ROUNDS = 3


def measure(
    running: server.Server, loaded: bool, seconds: float
) -> tuple[http_load.LoadResult, http_load.LoadResult | None]:
    """`seconds` of light load on ``/ping`` of a fresh server, inside a longer full load on
    ``/fire-def`` if `loaded`; the results on ``/ping`` and on ``/fire-def``."""
    try:
        server.warm_up(running, ["/ping", "/fire-def"])
        fire = None
        if loaded:
            fire = http_load.start(
                running.url("/fire-def"), seconds=seconds + 2 * LEAD, connections=FIRE_CONNECTIONS
            )
            time.sleep(LEAD)
        ping = http_load.load(running.url("/ping"), seconds=seconds, connections=PING_CONNECTIONS)
        return ping, fire.result() if fire else None
    finally:
        running.kill()  # its backlog of tasks is not what is measured


def run(quick: bool) -> Section:
    rounds, seconds = (1, 1.0) if quick else (ROUNDS, 2.0)
    ping: dict[str, list[http_load.LoadResult]] = {key: [] for key in CONTENDERS}
    fire: dict[str, list[http_load.LoadResult]] = {key: [] for key in CONTENDERS}
    beside: dict[str, list[http_load.LoadResult]] = {key: [] for key in CONTENDERS}
    loaded = [key for key in CONTENDERS if key not in ("idle", "nothing")]
    for number, order in enumerate(server.rounds_order(loaded, rounds, seed=4)):
        # Each contender with its own baseline beside it, before or after by turns.
        keys = ["idle"]
        for key in order:
            keys += [key, "nothing"] if number % 2 else ["nothing", key]
        specs = [("uvicorn", env(key)) for key in keys]
        with closing(server.launch_each(specs, at_once=quick)) as servers:
            for index, (key, running) in enumerate(zip(keys, servers, strict=True)):
                on_ping, on_fire = measure(running, key != "idle", seconds)
                ping[key].append(on_ping)
                if on_fire:
                    fire[key].append(on_fire)
                if key == "nothing":  # the baseline of the contender it stands beside
                    partner = keys[index - 1] if number % 2 else keys[index + 1]
                    beside[partner].append(on_ping)

    ratios = {
        key: median(pair_ratios([r.p99_ms for r in ping[key]], [r.p99_ms for r in beside[key]]))
        for key in loaded
    }
    ratios["nothing"] = 1.0
    ratios["idle"] = median(r.p99_ms for r in ping["idle"]) / median(
        r.p99_ms for r in ping["nothing"]
    )
    rows: list[list[str | int | float | None]] = [
        [
            label,
            round(median(r.p50_ms for r in ping[key]), 2),
            round(median(r.p99_ms for r in ping[key]), 2),
            round(median(r.rps for r in ping[key])),
            round(ratios[key], 2),
            round(median(r.rps for r in fire[key])) if fire[key] else None,
        ]
        for key, label in CONTENDERS.items()
    ]
    tool = ping["idle"][0].tool
    errors = sum(r.errors for results in (*ping.values(), *fire.values()) for r in results)
    notes = [
        f"FastAPI under uvicorn; /ping and /fire-def are `def` endpoints, the task is a "
        f"{TASK_MS} ms time.sleep; our pool has {WORKERS} worker threads, BackgroundTasks "
        "runs in anyio's threadpool (40 threads), shared with `def` endpoints. BackgroundDep "
        "adds FastAPI's resolution of a dependency, on the event loop, to each /fire-def.",
        f"/ping: {seconds:g} s of closed-loop load over {PING_CONNECTIONS} connections, "
        f"{LEAD:g} s into a full load of {FIRE_CONNECTIONS} connections on /fire-def; "
        f"{tool} on 127.0.0.1; medians of {rounds} rounds, one fresh server per "
        "measurement; 'p99 vs no background' is taken against a server that fires nothing, "
        "measured right beside each one (the 'fires nothing' row pools those baselines).",
    ]
    if errors:
        notes.append(f"{errors} requests failed or answered >= 400 over all runs.")
    return Section(
        key="isolation",
        title="Isolation: a sync endpoint's latency while another fires 50 ms sync tasks",
        columns=[
            "/ping with",
            "p50 ms",
            "p99 ms",
            "/ping req/s",
            "p99 vs no background",
            "/fire-def req/s",
        ],
        rows=rows,
        targets=[
            Target("ours (@task): /ping p99 vs no background", ratios["ours-task"], 1.2, "<="),
            Target("ours (BackgroundDep): /ping p99 vs no background", ratios["ours"], 1.2, "<="),
        ],
        notes=notes,
        raw={
            "rounds": rounds,
            "seconds": seconds,
            "workers": WORKERS,
            "tool": tool,
            "ping": {key: [r.as_dict() for r in got] for key, got in ping.items()},
            "fire": {key: [r.as_dict() for r in got] for key, got in fire.items()},
            "p99_vs_no_background": ratios,
        },
    )


def env(contender: str) -> dict[str, str]:
    """The server of `contender`: "idle" is the one that fires nothing, left unloaded."""
    name = "nothing" if contender == "idle" else contender
    return {"BENCH_CONTENDER": name, "BENCH_TASK_MS": str(TASK_MS)}


if __name__ == "__main__":
    from bench.report import main_for

    main_for(run)
