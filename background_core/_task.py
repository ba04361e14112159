"""`Task`: what a pool's decorator makes of a function. Calling it submits the function.

A task sees its pool only as a `TaskPool`, found at each call: `Background` is one, and an
adapter's finder (the current app's pool) returns one.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from inspect import CO_COROUTINE
from types import FunctionType
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
S = TypeVar("S")


def is_coroutine_function(fn: Callable[..., object]) -> bool:
    """`inspect.iscoroutinefunction`, with a fast path for the common case.

    A plain function with no attributes of its own can carry no coroutine mark, so its
    code's flags say it all (about 200 ns less per submission, measured).
    """
    if type(fn) is FunctionType and not fn.__dict__:
        return bool(fn.__code__.co_flags & CO_COROUTINE)
    return inspect.iscoroutinefunction(fn)


class TaskPool(Protocol):
    """What a task submits to: `Background.submit_task`."""

    def submit_task(
        self,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        is_async: bool | None = None,
    ) -> Future[Any]: ...


class Task(Generic[P, R]):
    """A function whose calls run in the background and return a `Future` at once.

    Made by ``@bg.task`` or ``@background.task``. Keeps the function's ``__name__``,
    ``__doc__`` and ``__wrapped__`` (the plain function, to call it synchronously).
    Works on methods too. The pool is looked up at each call, not at decoration, so
    modules that define tasks import cleanly before any app or pool exists.
    """

    name: str
    """The name reports and logs give this task."""

    __wrapped__: Callable[P, R]
    """The decorated function itself: call it to run the task synchronously."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        pool: Callable[[], TaskPool],
        name: str | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@task decorates functions and methods; got {type(fn).__name__}")
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"task name must be a non-empty str, got {type(name).__name__}")
        functools.update_wrapper(self, fn)
        self._fn: Callable[..., Any] = fn
        self._pool = pool
        self._is_async = is_coroutine_function(fn)
        self.name = name or getattr(fn, "__qualname__", None) or type(fn).__name__

    @property
    def function(self) -> Callable[..., Any]:
        """What each call submits: the function, bound to the instance for a method."""
        return self._fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Submit the function with these arguments; return its Future at once."""
        return self._pool().submit_task(self.name, self._fn, args, kwargs, is_async=self._is_async)

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> Task[P, R]: ...
    @overload
    def __get__(
        self: Task[Concatenate[S, P2], R], instance: S, owner: type[Any] | None = None
    ) -> Task[P2, R]: ...
    def __get__(self, instance: object, owner: type[Any] | None = None) -> Task[Any, R]:
        if instance is None:
            return self
        bound: Task[Any, R] = object.__new__(type(self))
        bound.__dict__.update(self.__dict__)
        bound._fn = types.MethodType(self._fn, instance)
        return bound

    def __repr__(self) -> str:
        return f"<Task {self.name!r}>"


class AsyncTask(Task[P, R]):
    """A `Task` made from an ``async def`` function: calls return ``Future[R]`` all the same.

    It runs on the pool's event-loop thread; ``__wrapped__`` returns the coroutine.
    """

    __wrapped__: Callable[P, Coroutine[Any, Any, R]]  # type: ignore[assignment]


class TaskDecorator(Protocol):
    """What ``bg.task(name=...)`` returns: the decorator, for plain and ``async`` functions."""

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> AsyncTask[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]: ...


class TaskMaker:
    """The ``task`` decorator of a pool: ``@bg.task`` or ``@bg.task(name="send-email")``.

    Makes a `Task` (an `AsyncTask` for an ``async def`` function) whose calls submit to
    the pool that `pool` returns at call time. Adapters give it a function that finds
    the current app's pool. Raises TypeError for a non-callable.
    """

    def __init__(self, pool: Callable[[], TaskPool]) -> None:
        self._pool = pool

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> AsyncTask[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]: ...
    @overload
    def __call__(self, /, *, name: str) -> TaskDecorator: ...
    def __call__(
        self, fn: Callable[..., Any] | None = None, /, *, name: str | None = None
    ) -> Task[..., Any] | TaskDecorator:
        if fn is None:
            return functools.partial(self._make, name=name)  # type: ignore[return-value]
        return self._make(fn, name=name)

    def _make(self, fn: Callable[..., Any], *, name: str | None) -> Task[..., Any]:
        cls = AsyncTask if is_coroutine_function(fn) else Task
        return cls(fn, pool=self._pool, name=name)
