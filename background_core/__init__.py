"""The engine of `background`: thread pools whose tasks return `concurrent.futures.Future`.

`Background` is a `concurrent.futures.ThreadPoolExecutor` with a drain deadline, reports
by name, bounded queues, context capture and ``async def`` tasks. Framework-agnostic: this
package imports no web framework.
"""

from __future__ import annotations

from ._context import Capturer as Capturer
from ._context import add_context_capturer as add_context_capturer
from ._context import remove_context_capturer as remove_context_capturer
from ._errors import BackgroundError as BackgroundError
from ._errors import BrokenPool as BrokenPool
from ._errors import ClusterError as ClusterError
from ._errors import PoolClosed as PoolClosed
from ._errors import QueueFull as QueueFull
from ._errors import TaskNotImportable as TaskNotImportable
from ._exit import install_sigterm_handler as install_sigterm_handler
from ._options import ErrorHook as ErrorHook
from ._options import FutureCallback as FutureCallback
from ._options import OnFull as OnFull
from ._options import PoolOptions as PoolOptions
from ._options import check_count as check_count
from ._options import check_option as check_option
from ._options import check_options as check_options
from ._options import check_workers as check_workers
from ._options import usable_cpus as usable_cpus
from ._plan import TaskOptions as TaskOptions
from ._plan import task_options as task_options
from ._pool import Background as Background
from ._pool import open_pools as open_pools
from ._remote import run_by_path as run_by_path
from ._report import DrainReport as DrainReport
from ._report import Stats as Stats
from ._report import TaskInfo as TaskInfo
from ._report import log_failure as log_failure
from ._report import log_fields as log_fields
from ._servers import warn_if_unguarded as warn_if_unguarded
from ._task import AsyncTask as AsyncTask
from ._task import Submitter as Submitter
from ._task import Task as Task
from ._task import TaskDecorator as TaskDecorator
from ._task import TaskMaker as TaskMaker
from ._task import TaskPool as TaskPool
from ._version import __version__ as __version__

__all__ = (  # noqa: RUF022  (grouped by who needs them, sorted within a group)
    # Pools and tasks.
    "AsyncTask",
    "Background",
    "Task",
    "TaskDecorator",
    "TaskOptions",
    # Submitting with options: ``bg.using(delay=60).submit(fn)``.
    "Submitter",
    # Reports.
    "DrainReport",
    "Stats",
    "TaskInfo",
    # Errors.
    "BackgroundError",
    "BrokenPool",
    "ClusterError",
    "PoolClosed",
    "QueueFull",
    "TaskNotImportable",
    # Process-wide.
    "add_context_capturer",
    "install_sigterm_handler",
    "open_pools",
    "remove_context_capturer",
    "run_by_path",
    # Types in public signatures.
    "Capturer",
    "ErrorHook",
    "FutureCallback",
    "OnFull",
    "PoolOptions",
    # Hooks for adapters (Flask, FastAPI, ...): see docs/adapters.md.
    "TaskMaker",
    "TaskPool",
    "check_count",
    "check_option",
    "check_options",
    "check_workers",
    "log_failure",
    "log_fields",
    "task_options",
    "usable_cpus",
    "warn_if_unguarded",
)
