"""`_options`: every option is checked at construction and by `check_option`, with
messages that name the option (or the adapter's key) and never a value's repr."""

from __future__ import annotations

import math
from typing import Any

import pytest

import background_core
from background_core import (
    Background,
    check_option,
)

# -- constructor validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("workers", "error", "message"),
    [
        (0, ValueError, r"workers must be at least 1"),
        (-1, ValueError, r"workers must be at least 1"),
        (2.5, TypeError, r"workers must be a positive int"),
        ("8", TypeError, r"workers must be a positive int"),
        (True, TypeError, r"workers must be a positive int"),
    ],
)
def test_bad_workers_are_refused(workers: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Background(workers)


def test_workers_none_means_usable_cpus() -> None:
    with Background(None, name="cpus") as bg:
        assert bg.workers == background_core.usable_cpus() >= 1
        assert bg.stats().workers == bg.workers
    with Background(name="cpus-default") as bg:
        assert bg.workers == background_core.usable_cpus()


@pytest.mark.parametrize("name", ["", None, 5, b"pool"])
def test_bad_name_is_refused(name: Any) -> None:
    with pytest.raises(TypeError, match=r"name must be a non-empty str"):
        Background(1, name=name)


@pytest.mark.parametrize(
    ("max_queue", "error", "message"),
    [
        (0, ValueError, r"max_queue must be at least 1"),
        (-1, ValueError, r"max_queue must be at least 1"),
        (2.5, TypeError, r"max_queue must be a positive int"),
        ("8", TypeError, r"max_queue must be a positive int"),
        (True, TypeError, r"max_queue must be a positive int"),
    ],
)
def test_bad_max_queue_is_refused(max_queue: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Background(1, max_queue=max_queue)


@pytest.mark.parametrize("on_full", ["drop", "", None, "RAISE", 1])
def test_bad_on_full_names_the_choices(on_full: Any) -> None:
    with pytest.raises(ValueError, match=r"on_full must be one of") as info:
        Background(1, on_full=on_full)
    for choice in ("'block'", "'raise'", "'caller_runs'"):
        assert choice in str(info.value)


@pytest.mark.parametrize(
    ("drain_timeout", "error"),
    [(-1, ValueError), (-0.5, ValueError), (math.nan, ValueError), ("10", TypeError)],
)
def test_bad_drain_timeout_is_refused(drain_timeout: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"drain_timeout must be .*seconds.*math\.inf") as info:
        Background(1, drain_timeout=drain_timeout)
    assert ">= 0" in str(info.value) or "number" in str(info.value)


@pytest.mark.parametrize("drain_timeout", [0, 0.5, 30, math.inf])
def test_good_drain_timeouts_are_kept(drain_timeout: float) -> None:
    with Background(1, name="dt", drain_timeout=drain_timeout) as bg:
        assert bg.drain_timeout == drain_timeout


@pytest.mark.parametrize("executor", [object(), "pool", lambda fn: fn])
def test_executor_must_be_an_executor(executor: Any) -> None:
    with pytest.raises(TypeError, match=r"executor must be a concurrent\.futures\.Executor"):
        Background(1, executor=executor)


@pytest.mark.parametrize("on_error", ["log", 42, object()])
def test_on_error_must_be_callable(on_error: Any) -> None:
    with pytest.raises(TypeError, match=r"on_error must be callable"):
        Background(1, on_error=on_error)


def test_a_refused_pool_is_not_left_open() -> None:
    before = set(map(id, background_core.open_pools()))
    with pytest.raises(ValueError, match="workers"):
        Background(0, name="refused")
    assert {id(p) for p in background_core.open_pools()} <= before


def test_usable_cpus_is_positive() -> None:
    assert isinstance(background_core.usable_cpus(), int)
    assert background_core.usable_cpus() >= 1


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("workers", 0, ValueError),
        ("workers", "8", TypeError),
        ("max_queue", -1, ValueError),
        ("on_full", "drop", ValueError),
        ("drain_timeout", "soon", TypeError),
        ("eager", "yes", TypeError),
        ("name", "", TypeError),
    ],
)
def test_check_option_names_the_label_it_is_given(
    option: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=r"^BACKGROUND_X must be"):
        check_option(option, value, "BACKGROUND_X")


def test_check_option_accepts_good_values_and_refuses_unknown_options() -> None:
    for option, value in [("workers", None), ("workers", 3), ("on_full", "raise")]:
        check_option(option, value)
    with pytest.raises(TypeError, match="no option 'colour'"):
        check_option("colour", "blue")


def test_workers_have_an_upper_bound_that_says_why() -> None:
    for make in (lambda: Background(10**9), lambda: check_option("workers", 1025)):
        with pytest.raises(ValueError, match=r"at most 1024, got \d+: each worker is a thread"):
            make()
    Background(1024, name="most").shutdown()  # made, never started: no thread yet


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("block_timeout", -1, ValueError),
        ("block_timeout", "1", TypeError),
        ("queue_full_error", None, TypeError),
        ("initargs", [1], TypeError),
        ("exclude_contextvars", "name", TypeError),
    ],
)
def test_the_newer_options_are_checked_too(option: str, value: object, error: type) -> None:
    with pytest.raises(error, match=f"^{option} must"):
        check_option(option, value)
