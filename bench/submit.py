"""Submission cost and throughput: `Background` against `ThreadPoolExecutor`, side by side.

Each round measures every contender once, in a shuffled order; figures are medians over
rounds, and ratios are taken pair by pair within a round.

- submit: nanoseconds of the caller's time per submission of a no-op, while the workers
  are held busy, so that nothing but submission is timed (the queue grows to N tasks).
- throughput: no-op tasks per second, from the first submission until all have run.

Run: ``make bench`` or ``python bench/submit.py [--tasks N] [--rounds R] [--workers W]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from queue import SimpleQueue

from background_core import Background


def noop() -> None:
    pass


class Contender:
    """Builds one fresh pool, submits to it, and waits for it to finish."""

    def __init__(self, name: str, make: Callable[[int], object]) -> None:
        self.name = name
        self.make = make


def _ours(workers: int):
    bg = Background(workers, name="bench", drain_timeout=120)
    return bg.submit, bg.shutdown


def _stdlib(workers: int):
    ex = ThreadPoolExecutor(max_workers=workers)
    return ex.submit, lambda: ex.shutdown(wait=True)


CONTENDERS = {"background": _ours, "ThreadPoolExecutor": _stdlib}


def measure_submit(make, workers: int, tasks: int) -> float:
    """ns per submission with every worker held busy."""
    submit, finish = make(workers)
    release = threading.Event()
    started = threading.Semaphore(0)

    def hold() -> None:
        started.release()
        release.wait()

    for _ in range(workers):
        submit(hold)
    for _ in range(workers):
        started.acquire()
    t0 = time.perf_counter_ns()
    for _ in range(tasks):
        submit(noop)
    elapsed = time.perf_counter_ns() - t0
    release.set()
    finish()
    return elapsed / tasks


def measure_throughput(make, workers: int, tasks: int) -> float:
    """No-op tasks per second, from the first submission until the last has run."""
    submit, finish = make(workers)
    t0 = time.perf_counter()
    for _ in range(tasks):
        submit(noop)
    finish()
    return tasks / (time.perf_counter() - t0)


def measure_queue_put(tasks: int) -> float:
    q: SimpleQueue[object] = SimpleQueue()
    put = q.put
    t0 = time.perf_counter_ns()
    for _ in range(tasks):
        put(noop)
    return (time.perf_counter_ns() - t0) / tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    rng = random.Random(1)
    submit_ns: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    rate: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    put_ns: list[float] = []
    submit_ratio: list[float] = []
    rate_ratio: list[float] = []
    for _ in range(args.rounds):
        order = list(CONTENDERS)
        rng.shuffle(order)
        this: dict[str, tuple[float, float]] = {}
        for name in order:
            gc.collect()
            ns = measure_submit(CONTENDERS[name], args.workers, args.tasks)
            gc.collect()
            tps = measure_throughput(CONTENDERS[name], args.workers, args.tasks)
            this[name] = (ns, tps)
            submit_ns[name].append(ns)
            rate[name].append(tps)
        put_ns.append(measure_queue_put(args.tasks))
        submit_ratio.append(this["background"][0] / this["ThreadPoolExecutor"][0])
        rate_ratio.append(this["background"][1] / this["ThreadPoolExecutor"][1])

    med = statistics.median
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {args.workers} workers, "
        f"{args.tasks} tasks, {args.rounds} rounds (medians)"
    )
    print(f"{'':24}{'ns/submit':>12}{'tasks/s':>12}")
    for name in CONTENDERS:
        print(f"{name:24}{med(submit_ns[name]):>12,.0f}{med(rate[name]):>12,.0f}")
    print(f"{'SimpleQueue.put (floor)':24}{med(put_ns):>12,.0f}")
    print(
        f"background / ThreadPoolExecutor: submit {med(submit_ratio):.2f}x "
        f"(target <= 0.5), throughput {med(rate_ratio):.2f}x (target >= 1.0)"
    )
    if args.json:
        result = {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "workers": args.workers,
            "tasks": args.tasks,
            "rounds": args.rounds,
            "submit_ns": {k: med(v) for k, v in submit_ns.items()},
            "tasks_per_s": {k: med(v) for k, v in rate.items()},
            "simplequeue_put_ns": med(put_ns),
            "submit_ratio": med(submit_ratio),
            "throughput_ratio": med(rate_ratio),
        }
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
