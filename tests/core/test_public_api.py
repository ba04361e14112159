"""`__all__` and the public names stay in step."""

from __future__ import annotations

import inspect
import types

import background
import background_core


def _public(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }


def test_core_all_matches_public_names() -> None:
    assert set(background_core.__all__) == _public(background_core)
    assert list(background_core.__all__) == sorted(background_core.__all__)


def test_background_all_matches_public_names() -> None:
    defined_here = {
        name
        for name, value in vars(background).items()
        if (inspect.isfunction(value) and value.__module__ == "background")
        or isinstance(value, background_core.TaskMaker)
    }
    assert set(background.__all__) == defined_here | {"n"}
    for name in background.__all__:
        assert hasattr(background, name), name


def test_errors_form_one_family() -> None:
    assert issubclass(background_core.PoolClosed, background_core.BackgroundError)
    assert issubclass(background_core.PoolClosed, RuntimeError)
    assert issubclass(background_core.QueueFull, background_core.BackgroundError)
