"""One contender, measured in a process of its own; prints one JSON object.

Self-contained on purpose: the original ``background`` package runs this file from its own
venv with ``python -I``, where neither our checkout nor the ``bench`` package is importable.

    python bench/micro_worker.py CONTENDER [--workers 2] [--tasks 20000] [--memory queued|kept]
        [--rate-tasks N]
    python bench/micro_worker.py background|ThreadPoolExecutor|floor --figures queued,live,...

Figures (each from a fresh pool):
- ``submit_ns``: the caller's time per submission of a no-op while every worker is held
  busy, so nothing but submission is timed (the queue grows to ``tasks``).
- ``tasks_per_s``: no-op tasks per second, from the first submission until the pool has
  finished them all and stopped (over ``--rate-tasks`` tasks if given, else ``tasks``).
- ``--memory queued``: resident bytes per task while ``tasks`` tasks wait behind a blocked
  pool; ``--memory kept``: bytes (traced) per finished task that the pool still holds.

``--figures`` (``bench.scale``: ours, the stdlib's pool and ``floor``, a `SimpleQueue` whose
consumer threads call what they get), one fresh pool each, in the order given:
- ``queued``: ``queued_ns``, as ``submit_ns``; its backlog then runs, untimed (with
  ``--abandon``, the last figure: the process ends at once, as ``--memory queued``).
- ``live``: ``live_ns``, the caller's time per submission while the workers run the backlog,
  and ``fire_per_s``, as ``tasks_per_s``: from the same first submission until
  ``shutdown()`` has returned (no future kept).
- ``wait``, ``as_completed``: ``wait_per_s``, ``as_completed_per_s``: keeping every future,
  until ``concurrent.futures.wait(fs)`` returns, or ``as_completed(fs)`` has yielded them all.
- ``done_wait``: ``done_wait_ms``, one ``concurrent.futures.wait(fs)`` over ``tasks`` futures
  already done (the pool has been shut down).
- ``cancel``: ``cancel_ms``, one ``shutdown(wait=False, cancel_futures=True)`` over ``tasks``
  queued futures the caller keeps, every worker held busy.

A delayed contender's tasks wait an hour on the pool's timer, not in the queue: it has no
worker to hold and nothing to run, so it gives ``submit_ns`` and ``--memory queued`` only,
and its pool is shut down with ``cancel_futures=True``. ``source`` (our contenders) is the
directory ``background_core`` was imported from, to check which tree was measured.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import Future, as_completed, wait
from queue import SimpleQueue
from typing import Any, NamedTuple

Submit = Callable[..., Any]
PAGE = os.sysconf("SC_PAGE_SIZE")
DELAY = 3600.0  # seconds: no delayed task falls due while it is measured


def noop() -> None:
    pass


@contextlib.contextmanager
def ours(workers: int) -> Iterator[tuple[Submit, Callable[[], None]]]:
    from background_core import Background

    pool = Background(workers, name="bench", drain_timeout=300)
    yield pool.submit, pool.shutdown


@contextlib.contextmanager
def ours_flask(workers: int) -> Iterator[tuple[Submit, Callable[[], None]]]:
    from flask import Flask

    from flask_background import Background

    app = Flask("bench")
    # No bound, as the others have none: the figure is the cost of a submission.
    app.config.update(
        BACKGROUND_WORKERS=workers, BACKGROUND_DRAIN_TIMEOUT=300, BACKGROUND_MAX_QUEUE=None
    )
    extension = Background(app)
    with app.test_request_context("/"):
        pool = app.extensions["background"]
        yield extension.submit, pool.shutdown  # the extension's submit, as a handler calls it


@contextlib.contextmanager
def stdlib(workers: int) -> Iterator[tuple[Submit, Callable[[], None]]]:
    from concurrent.futures import ThreadPoolExecutor

    executor = ThreadPoolExecutor(max_workers=workers)
    yield executor.submit, lambda: executor.shutdown(wait=True)


@contextlib.contextmanager
def flask_executor(workers: int) -> Iterator[tuple[Submit, Callable[[], None]]]:
    from flask import Flask
    from flask_executor import Executor

    app = Flask("bench")
    app.config.update(EXECUTOR_TYPE="thread", EXECUTOR_MAX_WORKERS=workers)
    executor = Executor(app)
    with app.test_request_context("/"):
        yield executor.submit, lambda: executor.shutdown(wait=True)


@contextlib.contextmanager
def original(workers: int) -> Iterator[tuple[Submit, Callable[[], None]]]:
    from concurrent.futures import ThreadPoolExecutor

    import background  # the original 0.2.1, from its own venv

    assert not hasattr(background, "default_pool"), "this is our package, not the original"
    background.n = workers
    background.pool = ThreadPoolExecutor(max_workers=workers)  # fresh, as for the others
    background.results.clear()
    yield background.run, lambda: background.pool.shutdown(wait=True)


@contextlib.contextmanager
def ours_planned(workers: int) -> Iterator[tuple[Submit, Callable[[], None]]]:
    from background_core import Background

    pool = Background(workers, name="bench", drain_timeout=300)
    # Options that do not delay: the task takes the planned path, and succeeds at once.
    yield pool.using(retries=3).submit, pool.shutdown


@contextlib.contextmanager
def ours_delayed(workers: int) -> Iterator[tuple[Submit, Callable[[], None]]]:
    from background_core import Background

    pool = Background(workers, name="bench", drain_timeout=300)
    yield pool.using(delay=DELAY).submit, lambda: pool.shutdown(cancel_futures=True)


@contextlib.contextmanager
def ours_otel(workers: int) -> Iterator[tuple[Submit, Callable[[], None]]]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from background_core import Background
    from background_core.otel import instrument, uninstrument

    class Dropped(SpanExporter):  # what an exporter costs is the app's, not ours
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Dropped()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    pool = Background(workers, name="bench", drain_timeout=300)
    try:
        yield pool.submit, pool.shutdown
    finally:
        uninstrument()


CONTENDERS = {
    "background": ours,
    "background-otel": ours_otel,
    "background-planned": ours_planned,
    "background-delayed": ours_delayed,
    "background-flask": ours_flask,
    "ThreadPoolExecutor": stdlib,
    "Flask-Executor": flask_executor,
    "original": original,
}


def hold_workers(submit: Submit, workers: int) -> threading.Event:
    """Occupy every worker until the returned event is set."""
    release = threading.Event()
    started = threading.Semaphore(0)

    def hold() -> None:
        started.release()
        release.wait()

    for _ in range(workers):
        submit(hold)
    for _ in range(workers):
        started.acquire()
    return release


# Contenders whose tasks wait on the pool's timer: no worker to hold, nothing to run.
WAITING = {"background-delayed"}


def measure_submit(name: str, workers: int, tasks: int) -> float:
    with CONTENDERS[name](workers) as (submit, finish):
        release = threading.Event() if name in WAITING else hold_workers(submit, workers)
        gc.collect()
        t0 = time.perf_counter_ns()
        for _ in range(tasks):
            submit(noop)
        elapsed = time.perf_counter_ns() - t0
        release.set()
        finish()
    return elapsed / tasks


def measure_throughput(name: str, workers: int, tasks: int) -> float:
    with CONTENDERS[name](workers) as (submit, finish):
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(tasks):
            submit(noop)
        finish()
        return tasks / (time.perf_counter() - t0)


def rss() -> int:
    """Resident set size of this process, in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def measure_queued_memory(name: str, workers: int, tasks: int) -> float:
    """Bytes of resident memory per task while `tasks` wait behind a blocked pool.

    The tasks are never run: the caller prints the figure and ends the process at once.
    """
    with CONTENDERS[name](workers) as (submit, _):
        if name not in WAITING:
            hold_workers(submit, workers)
        gc.collect()
        base = rss()
        for _ in range(tasks):
            submit(noop)
        return (rss() - base) / tasks


def measure_kept_memory(name: str, workers: int, tasks: int) -> float:
    """Bytes per finished task still held: traced growth over a second batch.

    The first batch sets the high-water mark of queues and tables, which stay allocated
    but do not grow again; only what the pool keeps of each task grows over the second.
    """
    with CONTENDERS[name](workers) as (submit, finish):
        tracemalloc.start()
        sizes = []
        for _ in range(2):
            last: Future[Any] | None = None
            for _ in range(tasks):
                last = submit(noop)
            assert last is not None
            last.result(timeout=300)
            del last
            gc.collect()
            sizes.append(tracemalloc.get_traced_memory()[0])
        tracemalloc.stop()
        finish()
    return max(0.0, (sizes[1] - sizes[0]) / tasks)


def measure_queue_put(tasks: int) -> float:
    queue: SimpleQueue[object] = SimpleQueue()
    put = queue.put
    t0 = time.perf_counter_ns()
    for _ in range(tasks):
        put(noop)
    return (time.perf_counter_ns() - t0) / tasks


class Scaled(NamedTuple):
    """A pool as `bench.scale` drives it."""

    submit: Submit
    finish: Callable[[], None]  # runs what is queued, then stops the workers
    cancel: Callable[[], None] | None = None  # cancels what is queued, returns at once


@contextlib.contextmanager
def scaled(name: str, workers: int) -> Iterator[Scaled]:
    """A fresh pool of `name`: ours, the stdlib's, or the floor (`floor`)."""
    if name == "floor":
        yield floor(workers)
        return
    executor: Any
    if name == "background":
        from background_core import Background

        executor = Background(workers, name="bench", drain_timeout=300)
    elif name == "ThreadPoolExecutor":
        from concurrent.futures import ThreadPoolExecutor

        executor = ThreadPoolExecutor(max_workers=workers)
    else:
        raise ValueError(f"no --figures for {name}")
    yield Scaled(
        executor.submit,
        executor.shutdown,
        lambda: executor.shutdown(wait=False, cancel_futures=True),
    )


def floor(workers: int) -> Scaled:
    """The least a pool can do: `SimpleQueue.put` of the function and its arguments (what
    any pool must carry, as the issue's harness did), and threads that get and call. No
    futures, no bookkeeping."""
    queue: SimpleQueue[tuple[Callable[..., object], tuple[Any, ...]] | None] = SimpleQueue()

    def consume() -> None:
        get = queue.get
        while (work := get()) is not None:
            fn, args = work
            fn(*args)

    def submit(fn: Callable[..., object], *args: Any) -> None:
        queue.put((fn, args))

    threads = [threading.Thread(target=consume, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()

    def finish() -> None:
        for _ in threads:
            queue.put(None)
        for thread in threads:
            thread.join()

    return Scaled(submit, finish)


def figure_queued(pool: Scaled, workers: int, tasks: int, abandon: bool) -> float:
    release = hold_workers(pool.submit, workers)
    submit = pool.submit
    gc.collect()
    t0 = time.perf_counter_ns()
    for _ in range(tasks):
        submit(noop)
    elapsed = time.perf_counter_ns() - t0
    if not abandon:  # run, not cancelled: the figure `cancel` times that
        release.set()
        pool.finish()
    return elapsed / tasks


def figure_live(pool: Scaled, tasks: int) -> tuple[float, float]:
    """ns per submission while the workers run, and tasks per second to the end of
    ``shutdown()``: fire-and-forget."""
    submit = pool.submit
    gc.collect()
    t0 = time.perf_counter_ns()
    for _ in range(tasks):
        submit(noop)
    submitted = time.perf_counter_ns()
    pool.finish()
    ended = time.perf_counter_ns()
    return (submitted - t0) / tasks, tasks / (ended - t0) * 1e9


def figure_keep(pool: Scaled, tasks: int, how: str) -> float:
    submit = pool.submit
    gc.collect()
    t0 = time.perf_counter()
    fs = [submit(noop) for _ in range(tasks)]
    if how == "wait":
        wait(fs)
    else:
        for _ in as_completed(fs):
            pass
    elapsed = time.perf_counter() - t0
    pool.finish()
    return tasks / elapsed


def figure_done_wait(pool: Scaled, tasks: int) -> float:
    fs = [pool.submit(noop) for _ in range(tasks)]
    pool.finish()
    gc.collect()
    t0 = time.perf_counter()
    wait(fs)
    return (time.perf_counter() - t0) * 1000


def figure_cancel(pool: Scaled, workers: int, tasks: int) -> float:
    """ms to cancel `tasks` queued futures; the held workers' tasks then end, untimed."""
    assert pool.cancel is not None
    release = hold_workers(pool.submit, workers)
    fs = [pool.submit(noop) for _ in range(tasks)]
    gc.collect()
    t0 = time.perf_counter()
    pool.cancel()
    elapsed = time.perf_counter() - t0
    release.set()
    pool.finish()
    if not all(f.cancelled() for f in fs):
        raise RuntimeError("a queued future was not cancelled")
    return elapsed * 1000


FIGURES = ["queued", "live", "wait", "as_completed", "done_wait", "cancel"]
UNITS = {"queued": "ns", "done_wait": "ms", "cancel": "ms"}
FUTURES = {"wait", "as_completed", "done_wait", "cancel"}  # the floor has none


def measure_figures(name: str, workers: int, tasks: int, figures: list[str], abandon: bool) -> None:
    """Prints each figure of `figures` in one JSON object (see the module's docstring)."""
    result: dict[str, float | str] = {}
    for number, figure in enumerate(figures):
        key = f"{figure}_{UNITS.get(figure, 'per_s')}"  # but live: live_ns and fire_per_s
        with scaled(name, workers) as pool:
            if figure == "queued":
                last = abandon and number == len(figures) - 1
                result[key] = figure_queued(pool, workers, tasks, last)
                if last:
                    print(json.dumps(_with_source(result)))
                    sys.stdout.flush()
                    os._exit(0)  # without running the backlog nor waiting for the workers
            elif figure == "live":
                result["live_ns"], result["fire_per_s"] = figure_live(pool, tasks)
            elif figure in ("wait", "as_completed"):
                result[key] = figure_keep(pool, tasks, figure)
            elif figure == "cancel":
                result[key] = figure_cancel(pool, workers, tasks)
            else:
                result[key] = figure_done_wait(pool, tasks)
        gc.collect()
    print(json.dumps(_with_source(result)))


def _with_source(result: dict[str, float | str]) -> dict[str, float | str]:
    core = sys.modules.get("background_core")
    if core is not None and core.__file__:
        result["source"] = os.path.dirname(core.__file__)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("contender", choices=[*CONTENDERS, "SimpleQueue", "floor"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rate-tasks", type=int, help="tasks for tasks_per_s (default: --tasks)")
    parser.add_argument("--memory", choices=["queued", "kept"], help="measure memory, not time")
    parser.add_argument("--figures", help="comma-separated, in order: " + ",".join(FIGURES))
    parser.add_argument(
        "--abandon", action="store_true", help="a last `queued` figure: exit, run no backlog"
    )
    args = parser.parse_args()
    name, workers, tasks = args.contender, args.workers, args.tasks
    if args.figures is not None:
        figures = args.figures.split(",")
        if not set(figures) <= set(FIGURES) or len(set(figures)) != len(figures):
            parser.error(f"--figures: each once, of {','.join(FIGURES)}")
        if name not in ("background", "ThreadPoolExecutor", "floor"):
            parser.error("--figures: background, ThreadPoolExecutor or floor")
        if name == "floor" and FUTURES & set(figures):
            parser.error(f"the floor has no futures: no {','.join(sorted(FUTURES))}")
        measure_figures(name, workers, tasks, figures, args.abandon)
        return
    if name == "floor":
        parser.error("the floor takes --figures")
    if args.memory == "kept" and name in WAITING:
        parser.error(f"{name}'s tasks never finish here: measure --memory queued")
    result: dict[str, float | str]
    if name == "SimpleQueue":
        result = {"submit_ns": measure_queue_put(tasks)}
    elif args.memory == "queued":  # alone in its process: no freed memory to reuse
        print(json.dumps({"queued_bytes": measure_queued_memory(name, workers, tasks)}))
        sys.stdout.flush()
        os._exit(0)  # without running the queued tasks nor waiting for the held workers
    elif args.memory == "kept":
        result = {"kept_bytes": measure_kept_memory(name, workers, tasks)}
    else:
        result = {"submit_ns": measure_submit(name, workers, tasks)}
        if name not in WAITING:
            result["tasks_per_s"] = measure_throughput(name, workers, args.rate_tasks or tasks)
    print(json.dumps(_with_source(result)))


if __name__ == "__main__":
    sys.exit(main())
