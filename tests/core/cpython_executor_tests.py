"""CPython's own thread-pool executor tests, run against `background_core.Background`.

    python3.13 tests/core/cpython_executor_tests.py      # prints one JSON object
    python3.13 tests/core/cpython_executor_tests.py 0/3  # the first of 3 shards of it

The tests are the running interpreter's own (``test.test_concurrent_futures``: a package
since 3.12, one module before), imported at run time, never copied here. The only thing
this file adds is `Pool`: the stdlib constructor's argument names mapped onto ours. It
stands in for ``concurrent.futures.ThreadPoolExecutor`` in this process before the tests
are imported, so the tests' ``ThreadPoolMixin`` and the tests that name the class both
get it. `DESELECTED` lists the tests that check the stdlib's internals, each with why.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import io
import json
import sys
import unittest
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from background_core import Background


class Pool(Background):
    """`Background` under the stdlib's constructor: only the argument names are mapped."""

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        super().__init__(
            max_workers,
            name=thread_name_prefix or "cpython",
            initializer=initializer,
            initargs=initargs,
        )


PRIVATE = "reads the stdlib pool's private attributes ({})"
CHILD = "runs `from concurrent.futures import ...` in a child `python -I`, which gets the stdlib"

# Test method name -> why it does not apply. The behaviours they check through stdlib
# internals are covered by tests/core/test_executor_contract.py.
DESELECTED = {
    "test_default_workers": PRIVATE.format("_max_workers; our default is the CPUs, by design"),
    "test_saturation": PRIVATE.format("_threads, _max_workers"),
    "test_idle_thread_reuse": PRIVATE.format("_threads; threads start on demand there"),
    "test_max_workers_negative": "matches the stdlib's message, which names max_workers",
    "test_threads_terminate": PRIVATE.format("_threads; threads start on demand there"),
    "test_context_manager_shutdown": PRIVATE.format("_threads"),
    "test_del_shutdown": PRIVATE.format("_threads"),
    "test_shutdown_no_wait": PRIVATE.format("_threads"),
    "test_thread_names_assigned": PRIVATE.format("_threads") + " and exact thread names",
    "test_thread_names_default": PRIVATE.format("_threads") + " and exact thread names",
    "test_initializer@FailingInitializer": PRIVATE.format("_broken"),
    "test_interpreter_shutdown": CHILD,
    "test_submit_after_interpreter_shutdown": CHILD,
    "test_hang_gh83386": CHILD,
    "test_cancel_futures_wait_false": CHILD,
    "test_free_reference": (
        "wants a result freed at once, which a worker holding it a moment after setting it"
        " breaks for any pool (CPython issue 130957, fixed there with a retry); checked with"
        " that retry in test_executor_contract.py"
    ),
}

PACKAGE = "test.test_concurrent_futures"
MODULES = (
    "test_thread_pool",
    "test_shutdown",
    "test_wait",
    "test_as_completed",
    "test_init",
)


def test_modules() -> list[Any]:
    """The modules that hold the thread-pool tests, on this interpreter."""
    package = importlib.import_module(PACKAGE)
    if not hasattr(package, "__path__"):  # Python <= 3.11: one module holds them all
        return [package]
    return [importlib.import_module(f"{PACKAGE}.{name}") for name in MODULES]


def why_deselected(case: unittest.TestCase) -> str | None:
    method = case._testMethodName
    for key, reason in DESELECTED.items():
        name, _, where = key.partition("@")
        if name == method and where in type(case).__name__:
            return reason
    return None


def thread_pool_cases(modules: list[Any]) -> Iterator[unittest.TestCase]:
    """Every test of a class that runs on the thread pool (its mixin says so)."""
    loader = unittest.TestLoader()
    for module in modules:
        util = getattr(module, "ThreadPoolMixin", None)
        if util is None:
            util = importlib.import_module(f"{PACKAGE}.util").ThreadPoolMixin
        for name in sorted(vars(module)):
            cls = getattr(module, name)
            if (
                isinstance(cls, type)
                and issubclass(cls, unittest.TestCase)
                and issubclass(cls, util)
                and cls.__module__ == module.__name__
            ):
                yield from loader.loadTestsFromTestCase(cls)


def main() -> None:
    concurrent.futures.ThreadPoolExecutor = Pool  # type: ignore[misc]  # see the docstring
    modules = test_modules()
    suite = unittest.TestSuite()
    deselected: dict[str, str] = {}
    shard, shards = (int(n) for n in (sys.argv[1] if len(sys.argv) > 1 else "0/1").split("/"))
    for index, case in enumerate(thread_pool_cases(modules)):
        if index % shards != shard:
            continue
        reason = why_deselected(case)
        if reason is None:
            suite.addTest(case)
        else:
            deselected[case.id()] = reason
    for module in modules:  # what setUpModule would have done
        setup = getattr(module, "setUpModule", None)
        if setup is not None:
            setup()
    stream = io.StringIO()
    with contextlib.redirect_stdout(stream):  # the tests print timings when verbose
        result = unittest.TextTestRunner(stream=stream, verbosity=2).run(suite)
        unittest.case.doModuleCleanups()
    problems = [(case.id(), text) for case, text in (*result.failures, *result.errors)]
    print(
        json.dumps(
            {
                "python": "{}.{}".format(*sys.version_info[:2]),
                "ran": result.testsRun,
                "passed": result.testsRun
                - len(problems)
                - len(result.skipped)
                - len(result.expectedFailures),
                "skipped": {case.id(): why for case, why in result.skipped},
                "problems": dict(problems),
                "deselected": deselected,
                "log": stream.getvalue(),
            }
        )
    )


if __name__ == "__main__":
    main()
