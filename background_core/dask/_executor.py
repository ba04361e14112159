"""`DaskExecutor`: a `concurrent.futures.Executor` that runs tasks on a Dask cluster.

It sends each task to the cluster by its import path (see `run_by_path`), so the user's
keyword arguments never meet ``Client.submit``'s own options, and every submission is a
fresh task (``pure=False``: identical calls both run). Each outcome reaches the returned
`concurrent.futures.Future`: the result, the task's exception, or a `ClusterError` when
the cluster lost or dropped the task; nothing is left pending. A worker announces when it
starts a task (see `_events`), so ``running()`` is true and ``cancel()`` refuses from then
on; until the announcement arrives, a cancelled task may still run, its result dropped
(cancelling is best-effort).

Delivery is at least once: a worker that dies mid-task makes the scheduler run the task
again elsewhere.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import os
import threading
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future
from queue import SimpleQueue
from typing import Any

import distributed

from .._errors import ClusterError
from .._remote import remote_call
from ._connection import CONNECT_TIMEOUT, Connection, not_running
from ._events import TOPIC, listen, scheduler_id
from ._future import ClusterFuture
from ._worker import pack_arguments, run_on_worker

Outcome = tuple["ClusterFuture", object, "BaseException | None"]

CLOSE_GRACE = 2.0
"""Seconds shutdown waits for the client's own cancellations after closing it."""


class DaskExecutor(Executor):
    """A `concurrent.futures.Executor` that runs tasks on a Dask cluster.

    Made by `dask_executor`. Thread-safe. See the module's docstring for the guarantees.
    """

    def __init__(
        self, client: distributed.Client | str, *, connect_timeout: float = CONNECT_TIMEOUT
    ) -> None:
        self._connection = Connection(client, connect_timeout)
        # Unique across clients, cheaper than a uuid per task: this executor's id, a count.
        self._keys = (f"{uuid.uuid4().hex}-{n}" for n in itertools.count())
        self._closed = False
        self._reset()
        _executors.add(self)

    def _reset(self) -> None:
        """The per-process state: made at creation, made again in a forked child."""
        self._lock = threading.RLock()
        self._pending: dict[str, ClusterFuture] = {}
        self._outcomes: SimpleQueue[Outcome | None] = SimpleQueue()
        self._relay: threading.Thread | None = None
        self._unwatched: list[tuple[ClusterFuture, distributed.Future[Any]]] = []
        self._subscribed: object = None  # the scheduler whose start reports we get
        self._connection.reset()

    @property
    def client(self) -> distributed.Client:
        """The Dask client; connects first when the executor was given an address.

        Raises:
            ClusterError: No scheduler answered at the address within the connect timeout,
                or (for a few seconds after that) no attempt is made again yet.
        """
        return self._connect()

    def _connect(self) -> distributed.Client:
        client = self._connection.client()
        with self._lock:
            if self._relay is None:
                self._relay = threading.Thread(
                    target=self._resolve_outcomes, name="background-dask-relay", daemon=True
                )
                self._relay.start()
        return client

    # -- submitting --------------------------------------------------------------------

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` on the cluster; return a Future at once.

        Raises:
            TaskNotImportable: `fn` cannot be imported by name on a worker.
            TypeError: An argument cannot be pickled.
            ClusterError: No scheduler answered (when connecting by address), or the
                client is not connected.
            RuntimeError: The executor was shut down.
        """
        path, args, kwargs = remote_call(fn, args, kwargs)
        payload = pack_arguments(path, args, kwargs)
        if self._closed:
            raise RuntimeError("cannot submit to a DaskExecutor after its shutdown()")
        client = self._connect()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a DaskExecutor after its shutdown()")
            loop = client.loop
            if client.status != "running" or loop is None:
                raise ClusterError(not_running(client, path))
            if self._subscribed is None or self._subscribed != scheduler_id(client):
                # First use, or the client reconnected to a new scheduler: subscribe there
                # before the task is sent, so its start report reaches us.
                self._subscribed = listen(client, self)
            key = f"{path.rpartition(':')[2]}-{next(self._keys)}"
            future = ClusterFuture(self, key)
            self._pending[key] = future
        try:
            dask_future = client.submit(
                run_on_worker, TOPIC, key, path, payload, key=key, pure=False
            )
        except BaseException:
            with self._lock:
                self._pending.pop(key, None)
            raise
        with self._lock:
            kept = self._pending.get(key) is future
            if kept:
                future.dask_future = dask_future
                self._unwatched.append((future, dask_future))
                wake = len(self._unwatched) == 1
        if not kept:  # cancelled during client.submit: the cluster must not keep it
            loop.add_callback(client.cancel, [dask_future], asynchronous=True)
        elif wake:  # one wake-up of the loop for a burst of submissions, not one each
            loop.add_callback(self._watch_new, client)
        return future

    async def _watch_new(self, client: distributed.Client) -> None:
        """On the client's event loop: watch the tasks submitted since the last call."""
        with self._lock:
            batch, self._unwatched = self._unwatched, []
        await asyncio.gather(*(self._watch(client, d, f) for f, d in batch))

    async def _watch(
        self,
        client: distributed.Client,
        dask_future: distributed.Future[Any],
        future: ClusterFuture,
    ) -> None:
        """On the client's event loop: wait for the outcome, hand it to the relay thread."""
        result: object = None
        error: BaseException | None = None
        try:
            result = await client.gather(dask_future, asynchronous=True)
        except (CancelledError, asyncio.CancelledError) as cancelled:
            # FuturesCancelledError says why: "scheduler-connection-lost", "client-close"...
            error = ClusterError(
                f"the cluster dropped the task before it reported a result "
                f"({cancelled or 'cancelled'}); it may or may not have run. This happens "
                "when the connection to the scheduler is lost, the client closes, or "
                "somebody cancels the task's key."
            )
        except BaseException as exc:  # the task's own exception, or the cluster's
            error = exc
        self._outcomes.put((future, result, error))

    def on_started(self, key: str) -> None:
        """On the client's event loop: a worker started the task with this key."""
        with self._lock:
            future = self._pending.get(key)
            if future is not None and not future.running() and not future.done():
                future.set_running_or_notify_cancel()

    def _resolve_outcomes(self) -> None:
        """The relay thread: resolve futures here, so their callbacks never block the loop.

        Ends once the executor is shut down and no task is pending (a ``None`` wakes it).
        """
        outcomes = self._outcomes
        while True:
            outcome = outcomes.get()
            if outcome is not None:
                self._resolve(*outcome)
            del outcome
            with self._lock:
                if self._closed and not self._pending:
                    return

    def _resolve(self, future: ClusterFuture, result: object, error: BaseException | None) -> None:
        with self._lock:
            if self._pending.pop(future.key, None) is None:
                return  # cancelled, or resolved already
            future.dask_future = None
            if not future.running():
                future.set_running_or_notify_cancel()
        # Outside the lock: done-callbacks run here and may take their time.
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)

    # -- stopping ----------------------------------------------------------------------

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking tasks. Idempotent.

        Args:
            wait: Wait until every task sent here finished.
            cancel_futures: Cancel the tasks that no worker started yet.

        Tasks a worker is known to run are never cancelled. With a client this executor
        made from an address, the client is then closed, and the futures of tasks still
        on the cluster fail with `ClusterError` (the tasks may still run there). A client
        given to `dask_executor` is left open: it is yours.
        """
        with self._lock:
            self._closed = True
            pending = list(self._pending.values())
        if cancel_futures:
            for future in pending:
                future.cancel()
        if wait:
            concurrent.futures.wait(pending)
        client = self._connection.take_owned()
        if client is not None:
            with self._lock:
                left = list(self._pending.values())
            # Closing cancels the client's futures: the relay thread resolves them with
            # ClusterError. Whatever it could not resolve by then fails here.
            client.close(timeout=self._connection.timeout)
            concurrent.futures.wait(left, timeout=min(self._connection.timeout, CLOSE_GRACE))
            for future in left:
                self._resolve(future, None, _closed_error(future))
        self._outcomes.put(None)  # wakes the relay thread to see that it may end
        relay = self._relay
        if wait and relay is not None and relay is not threading.current_thread():
            relay.join(timeout=self._connection.timeout)

    def withdraw(self, future: ClusterFuture) -> bool:
        """Stop waiting for `future`'s task unless a worker started it or it finished.

        What `ClusterFuture.cancel` asks first: once withdrawn, no start notice or outcome
        touches the future any more. False if it is too late.
        """
        with self._lock:
            if future.running() or (future.done() and not future.cancelled()):
                return False
            self._pending.pop(future.key, None)
            if self._closed:
                self._outcomes.put(None)  # the relay thread may be done now
        return True

    def __repr__(self) -> str:
        return f"<DaskExecutor {self._connection!r}{' closed' if self._closed else ''}>"


_executors: weakref.WeakSet[DaskExecutor] = weakref.WeakSet()


def _after_fork() -> None:
    # The locks may have been held by another thread at the fork: made anew in the child.
    for executor in list(_executors):
        executor._reset()


os.register_at_fork(after_in_child=_after_fork)


def _closed_error(future: ClusterFuture) -> ClusterError:
    return ClusterError(
        f"the Dask client closed before task {future.key!r} finished; it may still "
        "run on the cluster, and its result is dropped."
    )


def dask_executor(
    client: distributed.Client | str, *, connect_timeout: float = CONNECT_TIMEOUT
) -> DaskExecutor:
    """An executor that runs a pool's tasks on a Dask cluster.

    ``Background(executor=dask_executor(client))`` sends every task of the pool there.

    Args:
        client: A `distributed.Client` (yours: never closed here), or a scheduler's
            address such as ``"tcp://127.0.0.1:8786"``: the executor then connects on
            first use, in the process that submits (so after a fork too), and closes
            its client at `shutdown`.
        connect_timeout: Seconds to wait for the scheduler when connecting by address.

    Raises:
        TypeError, ValueError: `client` is neither a synchronous Client nor an address.
    """
    return DaskExecutor(client, connect_timeout=connect_timeout)
