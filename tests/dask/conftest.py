"""A Dask cluster on 127.0.0.1 for the tests of `background_core.dask`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from distributed import Client, LocalCluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Two worker processes (spawned, one thread each) and a scheduler, on 127.0.0.1."""
    with LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as local:
        yield local


@pytest.fixture(scope="module")
def client(cluster: LocalCluster) -> Iterator[Client]:
    """The test process's client of `cluster`."""
    with Client(cluster, set_as_default=False) as connected:
        yield connected
