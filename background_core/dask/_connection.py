"""The executor's Dask client: given, or connected on first use from a scheduler address.

Connecting happens outside the lock, by one thread; the others wait for it. A failed
attempt makes submissions fail at once for `RETRY_AFTER` seconds, so a burst of requests
fails together instead of each waiting for the connect timeout. In a forked child, a
connection made from an address is made again; a client given by the user cannot be.
"""

from __future__ import annotations

import os
import threading
import time

import distributed
from distributed.comm.addressing import parse_address

from .._errors import ClusterError

CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a scheduler to answer when the executor connects by address."""

RETRY_AFTER = 2.0
"""Seconds during which submissions fail at once after a failed connection attempt."""


def check_address(address: object, label: str = "scheduler address") -> str:
    """Return `address` if it looks like ``"tcp://host:port"``; raise TypeError or ValueError."""
    if not isinstance(address, str):
        raise TypeError(
            f"{label} must be a str such as 'tcp://127.0.0.1:8786', got {type(address).__name__}"
        )
    try:
        _, location = parse_address(address, strict=True)
    except ValueError:
        location = ""
    if not location:
        raise ValueError(
            f"{label} must be a scheduler address such as 'tcp://127.0.0.1:8786', got {address!r}"
        )
    return address


class Connection:
    """A synchronous `distributed.Client`, given or made from an address. Thread-safe."""

    def __init__(self, client: distributed.Client | str, connect_timeout: float) -> None:
        if isinstance(client, str):
            self.address: str | None = check_address(client)
            self._client: distributed.Client | None = None
        elif isinstance(client, distributed.Client):
            if client.asynchronous:
                raise TypeError(
                    "dask_executor() needs a synchronous distributed.Client; "
                    "create it without asynchronous=True"
                )
            self.address = None
            self._client = client
        else:
            raise TypeError(
                "dask_executor() takes a distributed.Client or a scheduler address such as "
                f"'tcp://127.0.0.1:8786', got {type(client).__name__}"
            )
        self.timeout = connect_timeout
        self._pid = os.getpid()
        self.reset()

    def reset(self) -> None:
        """The per-process state: made at creation, made again in a forked child."""
        self._lock = threading.Lock()
        self._connecting: threading.Event | None = None
        self._failure: tuple[float, str] | None = None  # until when, and what failed
        if self.address is not None:
            self._client = None  # a forked child connects again

    def client(self) -> distributed.Client:
        """The client, connecting first if need be (see the module's docstring).

        Raises:
            ClusterError: No scheduler answered within the timeout, an attempt failed
                less than `RETRY_AFTER` seconds ago, or a given client is from before a fork.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            with self._lock:
                if self._pid != os.getpid() and self.address is None:
                    raise ClusterError(
                        "this dask_executor's Client was created in another process (before "
                        "a fork): create the Client in the process that submits, or pass "
                        "dask_executor() the scheduler's address to connect there."
                    )
                if self._client is not None:
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
            client = distributed.Client(self.address, timeout=self.timeout, set_as_default=False)
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
        return self.client()

    def take_owned(self) -> distributed.Client | None:
        """The client this connection made (to close it), or None; forgets it either way.

        A client given to `dask_executor` stays open: it is the user's.
        """
        with self._lock:
            if self.address is None:
                return None
            client, self._client = self._client, None
            return client

    def _no_scheduler(self, why: str) -> str:
        return (
            f"no Dask scheduler answered at {self.address} within {self.timeout:g} s "
            f"({why}). Start one with `dask scheduler --host 127.0.0.1` and workers with "
            "`dask worker <address> --host 127.0.0.1`, or fix the address."
        )

    def __repr__(self) -> str:
        return self.address or repr(self._client)


def not_running(client: distributed.Client, path: str) -> str:
    """Why a task could not be sent through `client`, whose status is not "running"."""
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
