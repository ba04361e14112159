"""The engine of `background`: thread pools whose tasks return `concurrent.futures.Future`.

Framework-agnostic: this package imports no web framework. See `Background`.
"""

from __future__ import annotations

from ._context import add_context_capturer as add_context_capturer
from ._context import remove_context_capturer as remove_context_capturer
from ._errors import BackgroundError as BackgroundError
from ._errors import ClusterError as ClusterError
from ._errors import PoolClosed as PoolClosed
from ._errors import QueueFull as QueueFull
from ._errors import TaskNotImportable as TaskNotImportable
from ._exit import install_sigterm_handler as install_sigterm_handler
from ._exit import open_pools as open_pools
from ._pool import Background as Background
from ._pool import PoolOptions as PoolOptions
from ._pool import check_option as check_option
from ._pool import usable_cpus as usable_cpus
from ._remote import run_by_path as run_by_path
from ._report import DrainReport as DrainReport
from ._report import Stats as Stats
from ._report import TaskInfo as TaskInfo
from ._task import AsyncTask as AsyncTask
from ._task import Task as Task
from ._task import TaskDecorator as TaskDecorator
from ._task import TaskMaker as TaskMaker

__all__ = (
    "AsyncTask",
    "Background",
    "BackgroundError",
    "ClusterError",
    "DrainReport",
    "PoolClosed",
    "PoolOptions",
    "QueueFull",
    "Stats",
    "Task",
    "TaskDecorator",
    "TaskInfo",
    "TaskMaker",
    "TaskNotImportable",
    "add_context_capturer",
    "check_option",
    "install_sigterm_handler",
    "open_pools",
    "remove_context_capturer",
    "run_by_path",
    "usable_cpus",
)
