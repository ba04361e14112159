"""`__all__` and the public names stay in step."""

from __future__ import annotations

import concurrent.futures.thread
import inspect
import subprocess
import sys
import types

import pytest

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
    assert len(set(background_core.__all__)) == len(background_core.__all__)


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
    assert issubclass(background_core.ClusterError, background_core.BackgroundError)
    assert issubclass(background_core.ClusterError, RuntimeError)
    assert issubclass(background_core.TaskNotImportable, background_core.BackgroundError)
    assert issubclass(background_core.TaskNotImportable, TypeError)
    assert issubclass(background_core.BrokenPool, background_core.BackgroundError)
    assert issubclass(background_core.BrokenPool, concurrent.futures.thread.BrokenThreadPool)


def test_the_core_package_never_imports_dask() -> None:
    import subprocess
    import sys

    code = "import sys, background, background_core; print('distributed' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_package_says_the_installed_version() -> None:
    import importlib.metadata

    import django_background
    import fastapi_background
    import flask_background

    installed = importlib.metadata.version("background")
    adapters = (flask_background, fastapi_background, django_background)
    for package in (background, background_core, *adapters):
        assert package.__version__ == installed, package.__name__


@pytest.mark.parametrize(
    ("module", "missing", "hint"),
    [
        ("flask_background", "flask", "flask_background needs Flask: pip install flask"),
        ("fastapi_background", "starlette", "fastapi_background needs Starlette"),
        ("django_background", "django", "django_background needs Django: pip install django"),
        ("background_core.dask", "distributed", "pip install distributed, or install"),
    ],
)
def test_an_adapter_without_its_framework_names_what_to_install(
    module: str, missing: str, hint: str
) -> None:
    # A fresh interpreter where `missing` cannot be imported, as if it were not installed.
    code = f"import sys; sys.modules[{missing!r}] = None; import {module}"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 1
    last_line = run.stderr.strip().splitlines()[-1]
    assert last_line.startswith(("ModuleNotFoundError: ", "ImportError: ")), run.stderr
    assert hint in last_line, run.stderr
    assert "extra" in last_line


def test_django_background_without_a_tasks_framework_names_what_to_install() -> None:
    # Django 5.2 without the backport: neither django.tasks nor django_tasks.
    code = (
        "import sys; sys.modules['django.tasks'] = sys.modules['django_tasks'] = None; "
        "import django_background"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    last_line = run.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ImportError: django_background needs Django's tasks"), run.stderr
    assert "pip install django-tasks" in last_line
    assert "'django' extra" in last_line


def test_django_background_all_matches_public_names() -> None:
    import django_background

    assert set(django_background.__all__) == _public(django_background)
