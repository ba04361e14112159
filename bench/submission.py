"""1. Submission cost: the caller's time per no-op submission, and no-op tasks per second.

Every contender runs in a fresh process per round, in a shuffled order; ratios are taken
pair by pair within a round. Submission is timed while the workers are held busy, so only
the caller's side is measured; throughput runs from the first submission until the pool
has finished every task and stopped.

Run alone: ``python -m bench.submission [--quick]``.
"""

from __future__ import annotations

import random

from bench.micro import LABELS, measure
from bench.section import Section, Target, median, pair_ratios

WORKERS = 2
TASKS = 20_000
# Flask-Executor takes about 0.1 ms per submission: fewer tasks keep the suite in budget.
FEWER = {"Flask-Executor": 4_000}
POOLS = ["background", "background-flask", "ThreadPoolExecutor", "Flask-Executor", "original"]


def run(quick: bool = False) -> Section:
    rounds = 1 if quick else 5
    scale = 10 if quick else 1
    rng = random.Random(7)
    submit: dict[str, list[float]] = {name: [] for name in ["SimpleQueue", *POOLS]}
    rate: dict[str, list[float]] = {name: [] for name in POOLS}
    for _ in range(rounds):
        order = ["SimpleQueue", *POOLS]
        rng.shuffle(order)
        for name in order:
            tasks = FEWER.get(name, TASKS) // scale
            got = measure(name, "--workers", str(WORKERS), "--tasks", str(tasks))
            submit[name].append(got["submit_ns"])
            if name in rate:
                rate[name].append(got["tasks_per_s"])

    stdlib = "ThreadPoolExecutor"
    submit_vs = {name: median(pair_ratios(submit[name], submit[stdlib])) for name in submit}
    rate_vs = {name: median(pair_ratios(rate[name], rate[stdlib])) for name in rate}
    rows: list[list[str | int | float | None]] = []
    for name, samples in submit.items():
        rows.append(
            [
                LABELS[name],
                round(median(samples) / 1000, 2),
                round(submit_vs[name], 2),
                round(median(rate[name])) if name in rate else None,
                round(rate_vs[name], 2) if name in rate else None,
            ]
        )
    vs_flask_executor = median(pair_ratios(submit["background-flask"], submit["Flask-Executor"]))
    return Section(
        key="submission",
        title="Submission cost",
        columns=["contender", "µs per submit", "vs stdlib", "no-op tasks/s", "vs stdlib"],
        rows=rows,
        targets=[
            Target("submit: background / ThreadPoolExecutor", submit_vs["background"], 0.5, "<="),
            Target(
                "submit in a Flask request: background / Flask-Executor",
                vs_flask_executor,
                0.1,
                "<=",
            ),
            Target("throughput: background / ThreadPoolExecutor", rate_vs["background"], 1.0, ">="),
        ],
        notes=[
            f"{WORKERS} workers per pool; {TASKS:,} no-op tasks per figure "
            f"(Flask-Executor: {FEWER['Flask-Executor']:,}); medians of {rounds} rounds, "
            "each contender in a fresh process, in a shuffled order.",
            "'vs stdlib' is the ratio to ThreadPoolExecutor taken within each round.",
        ],
        raw={"submit_ns": submit, "tasks_per_s": rate, "rounds": rounds},
    )


if __name__ == "__main__":
    from bench.report import main_for

    main_for(run)
