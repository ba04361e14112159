"""`run_by_path` and the import paths that tasks travel by to a cluster's workers."""

from __future__ import annotations

import dataclasses
import functools
import pickle

import pytest

from background_core import TaskNotImportable, run_by_path
from background_core._remote import remote_call, resolve
from tests.core import remote_tasks as rt
from tests.helpers import SECRET


def roundtrip(fn, *args, **kwargs):
    """What a worker does with a submission: unpickle it, then run it by its path."""
    path, args, kwargs = remote_call(fn, args, kwargs)
    return run_by_path(path, *pickle.loads(pickle.dumps((args, kwargs))))


def test_module_level_functions_run_by_path() -> None:
    assert remote_call(rt.add, (1,), {"b": 2}) == ("tests.core.remote_tasks:add", (1,), {"b": 2})
    assert run_by_path("tests.core.remote_tasks:add", (1,), {"b": 2}) == 3
    assert roundtrip(rt.alias, 2, 3) == 5


def test_a_task_runs_as_its_plain_function() -> None:
    assert resolve("tests.core.remote_tasks:decorated") is rt.decorated.__wrapped__
    assert roundtrip(rt.decorated, 21) == 42
    assert roundtrip(rt.decorated.__wrapped__, 21) == 42
    assert rt.pool.stats().submitted == 0  # nothing went to the pool


def test_methods_partials_class_and_static_methods() -> None:
    assert roundtrip(rt.Box(40).plus, 2) == 42
    assert roundtrip(rt.Box(40).task_plus, 2) == 42
    assert roundtrip(rt.Box.make, 7) == 7
    assert roundtrip(rt.Box.double, 4) == 8
    assert roundtrip(functools.partial(rt.add, 1), b=41) == 42


def test_what_a_worker_cannot_import_is_refused_with_the_fix() -> None:
    def local() -> None: ...

    def script() -> None: ...

    script.__module__, script.__qualname__ = "__main__", "script"
    for fn, why in [(local, "inside a function"), (lambda: None, "lambda"), (script, "__main__")]:
        with pytest.raises(TaskNotImportable, match=why) as raised:
            remote_call(fn, (), {})
        assert "module level" in str(raised.value)
    assert issubclass(TaskNotImportable, TypeError)


def test_a_function_shadowed_by_another_object_is_refused() -> None:
    original = rt.add
    rt.add = rt.alias = lambda a, b=0: a - b  # type: ignore[assignment]
    try:
        with pytest.raises(TaskNotImportable, match="does not give back"):
            remote_call(original, (1, 2), {})
    finally:
        rt.add = rt.alias = original


def test_an_unpicklable_result_is_a_type_error_naming_the_task() -> None:
    with pytest.raises(TypeError, match=r"task 'tests.core.remote_tasks:lock' returned a lock"):
        run_by_path("tests.core.remote_tasks:lock", (), {})


def test_a_bad_path_says_what_a_path_is() -> None:
    with pytest.raises(ValueError, match="module:qualname"):
        run_by_path("tests.core.remote_tasks.add", (), {})
    with pytest.raises(AttributeError):
        run_by_path("tests.core.remote_tasks:missing", (), {})


def test_an_error_about_a_callable_never_shows_its_repr() -> None:
    @dataclasses.dataclass
    class Login:
        password: str

        def __call__(self) -> None: ...

    with pytest.raises(TaskNotImportable) as refused:
        remote_call(Login(password=SECRET), (), {})
    assert SECRET not in str(refused.value)
    assert "a Login object has no import path" in str(refused.value)
