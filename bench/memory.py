"""2. Memory per queued task, and memory kept per finished task.

Queued: in a fresh process per contender and round, 100,000 no-op tasks are queued behind
a pool whose workers are all held busy, and the growth of resident memory is divided by the
count. Kept: in another fresh process, two batches of tasks run to completion, and the growth
of memory traced by `tracemalloc` over the second batch, per task, is what the pool keeps of
each finished task (the first batch sets the high-water mark of queues and tables, which
stays allocated but does not grow). Kept bytes are exact, so they are measured once.

Ours also with task options: with no delay (queued as any task), and with a delay of an hour
(waiting on the pool's timer, not queued: nothing is held, and no task finishes).

Run alone: ``python -m bench.memory [--quick]``.
"""

from __future__ import annotations

import random

from bench.micro import LABELS, measure
from bench.section import Section, Target, median, pair_ratios

WORKERS = 2
TASKS = 100_000
KEPT_TASKS = 4_000
OPTIONS = ["background-planned", "background-delayed"]  # ours, with task options
POOLS = [
    "background",
    *OPTIONS,
    "background-flask",
    "ThreadPoolExecutor",
    "Flask-Executor",
    "original",
]
NEVER_FINISH = {"background-delayed"}


def run(quick: bool = False) -> Section:
    rounds = 1 if quick else 2  # resident growth at this count moves by well under 1%
    tasks = TASKS // 10 if quick else TASKS
    rng = random.Random(11)
    queued: dict[str, list[float]] = {name: [] for name in POOLS}
    kept: dict[str, list[float]] = {name: [] for name in POOLS}
    kept_tasks = KEPT_TASKS // 5 if quick else KEPT_TASKS
    for round_ in range(rounds):
        order = list(POOLS)
        rng.shuffle(order)
        for name in order:
            size = ["--workers", str(WORKERS), "--tasks"]
            got = measure(name, "--memory", "queued", *size, str(tasks))
            queued[name].append(got["queued_bytes"])
            if round_ == 0 and name not in NEVER_FINISH:
                got = measure(name, "--memory", "kept", *size, str(kept_tasks))
                kept[name].append(got["kept_bytes"])

    stdlib = "ThreadPoolExecutor"
    vs = {name: median(pair_ratios(queued[name], queued[stdlib])) for name in POOLS}
    ours = {
        name: median(pair_ratios(queued[name], queued["background"]))
        for name in ["background", *OPTIONS]
    }
    rows: list[list[str | int | float | None]] = [
        [
            LABELS[name],
            round(median(queued[name])),
            round(vs[name], 2),
            round(ours[name], 2) if name in ours else None,
            round(median(kept[name])) if kept[name] else None,
        ]
        for name in POOLS
    ]
    return Section(
        key="memory",
        title="Memory per task",
        columns=[
            "contender",
            "bytes per queued task",
            "vs stdlib",
            "vs Background.submit",
            "bytes kept per finished task",
        ],
        rows=rows,
        targets=[Target("queued: background / ThreadPoolExecutor", vs["background"], 1.0, "<=")],
        notes=[
            f"Queued: resident memory (RSS) growth with {tasks:,} tasks queued behind "
            f"{WORKERS} busy workers, median of {rounds} rounds, a fresh process each. Kept: "
            f"traced growth over a second batch of {kept_tasks:,} finished tasks.",
            "The original package keeps every future in a module-level list, forever.",
            "Scheduled (delay=3600): the task waits on the pool's timer, not in the queue; "
            "its row is the memory per waiting task.",
        ],
        raw={"queued_bytes": queued, "kept_bytes": kept, "rounds": rounds, "tasks": tasks},
    )


if __name__ == "__main__":
    from bench.report import main_for

    main_for(run)
