"""1. Submission cost: the caller's time per no-op submission, and no-op tasks per second.

Every contender runs in a fresh process per round, in a shuffled order; ratios are taken
pair by pair within a round. Submission is timed while the workers are held busy, so only
the caller's side is measured; throughput runs from the first submission until the pool
has finished every task and stopped.

Beside ``Background.submit``: the same submission with task options that do not delay
(the planned path), one with a delay (scheduled on the pool's timer, then cancelled at
shutdown), and ``Background.submit`` of the engine at an earlier git revision (`BASELINE`
unless told otherwise), measured right before or after ours in each round, by turns.

Run alone: ``python -m bench.submission [--quick]``.
"""

from __future__ import annotations

import random
from pathlib import Path

from bench.micro import LABELS, measure
from bench.section import Section, Target, median, pair_ratios
from bench.venvs import source_tree

WORKERS = 2
TASKS = 20_000
# Flask-Executor takes about 0.1 ms per submission: fewer tasks keep the suite in budget.
FEWER = {"Flask-Executor": 4_000}
# OpenTelemetry's SDK takes about 130 µs per task: its throughput over fewer tasks, likewise.
FEWER_RUN = {"background-otel": 4_000}
OURS = ["background", "background-planned", "background-delayed", "background-otel"]
POOLS = ["background", "background-flask", "ThreadPoolExecutor", "Flask-Executor", "original"]
CONTENDERS = ["SimpleQueue", *OURS, *POOLS[1:]]
# The engine before the OpenTelemetry hooks (issue 17) landed: with the instrumentation
# off, the plain path must not be slower. (The one before task options, issue 16, was
# "a1d5c9b^".)
BASELINE = "188a776^"


def run(quick: bool = False, baseline: str | None = BASELINE) -> Section:
    """`baseline`: the git revision whose ``Background.submit`` is measured beside ours;
    None (or a tree git cannot export) leaves that row out."""
    rounds = 1 if quick else 4
    scale = 10 if quick else 1
    rng = random.Random(7)
    tree, commit, skipped = _baseline_tree(baseline)
    names = list(CONTENDERS)
    if tree:
        names.insert(names.index("background") + 1, "baseline")
    submit: dict[str, list[float]] = {name: [] for name in names}
    # Scheduled tasks never run here, and SimpleQueue has no workers.
    timed = [name for name in names if name not in ("SimpleQueue", "background-delayed")]
    rate: dict[str, list[float]] = {name: [] for name in timed}
    for number in range(rounds):
        order = list(CONTENDERS)
        rng.shuffle(order)
        if tree:  # right beside ours, before it in one round and after it in the next
            order.insert(order.index("background") + number % 2, "baseline")
        for name in order:
            tasks = FEWER.get(name, TASKS) // scale
            size = ["--workers", str(WORKERS), "--tasks", str(tasks)]
            if name in FEWER_RUN:
                size += ["--rate-tasks", str(FEWER_RUN[name] // scale)]
            if name == "baseline":
                got = measure("background", *size, source=tree)
            else:
                got = measure(name, *size)
            submit[name].append(got["submit_ns"])
            if name in rate:
                rate[name].append(got["tasks_per_s"])

    stdlib = "ThreadPoolExecutor"
    submit_vs = {name: median(pair_ratios(submit[name], submit[stdlib])) for name in submit}
    ours_vs = {
        name: median(pair_ratios(submit[name], submit["background"]))
        for name in [*OURS, "baseline"]
        if name in submit
    }
    rate_vs = {name: median(pair_ratios(rate[name], rate[stdlib])) for name in rate}
    labels = {**LABELS, "baseline": f"background at {commit}, the baseline: Background.submit"}
    rows: list[list[str | int | float | None]] = []
    for name, samples in submit.items():
        rows.append(
            [
                labels[name],
                round(median(samples) / 1000, 2),
                f"{min(samples) / 1000:.2f}-{max(samples) / 1000:.2f}",
                round(submit_vs[name], 2),
                round(ours_vs[name], 2) if name in ours_vs else None,
                round(median(rate[name])) if name in rate else None,
                round(rate_vs[name], 2) if name in rate else None,
            ]
        )
    vs_flask_executor = median(pair_ratios(submit["background-flask"], submit["Flask-Executor"]))
    targets = [
        Target("submit: background / ThreadPoolExecutor", submit_vs["background"], 0.5, "<="),
        Target(
            "submit in a Flask request: background / Flask-Executor",
            vs_flask_executor,
            0.1,
            "<=",
        ),
        Target("throughput: background / ThreadPoolExecutor", rate_vs["background"], 1.0, ">="),
        Target(
            "throughput in Flask: the extension / ThreadPoolExecutor",
            rate_vs["background-flask"],
            1.0,
            ">=",
        ),
    ]
    notes = [
        f"{WORKERS} workers per pool; {TASKS:,} no-op tasks per figure "
        f"(Flask-Executor: {FEWER['Flask-Executor']:,}); medians of {rounds} rounds and their "
        "range (min-max), each contender in a fresh process, in a shuffled order.",
        "µs per submit: the caller's time per submit() while every worker is held busy "
        "(the 'queued' figure of the next table); no-op tasks/s: from the first submit() "
        "until shutdown() has returned, in a fresh pool.",
        "'vs stdlib' is the ratio to ThreadPoolExecutor taken within each round; "
        "'vs Background.submit' the ratio to ours, the same way.",
        "Options, no delay: retries=3, and the task succeeds at once. Scheduled: "
        f"delay=3600, {TASKS:,} tasks waiting on the pool's timer thread (no worker), "
        "cancelled at shutdown; nothing runs, so no throughput.",
        "OpenTelemetry on: instrument() with the SDK's TracerProvider (a batch processor "
        "and an exporter that drops the spans) and MeterProvider (an in-memory reader): "
        "each submission counted (reported at collection), a span and two histogram "
        f"records per task; its throughput over {FEWER_RUN['background-otel']:,} tasks.",
    ]
    if tree:
        ab = median(pair_ratios(submit["background"], submit["baseline"]))
        targets.append(Target(f"plain submit: background / baseline {commit}", ab, 1.05, "<="))
        notes.append(
            f"The baseline is this package's engine at git {baseline} ({commit}), "
            "imported from an export under bench/.venvs, measured right beside "
            "Background.submit in each round (before it, then after it, by turns)."
        )
    else:
        notes.append(f"No baseline row: {skipped}.")
    return Section(
        key="submission",
        title="Submission cost, workers held busy (queued): every contender",
        columns=[
            "contender",
            "µs per submit",
            "µs min-max",
            "vs stdlib",
            "vs Background.submit",
            "no-op tasks/s",
            "vs stdlib",
        ],
        rows=rows,
        targets=targets,
        notes=notes,
        raw={
            "submit_ns": submit,
            "tasks_per_s": rate,
            "rounds": rounds,
            "baseline": {"rev": baseline, "commit": commit} if tree else None,
        },
    )


def _baseline_tree(rev: str | None) -> tuple[Path | None, str, str]:
    """The exported tree of `rev` and its commit, or None and why not."""
    if not rev:
        return None, "", "none asked for (--baseline '')"
    try:
        tree, commit = source_tree(rev)
    except RuntimeError as error:
        print(f"(no baseline row: {error})")
        return None, "", str(error)
    return tree, commit, ""


if __name__ == "__main__":
    from bench.report import main_for

    main_for(run)
