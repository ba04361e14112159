"""Dask's own threaded scheduler on a `Background` pool: code that takes any
`ThreadPoolExecutor` (``dask.threaded.get(..., pool=...)``) takes ours."""

from __future__ import annotations

import operator

import dask.threaded

from background_core import Background
from tests.helpers import thread_name


def test_dasks_threaded_scheduler_runs_on_the_pool() -> None:
    with Background(2, name="dask-threads") as pool:
        graph = {"x": 1, "y": (operator.add, "x", 1), "who": (thread_name,)}
        assert dask.threaded.get(graph, "y", pool=pool) == 2
        assert dask.threaded.get(graph, "who", pool=pool).startswith("background-dask-threads-")
        pool.workers = 3
        assert pool._max_workers == 3  # what Dask sizes its work by: our `workers`
