"""Live and queued submission, end-to-end throughput: ours, the stdlib's pool, the floor.

Three contenders, 2 workers each: ``Background``, ``ThreadPoolExecutor`` and the floor (a
`SimpleQueue` of functions and their arguments, whose consumer threads call what they
get: no futures, no bookkeeping), at
20,000 and 100,000 no-op tasks (and ours and the floor's queued submission at 1,000,000,
with ``ThreadPoolExecutor`` too under ``--million``: about 25 s more). Each round runs every
contender once per size, in a fresh process, in a shuffled order; that process takes its
figures one after the other, each from a fresh pool (`bench/micro_worker.py`, ``--figures``):

- submission, "queued": the caller's time per submission while every worker is blocked on
  an event (the backlog then runs, untimed);
- submission, "live": the same while the workers run the backlog of no-ops; and from the
  same run, end to end, fire-and-forget: from the first submission until ``shutdown()``
  has returned;
- end to end, keep-and-wait: every submission keeping its future, then
  ``concurrent.futures.wait(fs)``, or ``as_completed(fs)`` to its end;
- ``wait(fs)`` over futures already done, the pool shut down;
- ``shutdown(wait=False, cancel_futures=True)`` over the queued futures the caller keeps,
  every worker held busy.

Ratios are taken pair by pair within a round; each cell is the median and its min-max.

Run alone: ``python -m bench.scale [--quick] [--million]``.
"""

from __future__ import annotations

import argparse
import random
import time

from bench.micro import measure
from bench.section import Section, Target, median, pair_ratios

WORKERS = 2
# Tasks per figure -> rounds.
SIZES = {20_000: 3, 100_000: 2}
MILLION = 1_000_000
CONTENDERS = ["floor", "background", "ThreadPoolExecutor"]
OURS, STDLIB = "background", "ThreadPoolExecutor"
# In this order in each process; queued first, as in the 1,000,000 run (a process of its
# own, ended without running its backlog).
# (live: the fire-and-forget figure too, from the same run)
FIGURES = ["queued", "live", "wait", "as_completed", "done_wait", "cancel"]
FLOOR_FIGURES = ["queued", "live"]  # the floor has no futures
KEYS = {
    "queued": "queued_ns",
    "live": "live_ns",
    "fire": "fire_per_s",
    "wait": "wait_per_s",
    "as_completed": "as_completed_per_s",
    "done_wait": "done_wait_ms",
    "cancel": "cancel_ms",
}
LABELS = {
    "live": "submit, live (workers running the backlog): µs",
    "queued": "submit, queued (workers blocked): µs",
    "fire": "end to end, fire-and-forget, to shutdown(): k tasks/s",
    "wait": "end to end, keep and wait(fs): k tasks/s",
    "as_completed": "end to end, keep and as_completed(fs): k tasks/s",
    "done_wait": "wait(fs) over futures already done: ms",
    "cancel": "shutdown(cancel_futures=True) over the queued futures: ms",
}
RATES = {"fire", "wait", "as_completed"}  # higher is better; the others are times
MILLISECONDS = {"done_wait", "cancel"}  # the others: ns per submission, or tasks/s
# Targets from issue 19: ours / ThreadPoolExecutor; end to end, the floor's rate / ours.
SUBMIT_LIMITS = {"live": 0.35, "queued": 0.2}
E2E_VS_STDLIB = 2.5
E2E_VS_FLOOR = 20.0

Samples = dict[str, dict[str, list[float]]]  # "figure@tasks" -> contender -> one per round


def run(quick: bool = False, million: bool = False) -> Section:
    """`million`: ThreadPoolExecutor's queued submission at 1,000,000 too (not with `quick`)."""
    rng = random.Random(19)
    sizes = {tasks // 10: 1 for tasks in SIZES} if quick else dict(SIZES)
    samples: Samples = {}
    for number in range(max(sizes.values())):
        for tasks, rounds in sizes.items():
            if number >= rounds:
                continue
            order = list(CONTENDERS)
            rng.shuffle(order)
            for name in order:
                figures = FLOOR_FIGURES if name == "floor" else FIGURES
                got = _measure(name, tasks, figures)
                for figure in [*figures, "fire"]:
                    cell = samples.setdefault(f"{figure}@{tasks}", {})
                    cell.setdefault(name, []).append(got[KEYS[figure]])
    big = [] if quick else ["floor", OURS, *([STDLIB] if million else [])]
    rng.shuffle(big)
    for name in big:
        got = _measure(name, MILLION, ["queued"], "--abandon", timeout=300)
        samples.setdefault(f"queued@{MILLION}", {}).setdefault(name, []).append(got["queued_ns"])
    return _section(samples, sizes, quick, million)


def _measure(name: str, tasks: int, figures: list[str], *extra: str, timeout: float = 180) -> dict:
    args = ["--workers", str(WORKERS), "--tasks", str(tasks), "--figures", ",".join(figures)]
    return measure(name, *args, *extra, timeout=timeout)


def _section(samples: Samples, sizes: dict[int, int], quick: bool, million: bool) -> Section:
    rows: list[list[str | int | float | None]] = []
    targets: list[Target] = []
    ratios: dict[str, dict[str, list[float]]] = {}
    for figure, label in LABELS.items():  # in the table's order
        for key in sorted((k for k in samples if k.startswith(figure + "@")), key=_tasks):
            tasks, cell = _tasks(key), samples[key]
            rate = figure in RATES
            unit = 1 if figure in MILLISECONDS else 1000  # ns -> µs, tasks/s -> k tasks/s
            vs_stdlib = vs_floor = None
            if OURS in cell and STDLIB in cell:
                vs_stdlib = pair_ratios(cell[OURS], cell[STDLIB])
            floor = cell.get("floor") or samples.get(f"fire@{tasks}", {}).get("floor")
            if OURS in cell and floor and figure not in MILLISECONDS:
                # Our cost per task over the floor's: its rate / ours, or our time / its.
                pair = (floor, cell[OURS]) if rate else (cell[OURS], floor)
                vs_floor = pair_ratios(*pair)
            ratios[key] = {"vs_stdlib": vs_stdlib or [], "vs_floor": vs_floor or []}
            rows.append(
                [
                    label,
                    tasks,
                    _spread(cell.get("floor"), unit),
                    _spread(cell.get(STDLIB), unit),
                    _spread(cell.get(OURS), unit),
                    _spread(vs_stdlib),
                    _spread(vs_floor),
                ]
            )
            where = f"{tasks:,} tasks"
            if vs_stdlib and figure in SUBMIT_LIMITS:
                name = f"submit, {figure}, {where}: background / ThreadPoolExecutor"
                targets.append(Target(name, median(vs_stdlib), SUBMIT_LIMITS[figure], "<="))
            if vs_stdlib and rate:
                name = f"end to end, {_pattern(figure)}, {where}: background / ThreadPoolExecutor"
                targets.append(Target(name, median(vs_stdlib), E2E_VS_STDLIB, ">="))
            if vs_floor and rate:
                name = f"end to end, {_pattern(figure)}, {where}: the floor's rate / background's"
                targets.append(Target(name, median(vs_floor), E2E_VS_FLOOR, "<="))
    # Submit targets first, then end to end against the stdlib, then against the floor.
    targets.sort(key=lambda t: (not t.name.startswith("submit"), "floor" in t.name))
    rounds = ", ".join(f"{n} at {tasks:,}" for tasks, n in sizes.items())  # "3 at 20,000"
    notes = [
        f"{WORKERS} workers per pool, no-op tasks; medians over rounds ({rounds} tasks) with "
        "their range (min-max), each contender in a fresh process per round and size, in a "
        "shuffled order, taking its figures in the order queued, live (and fire-and-forget), "
        "wait, as_completed, done wait(), cancel, each from a fresh pool.",
        "Queued: the caller's time per submit() while every worker is blocked on an event "
        "(the backlog then runs, untimed); live: the same while the workers run the "
        "backlog as it comes.",
        "Fire-and-forget: from the first submit() until shutdown() has returned, no future "
        "kept (the live figure's run); keep and wait: every future kept, until "
        "concurrent.futures.wait(fs) returns or as_completed(fs) has yielded them all.",
        "wait(fs) over futures already done: one call, timed alone, after shutdown(). "
        "shutdown(cancel_futures=True): one shutdown(wait=False, cancel_futures=True), timed "
        "alone, over the queued futures the caller keeps while every worker is held busy.",
        "The floor: SimpleQueue.put of the function and its arguments, and 2 threads that "
        "get and call (no futures: its "
        "end-to-end figure is fire-and-forget's, in every end-to-end row); 'cost vs floor' "
        "is our time per task over the floor's, in the same round.",
        "'vs stdlib' is background / ThreadPoolExecutor in each figure's own unit (below 1 "
        "is better for times, above 1 for rates), taken within each round.",
    ]
    big = samples.get(f"queued@{MILLION}", {})
    if big:
        note = (
            f"Queued at {MILLION:,}: one round, a process of its own per contender, ended "
            "without running its backlog"
            + ("" if million else "; ThreadPoolExecutor only under --million (about 25 s)")
        )
        ours_100k = samples.get("queued@100000", {}).get(OURS)
        if OURS in big and ours_100k:
            note += (
                f"; background per submit at {MILLION:,} / its median at 100,000: "
                f"{big[OURS][0] / median(ours_100k):.2f}"
            )
        notes.append(note + ".")
    return Section(
        key="scale",
        title="Live and queued submission, end to end: ours, ThreadPoolExecutor, the floor",
        columns=[
            "figure",
            "tasks",
            "floor",
            "ThreadPoolExecutor",
            "background",
            "vs stdlib",
            "cost vs floor",
        ],
        rows=rows,
        targets=targets,
        notes=notes,
        raw={"samples": samples, "ratios": ratios, "rounds": {str(k): v for k, v in sizes.items()}},
    )


def _tasks(key: str) -> int:
    return int(key.split("@")[1])


def _pattern(figure: str) -> str:
    return {"fire": "fire-and-forget", "wait": "keep and wait(fs)"}.get(
        figure, "keep and as_completed(fs)"
    )


def _spread(values: list[float] | None, unit: float = 1) -> str | None:
    """'median (min-max)' of `values` / `unit`, or the one value; None for no figure."""
    if not values:
        return None
    got = [v / unit for v in values]
    if len(got) == 1:
        return _number(got[0])
    return f"{_number(median(got))} ({_number(min(got))}-{_number(max(got))})"


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def main() -> None:
    from bench.report import text_table

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--million", action="store_true", help="ThreadPoolExecutor at 1M too")
    args = parser.parse_args()
    t0 = time.monotonic()
    section = run(args.quick, args.million)
    print(text_table(section))
    for note in section.notes:
        print(f"  {note}")
    print(f"({time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    main()
