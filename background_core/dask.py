"""Run a pool's tasks on a Dask cluster: ``Background(executor=dask_executor(client))``.

Needs ``pip install 'background[dask]'``. `DaskExecutor` sends each task to the cluster
by its import path (see `run_by_path`), so the user's keyword arguments never meet
``Client.submit``'s own options, and every submission is a fresh task (``pure=False``:
identical calls both run). Each outcome reaches the returned `concurrent.futures.Future`:
the result, the task's exception, or a `ClusterError` when the cluster lost or dropped the
task; nothing is left pending. A worker announces when it starts a task (a Dask event),
so ``running()`` is true and ``cancel()`` refuses from then on; until the announcement
arrives, a cancelled task may still run, its result dropped (cancelling is best-effort).

Delivery is at least once: a worker that dies mid-task makes the scheduler run the task
again elsewhere.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import os
import pickle
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future
from concurrent.futures._base import CANCELLED
from queue import SimpleQueue
from typing import Any

import distributed
from distributed.comm.addressing import parse_address

from ._dask_reports import TOPIC, listen, scheduler_id
from ._errors import ClusterError
from ._remote import remote_call, run_by_path

__all__ = ("DaskExecutor", "check_address", "dask_executor")

Outcome = tuple["ClusterFuture", object, "BaseException | None"]

CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a scheduler to answer when the executor connects by address."""

RETRY_AFTER = 2.0
"""Seconds during which submissions fail at once after a failed connection attempt."""


def check_address(address: object, label: str = "scheduler address") -> str:
    """Return `address` if it looks like ``"tcp://host:port"``; raise TypeError or ValueError."""
    if not isinstance(address, str):
        raise TypeError(f"{label} must be a str such as 'tcp://127.0.0.1:8786', got {address!r}")
    try:
        _, location = parse_address(address, strict=True)
    except ValueError:
        location = ""
    if not location:
        raise ValueError(
            f"{label} must be a scheduler address such as 'tcp://127.0.0.1:8786', got {address!r}"
        )
    return address


class Arguments(bytes):
    """A task's pickled arguments, whose ``repr`` and ``str`` hide them from any log."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<task arguments: {len(self)} bytes>"

    __str__ = __repr__


def _run_on_worker(topic: str, key: str, path: str, payload: bytes) -> Any:
    """What a Dask worker runs: announce the start, then the task by its import path."""
    distributed.get_worker().log_event(topic, key)
    args, kwargs = pickle.loads(payload)
    return run_by_path(path, args, kwargs)


class ClusterFuture(Future[Any]):
    """A task on the cluster. ``cancel()`` succeeds only before a worker started it."""

    def __init__(self, executor: DaskExecutor, key: str) -> None:
        super().__init__()
        self.key = key
        self._executor = executor
        self._dask: distributed.Future[Any] | None = None

    def cancel(self) -> bool:
        """Cancel the task unless a worker started it (or it finished); True if cancelled.

        A worker's start notice takes a moment to arrive: a task that started within
        that moment can still be cancelled here, and then runs with its result dropped.
        """
        executor = self._executor
        with executor._lock:
            if self.running() or (self.done() and not self.cancelled()):
                return False
            # Out of `_pending`, no start notice or outcome can touch it any more.
            executor._pending.pop(self.key, None)
            dask_future, self._dask = self._dask, None
            if executor._closed:
                executor._outcomes.put(None)  # the relay thread may be done now
        # Outside the lock: the done-callbacks run now, and may take locks of their own.
        if not super().cancel():
            return False
        with self._condition:  # wake wait() and as_completed() now, as a worker would
            if self._state == CANCELLED:
                self.set_running_or_notify_cancel()
        if dask_future is not None:
            client = dask_future.client
            client.loop.add_callback(client.cancel, [dask_future], asynchronous=True)
        return True


class DaskExecutor(Executor):
    """A `concurrent.futures.Executor` that runs tasks on a Dask cluster.

    Made by `dask_executor`. Thread-safe. See the module's docstring for the guarantees.
    """

    def __init__(
        self, client: distributed.Client | str, *, connect_timeout: float = CONNECT_TIMEOUT
    ) -> None:
        if isinstance(client, str):
            self._address: str | None = check_address(client)
            self._client: distributed.Client | None = None
        elif isinstance(client, distributed.Client):
            if client.asynchronous:
                raise TypeError(
                    "dask_executor() needs a synchronous distributed.Client; "
                    "create it without asynchronous=True"
                )
            self._address = None
            self._client = client
        else:
            raise TypeError(
                "dask_executor() takes a distributed.Client or a scheduler address such as "
                f"'tcp://127.0.0.1:8786', got {type(client).__name__}"
            )
        self._connect_timeout = connect_timeout
        # Unique across clients, cheaper than a uuid per task: this executor's id, a count.
        self._keys = (f"{uuid.uuid4().hex}-{n}" for n in itertools.count())
        self._pid = os.getpid()
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
        self._connecting: threading.Event | None = None
        self._failure: tuple[float, str] | None = None  # until when, and what failed
        if self._address is not None:
            self._client = None  # a forked child connects again

    @property
    def client(self) -> distributed.Client:
        """The Dask client; connects first when the executor was given an address.

        Raises:
            ClusterError: No scheduler answered at the address within the connect timeout,
                or (for a few seconds after that) no attempt is made again yet.
        """
        return self._connect()

    def _connect(self) -> distributed.Client:
        """The client, connecting outside the lock: one thread connects, others wait."""
        deadline = time.monotonic() + self._connect_timeout
        while True:
            with self._lock:
                if self._pid != os.getpid() and self._address is None:
                    raise ClusterError(
                        "this dask_executor's Client was created in another process (before "
                        "a fork): create the Client in the process that submits, or pass "
                        "dask_executor() the scheduler's address to connect there."
                    )
                if self._client is not None:
                    self._start_relay()
                    return self._client
                if self._failure is not None and time.monotonic() < self._failure[0]:
                    raise ClusterError(self._failure[1])
                connecting = self._connecting
                if connecting is None:
                    connecting = self._connecting = threading.Event()
                    break
            if not connecting.wait(max(0.0, deadline - time.monotonic())):
                raise ClusterError(self._no_scheduler("still connecting"))
        failure: ClusterError | None = None
        client: distributed.Client | None = None
        try:
            client = distributed.Client(
                self._address, timeout=self._connect_timeout, set_as_default=False
            )
        except OSError as error:
            failure = ClusterError(self._no_scheduler(str(error)))
        finally:
            with self._lock:
                self._connecting = None
                self._pid = os.getpid()
                if client is not None:
                    self._client, self._failure = client, None
                elif failure is not None:
                    self._failure = (time.monotonic() + RETRY_AFTER, str(failure))
            connecting.set()
        if failure is not None:
            raise failure
        return self._connect()

    def _no_scheduler(self, why: str) -> str:
        return (
            f"no Dask scheduler answered at {self._address} within {self._connect_timeout:g} s "
            f"({why}). Start one with `dask scheduler --host 127.0.0.1` and workers with "
            "`dask worker <address> --host 127.0.0.1`, or fix the address."
        )

    def _start_relay(self) -> None:
        if self._relay is None:
            self._relay = threading.Thread(
                target=self._resolve_outcomes, name="background-dask-relay", daemon=True
            )
            self._relay.start()

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
        try:
            payload = Arguments(pickle.dumps((args, kwargs), protocol=5))
        except Exception as error:
            raise TypeError(
                f"the arguments of task {path!r} cannot be pickled ({error}), so they cannot "
                "travel to the cluster: pass plain data (numbers, strings, lists, dicts, "
                "dataclasses) instead."
            ) from None
        if self._closed:
            raise RuntimeError("cannot submit to a DaskExecutor after its shutdown()")
        client = self._connect()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a DaskExecutor after its shutdown()")
            loop = client.loop
            if client.status != "running" or loop is None:
                raise ClusterError(_not_running(client, path))
            if self._subscribed is None or self._subscribed != scheduler_id(client):
                # First use, or the client reconnected to a new scheduler: subscribe there
                # before the task is sent, so its start report reaches us.
                self._subscribed = listen(client, self)
            key = f"{path.rpartition(':')[2]}-{next(self._keys)}"
            future = ClusterFuture(self, key)
            self._pending[key] = future
        try:
            dask_future = client.submit(
                _run_on_worker, TOPIC, key, path, payload, key=key, pure=False
            )
        except BaseException:
            with self._lock:
                self._pending.pop(key, None)
            raise
        with self._lock:
            kept = self._pending.get(key) is future
            if kept:
                future._dask = dask_future
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

    def _on_started(self, key: str) -> None:
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
            future._dask = None
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
        with self._lock:
            client = None  # a client given to dask_executor stays open: it is the user's
            if self._address is not None:
                client, self._client = self._client, None
            left = list(self._pending.values()) if client is not None else []
        if client is not None:
            # Closing cancels the client's futures: the relay thread resolves them with
            # ClusterError. Whatever it could not resolve by then fails here.
            client.close(timeout=self._connect_timeout)
            concurrent.futures.wait(left, timeout=min(self._connect_timeout, CLOSE_GRACE))
            for future in left:
                self._resolve(future, None, _closed_error(future))
        self._outcomes.put(None)  # wakes the relay thread to see that it may end
        relay = self._relay
        if wait and relay is not None and relay is not threading.current_thread():
            relay.join(timeout=self._connect_timeout)

    def _after_fork(self) -> None:
        self._reset()

    def __repr__(self) -> str:
        where = self._address or repr(self._client)
        return f"<DaskExecutor {where}{' closed' if self._closed else ''}>"


CLOSE_GRACE = 2.0
"""Seconds shutdown waits for the client's own cancellations after closing it."""

_executors: weakref.WeakSet[DaskExecutor] = weakref.WeakSet()


def _after_fork() -> None:
    # The locks may have been held by another thread at the fork: made anew in the child.
    for executor in list(_executors):
        executor._after_fork()


os.register_at_fork(after_in_child=_after_fork)


def _not_running(client: distributed.Client, path: str) -> str:
    if client.status == "connecting":
        return (
            f"the Dask client lost its scheduler and is reconnecting, so task {path!r} was "
            "not sent: submit it again once the scheduler is back (the client gives up after "
            "its connect timeout and closes)."
        )
    return (
        f"the Dask client is {client.status}, so task {path!r} cannot be sent: "
        "keep the client open while the pool runs."
    )


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
