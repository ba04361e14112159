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


class TaskMaker:
    """The ``task`` decorator of a pool: ``@bg.task`` or ``@bg.task(name="send-email")``.

    Makes a `Task` (an `AsyncTask` for an ``async def`` function) whose calls submit to
    the pool that `pool` returns at call time. Adapters give it a function that finds
    the current app's pool. Raises TypeError for a non-callable.
    """

    def __init__(self, pool: Callable[[], Background]) -> None:
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
        cls = AsyncTask if inspect.iscoroutinefunction(fn) else Task
        return cls(fn, pool=self._pool, name=name)
