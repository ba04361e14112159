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
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

if TYPE_CHECKING:
    from typing_extensions import Unpack

from ._plan import ExceptionTypes, OptionChanges, TaskOptions, task_options
from ._report import task_name

P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
S = TypeVar("S")
T = TypeVar("T", bound="Task[Any, Any]")


_KINDS = CO_COROUTINE | inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR


def runs_async(fn: Callable[..., object]) -> bool:
    """True if a call of `fn` makes a coroutine to await on the pool's loop: an ``async
    def`` function or method, an object whose ``__call__`` is one, a partial of those.

    A plain function with no attributes of its own can carry no coroutine mark, so its
    code's flags say it all: a fast path (about 200 ns less per submission, measured).

    Raises:
        TypeError: `fn` is a generator function (sync or async): a call only makes a
            generator, so its body would never run.
    """
    if type(fn) is FunctionType and not fn.__dict__:
        kind = fn.__code__.co_flags & _KINDS
        if not kind:  # the common case: a plain sync function
            return False
        if kind == CO_COROUTINE:
            return True
        raise _not_runnable(fn, bool(kind & inspect.CO_ASYNC_GENERATOR))
    call: Callable[..., object] = fn
    if not isinstance(fn, (FunctionType, types.MethodType, functools.partial, type)):
        call = type(fn).__call__  # a callable object: what its calls run
    for each in (fn, call):
        if inspect.isgeneratorfunction(each) or inspect.isasyncgenfunction(each):
            raise _not_runnable(fn, inspect.isasyncgenfunction(each))
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)


def describe(fn: Callable[..., object]) -> tuple[str, bool]:
    """`fn`'s task name and `runs_async(fn)`, for ``submit(fn)``: a plain sync function, a
    method of one or a builtin answered without `inspect` (about 0.3 µs less per call).

    Raises:
        TypeError: `fn` is not callable, or is a generator function.
    """
    kind = type(fn)
    if kind is MethodType:
        func = fn.__func__  # type: ignore[attr-defined]
        if type(func) is FunctionType and not func.__dict__ and not func.__code__.co_flags & _KINDS:
            return func.__qualname__ or task_name(fn), False
    elif kind is FunctionType:
        if not fn.__dict__ and not fn.__code__.co_flags & _KINDS:
            return fn.__qualname__ or task_name(fn), False
    elif kind is BuiltinFunctionType:  # never async: a builtin has no attribute to mark it
        return fn.__qualname__ or task_name(fn), False
    if not callable(fn):
        raise TypeError(f"submit() needs a callable, got {type(fn).__name__}")
    return task_name(fn), runs_async(fn)


def _not_runnable(fn: Callable[..., object], is_async: bool) -> TypeError:
    name = task_name(fn)
    kind = "an async generator" if is_async else "a generator"
    return TypeError(
        f"task {name!r} is {kind} function: a call only creates a generator, and its body "
        "would never run. Submit a function that does the work (it may consume the "
        "generator)."
    )


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
        options: TaskOptions | None = None,
    ) -> Future[Any]:
        """Submit ``fn(*args, **kwargs)`` under the task name `name`; return its Future.

        `is_async` says whether `fn` returns a coroutine; None finds out. `options`: when
        to run it, retries, time limit.
        """


class Submitter:
    """A pool's ``submit`` with options: what ``bg.using(...)`` returns."""

    def __init__(self, pool: TaskPool, options: TaskOptions) -> None:
        self._pool = pool
        self.options = options

    @overload
    def submit(
        self, fn: Callable[P, Coroutine[Any, Any, R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[R]: ...
    @overload
    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]: ...
    def submit(self, fn: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` in the background with these options; its Future."""
        if not callable(fn):
            raise TypeError(f"submit() needs a callable, got {type(fn).__name__}")
        return self._pool.submit_task(task_name(fn), fn, args, kwargs, options=self.options)


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
        options: TaskOptions | None = None,
    ) -> None:
        # Under @staticmethod or @classmethod: what to bind the function to on access.
        self._binding: str | None = None
        plain: Any = fn
        if isinstance(fn, (staticmethod, classmethod)):
            self._binding = "class" if isinstance(fn, classmethod) else "static"
            plain = fn.__func__
        if not callable(plain):
            raise TypeError(f"@task decorates functions and methods; got {type(fn).__name__}")
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"task name must be a non-empty str, got {type(name).__name__}")
        functools.update_wrapper(self, plain)
        self._fn: Callable[..., Any] = plain
        self._pool = pool
        self._is_async = runs_async(plain)
        self._options = options
        self.name = name or getattr(plain, "__qualname__", None) or type(plain).__name__

    @property
    def function(self) -> Callable[..., Any]:
        """What each call submits: the function, bound to the instance for a method."""
        return self._fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Submit the function with these arguments; return its Future at once."""
        return self._pool().submit_task(
            self.name, self._fn, args, kwargs, is_async=self._is_async, options=self._options
        )

    @property
    def options(self) -> TaskOptions | None:
        """The task's options (``@task(retries=...)``), None for a plain task."""
        return self._options

    def using(self: T, **changes: Unpack[OptionChanges]) -> T:
        """This task with other options, for the calls made through it:
        ``send_reminder.using(delay=600)("ada@example.com")``.

        `delay` (seconds) or `run_at` (an aware datetime): the call runs no earlier. The
        others (see `TaskOptions`) replace the task's own. Nothing waits on a thread.

        Raises:
            TypeError: An option has the wrong type (the message names it).
            ValueError: An option is out of range, or both `delay` and `run_at` are given.
        """
        varied: T = object.__new__(type(self))
        varied.__dict__.update(self.__dict__)
        varied._options = (self._options or TaskOptions()).replace(**changes)
        return varied

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> Task[P, R]: ...
    @overload
    def __get__(
        self: Task[Concatenate[S, P2], R], instance: S, owner: type[Any] | None = None
    ) -> Task[P2, R]: ...
    def __get__(self, instance: object, owner: type[Any] | None = None) -> Task[Any, R]:
        if self._binding == "static" or (instance is None and self._binding is None):
            return self
        target = instance
        if self._binding == "class":
            target = owner if owner is not None else type(instance)
        bound: Task[Any, R] = object.__new__(type(self))
        bound.__dict__.update(self.__dict__)
        bound._fn = types.MethodType(self._fn, target)
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
    """The ``task`` decorator of a pool: ``@bg.task``, ``@bg.task(name="send-email")``,
    ``@bg.task(retries=3, timeout=10)``.

    Makes a `Task` (an `AsyncTask` for an ``async def`` function) whose calls submit to
    the pool that `pool` returns at call time. Adapters give it a function that finds
    the current app's pool. The options (all off by default) are `TaskOptions`'; a bad
    one raises TypeError or ValueError naming it, at decoration. Raises TypeError for a
    non-callable.
    """

    def __init__(self, pool: Callable[[], TaskPool]) -> None:
        self._pool = pool

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> AsyncTask[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]: ...
    @overload
    def __call__(
        self,
        /,
        *,
        name: str | None = None,
        retries: int = 0,
        retry_on: ExceptionTypes = Exception,
        backoff: float = 1.0,
        backoff_max: float = 60.0,
        jitter: bool = True,
        timeout: float | None = None,
    ) -> TaskDecorator: ...
    def __call__(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        **options: Any,
    ) -> Task[..., Any] | TaskDecorator:
        plan = task_options(**options) if options else None  # checked at decoration
        if plan is not None and plan == TaskOptions():
            plan = None  # all defaults: the plain path
        if fn is None:
            return functools.partial(self._make, name=name, options=plan)  # type: ignore[return-value]
        return self._make(fn, name=name, options=plan)

    def _make(
        self, fn: Callable[..., Any], *, name: str | None, options: TaskOptions | None
    ) -> Task[..., Any]:
        plain = fn.__func__ if isinstance(fn, (staticmethod, classmethod)) else fn
        cls = AsyncTask if runs_async(plain) else Task
        return cls(fn, pool=self._pool, name=name, options=options)
