"""What travels with a task: the caller's contextvars and what registered capturers capture.

A capturer is called at submission, in the caller's thread. It returns a context manager
that the worker enters around the task (a Flask app context, say), or None when it has
nothing to carry. Capturers added here apply to every pool; a pool may have one of its
own as well (`Background(capturer=...)`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from contextvars import Context, ContextVar, copy_context
from typing import Any, TypeAlias, TypeVar

Capturer = Callable[[], "AbstractContextManager[object] | None"]
"""Called at submission in the submitting thread; returns a context manager that the worker
enters around the task, or None."""
# What a submission captured: nothing, one manager (the common case: no tuple to build),
# or several, outermost first.
Captured: TypeAlias = (
    AbstractContextManager[object] | tuple[AbstractContextManager[object], ...] | None
)

R = TypeVar("R")

_capturers: tuple[Capturer, ...] = ()  # replaced whole, so readers need no lock
_changing = threading.Lock()


def add_context_capturer(capturer: Capturer) -> None:
    """Register `capturer`, called at each submission in the submitting thread.

    If it raises, the submission fails with its error (counted as rejected), on every
    pool. Adding the same capturer twice has no effect. Thread-safe.
    """
    global _capturers
    if not callable(capturer):
        raise TypeError(f"a context capturer must be callable, got {type(capturer).__name__}")
    with _changing:
        if capturer not in _capturers:
            _capturers = (*_capturers, capturer)


def remove_context_capturer(capturer: Capturer) -> None:
    """Unregister `capturer`; does nothing if it is not registered. Thread-safe."""
    global _capturers
    with _changing:
        _capturers = tuple(c for c in _capturers if c != capturer)


def capture(own: Capturer | None = None) -> Captured:
    """Call every capturer, then `own`; return the context managers they gave, or None."""
    if not _capturers:  # the common case, kept fast: no global capturer, one or none own
        return None if own is None else own()
    capturers = _capturers if own is None else (*_capturers, own)
    managers = tuple(m for m in (c() for c in capturers) if m is not None)
    return managers or None


EMPTY = Context()
"""The snapshot of every submission made where no context variable is set: one shared
object rather than one per task waiting in a queue (fewer objects for the garbage
collector to walk). Never entered: a task runs in a new empty context instead
(`TaskFuture.take_work`)."""


def snapshot() -> Context:
    """`copy_context()`, or `EMPTY` where no variable is set."""
    context = copy_context()
    return context if len(context) else EMPTY


def copy_without(excluded: frozenset[ContextVar[Any]]) -> Context:
    """A copy of the current context in which the `excluded` variables were never set."""
    context = copy_context()
    if excluded.isdisjoint(context):
        return context
    fresh = Context()
    if not excluded.issuperset(context):  # a Flask request's context holds only its own
        fresh.run(_set_kept, context, excluded)
    return fresh


def _set_kept(context: Context, excluded: frozenset[ContextVar[Any]]) -> None:
    for var, value in context.items():
        if var not in excluded:
            var.set(value)


def call_within(managers: Captured, fn: Callable[[], R]) -> R:
    """Call `fn` inside the captured context managers (outermost first)."""
    if managers is None:
        return fn()
    if not isinstance(managers, tuple):
        with managers:
            return fn()
    with contextlib.ExitStack() as stack:
        for manager in managers:
            stack.enter_context(manager)
        return fn()


def each(managers: Captured) -> tuple[AbstractContextManager[object], ...]:
    """The captured managers as a tuple, outermost first."""
    if managers is None:
        return ()
    return managers if isinstance(managers, tuple) else (managers,)
