"""What travels with a task: the caller's contextvars and what registered capturers capture.

A capturer is called at submission, in the caller's thread. It returns a context manager
that the worker enters around the task (a Flask app context, say), or None when it has
nothing to carry. Capturers are global: they apply to every pool.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

Capturer = Callable[[], "AbstractContextManager[object] | None"]

R = TypeVar("R")

_capturers: tuple[Capturer, ...] = ()


def add_context_capturer(capturer: Capturer) -> None:
    """Register `capturer`, called at each submission in the submitting thread.

    Adding the same capturer twice has no effect. Thread-safe.
    """
    global _capturers
    if not callable(capturer):
        raise TypeError(f"a context capturer must be callable, got {type(capturer).__name__}")
    if capturer not in _capturers:
        _capturers = (*_capturers, capturer)


def remove_context_capturer(capturer: Capturer) -> None:
    """Unregister `capturer`; does nothing if it is not registered. Thread-safe."""
    global _capturers
    _capturers = tuple(c for c in _capturers if c != capturer)


def capture() -> tuple[AbstractContextManager[object], ...] | None:
    """Call every capturer; return the context managers they gave, or None if none did."""
    if not _capturers:
        return None
    managers = tuple(m for m in (c() for c in _capturers) if m is not None)
    return managers or None


def call_within(
    managers: tuple[AbstractContextManager[object], ...] | None, fn: Callable[[], R]
) -> R:
    """Call `fn` inside the captured context managers (outermost first)."""
    if managers is None:
        return fn()
    with contextlib.ExitStack() as stack:
        for manager in managers:
            stack.enter_context(manager)
        return fn()
