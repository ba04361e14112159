"""No-op tasks on a Dask cluster through `dask_executor`, against the pool's own threads.

A LocalCluster of two worker processes (one thread each) on 127.0.0.1. Each round runs
every contender once, in a shuffled order: N no-op submissions timed in the caller (µs per
submission), then until all have finished (tasks per second, from the first submission).
Dask's own ``Client.get_executor(pure=False)`` is measured alongside for orientation
(``pure=False``: with its default, identical calls would run once).

Run: ``python -m bench.dask_cluster [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import random
import sys
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, wait

from distributed import Client, LocalCluster

from background_core import Background
from background_core.dask import dask_executor
from bench.micro_worker import noop  # module-level: the workers import it by name
from bench.section import Section, median, pair_ratios

ROWS = ("Background (2 threads)", "Background + dask_executor", "Client.get_executor(pure=False)")


def measure(submit: Callable[[], Future[object]], tasks: int) -> tuple[float, float]:
    """(µs per submission in the caller, tasks per second until all finished)."""
    gc.collect()
    t0 = time.perf_counter()
    futures = [submit() for _ in range(tasks)]
    t1 = time.perf_counter()
    done, not_done = wait(futures, timeout=120)
    t2 = time.perf_counter()
    assert not not_done, f"{len(not_done)} tasks did not finish"
    errors = [f.exception() for f in done if f.exception() is not None]
    assert not errors, errors[:3]
    return (t1 - t0) / tasks * 1e6, tasks / (t2 - t0)


def run(quick: bool) -> Section:
    rounds, threads_n, cluster_n = (2, 2_000, 100) if quick else (4, 10_000, 300)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    started = time.perf_counter()
    with (
        LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        client.wait_for_workers(2, timeout=60)
        setup = time.perf_counter() - started
        ours = dask_executor(client)
        theirs: Executor = client.get_executor(pure=False)
        threads = Background(2, name="bench-threads", drain_timeout=120)
        on_cluster = Background(2, name="bench-dask", executor=ours, drain_timeout=120)
        contenders: dict[str, tuple[Callable[[], Future[object]], int]] = {
            ROWS[0]: (lambda: threads.submit(noop), threads_n),
            ROWS[1]: (lambda: on_cluster.submit(noop), cluster_n),
            ROWS[2]: (lambda: theirs.submit(noop), cluster_n),
        }
        for submit, _ in contenders.values():  # warm up: imports on the workers, connections
            measure(submit, 20)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
        rng = random.Random(1)
        for _ in range(rounds):
            order = list(contenders)
            rng.shuffle(order)
            for name in order:
                samples[name].append(measure(*contenders[name]))
        threads.shutdown()
        on_cluster.shutdown()
        ours.shutdown()
    rows: list[list[str | int | float | None]] = []
    for name, values in samples.items():
        rows.append(
            [name, round(median(s for s, _ in values), 1), round(median(r for _, r in values))]
        )
    ratio = pair_ratios([r for _, r in samples[ROWS[1]]], [r for _, r in samples[ROWS[2]]])
    return Section(
        key="dask",
        title="Tasks on a Dask cluster (LocalCluster, 2 worker processes on 127.0.0.1)",
        columns=["pool", "submit µs", "tasks/s"],
        rows=rows,
        notes=[
            f"{rounds} interleaved rounds; {threads_n} no-op tasks per round on threads, "
            f"{cluster_n} on the cluster; medians. Cluster start-up took {setup:.1f} s.",
            f"dask_executor / get_executor throughput, round by round: {median(ratio):.2f}x.",
        ],
        raw={name: values for name, values in samples.items()},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer tasks and rounds")
    args = parser.parse_args()
    t0 = time.perf_counter()
    section = run(args.quick)
    print(section.title)
    print(f"{'':34}{section.columns[1]:>12}{section.columns[2]:>12}")
    for name, submit_us, rate in section.rows:
        print(f"{name:34}{submit_us:>12,.1f}{rate:>12,}")
    for note in section.notes:
        print(note)
    print(f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    sys.exit(main())
