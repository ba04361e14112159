"""Running a task in another process by its import path, ``"module:qualname"``.

A cluster's worker runs the task by importing it, as pickle does for functions: the worker
needs the app's code, and the function must live at module level. The caller's side turns a
callable into a path and plain arguments (`remote_call`); the worker's side imports the path
and calls the undecorated function (`run_by_path`). Nothing here imports a cluster library.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pickle
import types
from collections.abc import Callable, Mapping
from typing import Any

from ._errors import TaskNotImportable
from ._task import Task

_MOVE = "define it at module level in a module the workers can import, and submit that"


def remote_call(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """The import path of `fn` and the arguments to pass `run_by_path` for the same call.

    Accepts module-level functions, our tasks, methods and class methods of module-level
    classes (the instance or class becomes the first argument), and `functools.partial`
    of those. Checks that importing the path gives back `fn`, as pickle would.

    Raises:
        TaskNotImportable: `fn` is a lambda, a function defined inside another one, in
            ``__main__``, or anything else a worker could not import by name.
    """
    kwargs = dict(kwargs)
    if isinstance(fn, functools.partial):
        args = (*fn.args, *args)
        kwargs = {**fn.keywords, **kwargs}
        fn = fn.func
    if isinstance(fn, Task):
        fn = fn.function  # our own decorator: its calls submit, the worker must run the function
    if isinstance(fn, types.MethodType):
        args = (fn.__self__, *args)
        fn = fn.__func__
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    shown = repr(qualname) if qualname else f"a {type(fn).__name__} object"  # never its repr
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise TaskNotImportable(f"{shown} has no import path: {_MOVE}.")
    if "<locals>" in qualname or "<lambda>" in qualname:
        raise TaskNotImportable(
            f"task {qualname!r} is defined inside a function (or is a lambda), so a cluster's "
            f"workers cannot import it: {_MOVE}."
        )
    if module == "__main__":
        raise TaskNotImportable(
            f"task {qualname!r} is defined in __main__ (the script that was run), which a "
            f"cluster's workers cannot import: {_MOVE}."
        )
    path = f"{module}:{qualname}"
    try:
        found = resolve(path)
    except (ImportError, AttributeError):
        found = None
    if found is not fn:
        raise TaskNotImportable(
            f"importing {path!r} does not give back the task {shown} (another object has "
            f"that name, or it is not importable): {_MOVE}."
        )
    return path, args, kwargs


def resolve(path: str) -> Callable[..., Any]:
    """Import ``"module:qualname"`` and return the plain function it names.

    Walks a dotted qualname through classes without binding (a method gives its function,
    a class method or static method its function), and unwraps our `Task` to the function
    it decorates. Raises ImportError, AttributeError or TypeError if there is none.
    """
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise ValueError(f"an import path is 'module:qualname', got {path!r}")
    found: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        found = inspect.getattr_static(found, part)
        if isinstance(found, (classmethod, staticmethod)):
            found = found.__func__
        if isinstance(found, Task):
            found = found.function
    if not callable(found):
        raise TypeError(f"{path!r} names {type(found).__name__}, not a function")
    return found  # type: ignore[no-any-return]


def run_by_path(path: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    """Call the function at ``"module:qualname"`` with `args` and `kwargs`; what a worker runs.

    The function is the undecorated one (a task's calls would submit it again). Its result
    must pickle, since it travels back to the caller: checked here, on the worker, so that a
    result that cannot travel is an error the caller sees instead of a wait.

    Raises:
        TypeError: The result does not pickle; the message names the task.
        Exception: Whatever the function raises, unchanged.
    """
    result = resolve(path)(*args, **kwargs)
    if result is not None:
        try:
            # Protocol 5 with a buffer callback: large buffers (numpy, bytes-like) are not
            # copied just for the check.
            pickle.dumps(result, protocol=5, buffer_callback=lambda buffer: None)
        except Exception as error:
            raise TypeError(
                f"task {path!r} returned a {type(result).__name__} that cannot be pickled "
                f"({error}), so it cannot travel back from the worker: return plain data "
                "(numbers, strings, lists, dicts, dataclasses) instead."
            ) from None
    return result
