"""Run a pool's tasks on a Dask cluster: ``Background(executor=dask_executor(client))``.

Needs Dask's ``distributed`` (the ``dask`` extra); importing this package without it raises an
ImportError that says so. See `DaskExecutor` for what it guarantees.
"""

from __future__ import annotations

try:
    import distributed as _distributed  # noqa: F401  (the one check that Dask is installed)
except ImportError as missing:
    raise ImportError(
        "background_core.dask needs Dask's distributed: pip install distributed, or install "
        "background with its 'dask' extra (see the README's Install)"
    ) from missing

from ._connection import CONNECT_TIMEOUT as CONNECT_TIMEOUT
from ._connection import RETRY_AFTER as RETRY_AFTER
from ._connection import check_address as check_address
from ._executor import DaskExecutor as DaskExecutor
from ._executor import dask_executor as dask_executor
from ._worker import Arguments as Arguments

__all__ = (
    "CONNECT_TIMEOUT",
    "RETRY_AFTER",
    "Arguments",
    "DaskExecutor",
    "check_address",
    "dask_executor",
)
