"""`Task`: what a pool's decorator makes of a function. Calling it submits the function."""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

if TYPE_CHECKING:
    from ._pool import Background

P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
S = TypeVar("S")


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
        pool: Callable[[], Background],
        name: str | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(
                f"@task decorates functions and methods; got {type(fn).__name__} {fn!r}"
            )
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"task name must be a non-empty str, got {name!r}")
        functools.update_wrapper(self, fn)
        self._fn: Callable[..., Any] = fn
        self._pool = pool
        self._is_async = inspect.iscoroutinefunction(fn)
        self.name = name or getattr(fn, "__qualname__", None) or type(fn).__name__

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Submit the function with these arguments; return its Future at once."""
        return self._pool()._submit(self.name, self._fn, args, kwargs, is_async=self._is_async)

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


def make_task(
    fn: Callable[..., Any], pool: Callable[[], Background], name: str | None
) -> Task[..., Any]:
    """A `Task`, or an `AsyncTask` for an ``async def`` function."""
    cls = AsyncTask if inspect.iscoroutinefunction(fn) else Task
    return cls(fn, pool=pool, name=name)


def decorator(pool: Callable[[], Background], name: str | None) -> TaskDecorator:
    """The decorator ``bg.task(name=...)`` returns."""

    def decorate(fn: Callable[..., Any]) -> Task[..., Any]:
        return make_task(fn, pool, name)

    return decorate  # type: ignore[return-value]  # the overloads are in TaskDecorator
