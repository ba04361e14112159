"""`BackgroundBackend`: Django's tasks run on a `background_core.Background` pool of this
process.

Django makes one backend object per thread (``task_backends`` is thread-local), so the
pool and the results are not the backend's: they belong to its configuration, one per
alias and ``OPTIONS`` in this process, and every thread's backend object shares them.
"""

from __future__ import annotations

import datetime
import os
import secrets
import threading
from collections.abc import Iterable
from inspect import iscoroutinefunction
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils import timezone
from django.utils.crypto import get_random_string

from background_core import Background, task_options

from ._compat import BaseTaskBackend, Task, TaskResult, TaskResultStatus
from ._options import Config, read_options
from ._results import Results
from ._run import ASGIREF_CONTEXTVARS, TaskRun, failure_hook
from ._settings import unread_settings


class BackgroundBackend(BaseTaskBackend):  # type: ignore[misc]
    """Runs Django's tasks in background threads of this process.

    ``TASKS = {"default": {"BACKEND": "django_background.BackgroundBackend", "OPTIONS":
    {"workers": 8}}}``. ``OPTIONS`` takes `background_core.Background`'s ``workers``,
    ``max_queue`` (10,000), ``on_full`` ("raise"), ``block_timeout`` (1.0),
    ``drain_timeout`` (25.0) and ``eager`` (False: True runs each task inline, for tests),
    and ``results``: how many results `get_result` can find (10,000; beyond that the
    oldest finished ones are forgotten). A wrong one is reported by ``manage.py check``
    and raised as `ImproperlyConfigured` by the first `enqueue`, naming its key.

    Results live in the process that ran their tasks. Tasks run in submission order
    whatever their queue (``QUEUES``, by default only "default"); ``priority`` is not
    supported. Thread-safe.
    """

    supports_defer = True  # run_after: the task waits on the pool's timer, on no thread
    supports_async_task = True  # async def: on the pool's event loop
    supports_get_result = True  # for results of this process
    supports_priority = False

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self._config, self._problems = read_options(alias, self.options)

    @property
    def pool(self) -> Background:
        """The pool that runs this backend's tasks, made at first use (its ``stats()``,
        ``drain()``, ``shutdown()``).

        Raises:
            ImproperlyConfigured: ``OPTIONS`` has a wrong key or value; the message names it.
        """
        return self._shared().pool

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        """Submit `task` to the pool; return its result, READY (or further along).

        Raises:
            QueueFull: ``max_queue`` tasks wait (with ``on_full="raise"``, the default);
                `django_background.QueueFullMiddleware` answers it with 503.
            PoolClosed: The pool was shut down (the process is exiting).
            ImproperlyConfigured: ``OPTIONS`` has a wrong key or value.
        """
        self.validate_task(task)
        shared = self._shared()
        result = TaskResult(
            task=task,
            id=secrets.token_hex(16),  # 32 characters, as Django's own; ten times cheaper
            status=TaskResultStatus.READY,
            enqueued_at=timezone.now(),
            started_at=None,
            last_attempted_at=None,
            finished_at=None,
            args=args,
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        run = TaskRun(result, shared.results, type(self), shared.worker_id)
        is_async = iscoroutinefunction(task.func)
        options = None if task.run_after is None else task_options(run_at=_aware(task.run_after))
        shared.results.add(result)
        try:
            future = shared.pool.submit_task(
                task.module_path,
                run.arun if is_async else run.run,
                (),
                {},
                is_async=is_async,
                options=options,
            )
        except BaseException:
            shared.results.discard(result)
            raise
        shared.results.submitted(result, future)
        run.announce()
        return shared.results.snapshot(result)

    def get_result(self, result_id: str) -> TaskResult:
        """A copy of the result `result_id` as it is now, if this process holds it.

        Raises:
            TaskResultDoesNotExist: No task of this process had that id, or its result
                was forgotten (see ``results``).
        """
        return self._shared().results.get(result_id)

    async def aget_result(self, result_id: str) -> TaskResult:
        """`get_result`: a lookup in memory, so no thread is needed."""
        return self.get_result(result_id)

    def check(self, **kwargs: Any) -> Iterable[checks.CheckMessage]:
        """Django's system check of this backend: one error per wrong ``OPTIONS`` key, and
        a warning if ``BACKGROUND_SIGTERM_HANDLER`` would go unread."""
        errors = [checks.Error(problem, id="django_background.E001") for problem in self._problems]
        unread = [checks.Warning(text, id="django_background.W001") for text in unread_settings()]
        return [*errors, *unread]

    def _shared(self) -> Shared:
        if self._config is None:
            raise ImproperlyConfigured("; ".join(self._problems))
        return shared_for(self._config)


def _aware(when: datetime.datetime) -> datetime.datetime:
    """`run_after` as the engine takes it: aware. Django accepts a naive one only with
    ``USE_TZ = False``, where it means this process's local time."""
    return when if timezone.is_aware(when) else when.astimezone()


class Shared:
    """What every backend object of one configuration shares: the pool, made at first
    use, the results and the worker id recorded in them."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.results = Results(config.results)
        self.worker_id = get_random_string(32)
        self._pool: Background | None = None
        self._lock = threading.Lock()

    @property
    def pool(self) -> Background:
        with self._lock:
            if self._pool is None:
                options = self.config.pool_options()
                options["on_error"] = failure_hook(self.results, options["name"])
                options["exclude_contextvars"] = ASGIREF_CONTEXTVARS
                self._pool = Background(**options)
            return self._pool

    def close(self) -> None:
        """Shut the pool down without waiting: what runs finishes, what waits is cancelled."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def made(self) -> Background | None:
        """The pool if it was made (by a first use, or a server's startup), else None."""
        with self._lock:
            return self._pool

    def forget(self, pool: Background) -> None:
        """Make a new pool at the next use, if `pool`, shut down, is still this one's: an
        ASGI lifespan may start again in the same process (tests). Results are kept."""
        with self._lock:
            if self._pool is pool:
                self._pool = None


_shared: dict[Config, Shared] = {}
_shared_lock = threading.Lock()


def shared_for(config: Config) -> Shared:
    """The pool and results of `config`, made on first use."""
    with _shared_lock:
        found = _shared.get(config)
        if found is None:
            found = _shared[config] = Shared(config)
        return found


def every_shared() -> list[Shared]:
    """What the backends of this process share, one per configuration used so far."""
    with _shared_lock:
        return list(_shared.values())


def _settings_changed(*, setting: str, **kwargs: object) -> None:
    """``override_settings(TASKS=...)`` (tests) starts afresh, as Django's backends do: the
    pools of the settings before are shut down (what runs finishes, what waits is
    cancelled, its result FAILED), their results forgotten."""
    if setting == "TASKS":
        with _shared_lock:
            gone = list(_shared.values())
            _shared.clear()
        for shared in gone:
            shared.close()


def _start_afresh_in_child() -> None:
    """A forked child (gunicorn's workers under ``--preload``) starts with no pool and no
    result of its parent's: its pools start empty (the engine's rule), and results of
    tasks that will never run in it would never change."""
    global _shared_lock
    _shared_lock = threading.Lock()  # another thread of the parent may have held it
    _shared.clear()


setting_changed.connect(_settings_changed, dispatch_uid="django_background.settings_changed")
os.register_at_fork(after_in_child=_start_afresh_in_child)
