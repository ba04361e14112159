"""`@bg.task` and `Task`: wrapping, naming, methods, late pool lookup, and static types."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from background_core import Background, PoolClosed, Task
from tests.helpers import WAIT

ROOT = Path(__file__).resolve().parents[2]


def test_bare_decorator_keeps_the_function_identity(pool: Background) -> None:
    def send_email(to: str) -> str:
        """Send one email."""
        return f"sent to {to} on {threading.current_thread().name}"

    task = pool.task(send_email)
    assert isinstance(task, Task)
    assert task.__name__ == "send_email"
    assert task.__doc__ == "Send one email."
    assert task.__wrapped__ is send_email  # type: ignore[attr-defined]
    assert task.__module__ == send_email.__module__
    assert task.name == send_email.__qualname__
    assert task.name.endswith("send_email")
    assert "send_email" in repr(task)


def test_decorator_with_a_name(pool: Background) -> None:
    @pool.task(name="send-email")
    def send_email(to: str) -> str:
        """Send one email."""
        return to

    assert isinstance(send_email, Task)
    assert send_email.name == "send-email"
    assert send_email.__name__ == "send_email"
    assert send_email.__doc__ == "Send one email."
    assert send_email("a@example.com").result(timeout=WAIT) == "a@example.com"
    assert "send-email" in repr(send_email)


def test_a_call_returns_a_future_at_once_and_runs_in_a_worker(pool: Background) -> None:
    release = threading.Event()
    started = threading.Event()

    @pool.task
    def work(a: int, *, b: int) -> tuple[int, str]:
        started.set()
        assert release.wait(WAIT)
        return a + b, threading.current_thread().name

    future = work(1, b=2)
    assert isinstance(future, Future)
    assert started.wait(WAIT)
    assert not future.done()
    release.set()
    total, where = future.result(timeout=WAIT)
    assert total == 3
    assert where.startswith("background-test-")


def test_wrapped_runs_synchronously_in_the_caller(pool: Background) -> None:
    @pool.task
    def where(x: int) -> tuple[int, threading.Thread]:
        return x * 2, threading.current_thread()

    result = where.__wrapped__(21)  # type: ignore[attr-defined]
    assert result == (42, threading.current_thread())
    assert pool.stats().submitted == 0


def test_failures_come_back_through_the_future(pool: Background) -> None:
    @pool.task(name="explode")
    def explode() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        explode().result(timeout=WAIT)


@pytest.mark.parametrize("thing", [42, "send_email", object()])
def test_decorating_a_non_callable_raises_type_error(pool: Background, thing: Any) -> None:
    with pytest.raises(TypeError, match="functions"):
        pool.task(thing)
    with pytest.raises(TypeError, match="functions"):
        pool.task(name="x")(thing)


@pytest.mark.parametrize("name", ["", 5, b"x"])
def test_a_bad_task_name_raises(pool: Background, name: Any) -> None:
    def work() -> None:
        return None

    with pytest.raises((TypeError, ValueError), match="name"):
        pool.task(name=name)(work)


def test_tasks_report_their_name_to_drain(pool: Background) -> None:
    release = threading.Event()

    @pool.task(name="nightly-report")
    def report() -> None:
        release.wait(WAIT)

    try:
        future = report()
        drained = pool.drain(timeout=0.05)
        assert [t.name for t in drained.unfinished] == ["nightly-report"]
    finally:
        release.set()
    assert future.result(timeout=WAIT) is None


def test_an_async_task_runs_and_resolves_to_its_value(pool: Background) -> None:
    @pool.task
    async def fetch(x: int) -> int:
        return x + 1

    @pool.task(name="fetch-named")
    async def fetch_named(x: int) -> int:
        return x + 2

    assert fetch(1).result(timeout=WAIT) == 2
    assert fetch_named(1).result(timeout=WAIT) == 3
    assert fetch_named.name == "fetch-named"


# -- methods ----------------------------------------------------------------------------


def test_a_method_task_submits_with_the_right_self() -> None:
    with Background(2, name="methods") as bg:

        class Mailer:
            def __init__(self, sender: str) -> None:
                self.sender = sender

            @bg.task
            def send(self, to: str) -> tuple[str, str, str]:
                """Send as this mailer."""
                return self.sender, to, threading.current_thread().name

        alice, bob = Mailer("alice"), Mailer("bob")
        fa, fb = alice.send("x@example.com"), bob.send("y@example.com")
        assert isinstance(fa, Future)
        sender, to, where = fa.result(timeout=WAIT)
        assert (sender, to) == ("alice", "x@example.com")
        assert where.startswith("background-methods-")
        assert fb.result(timeout=WAIT)[:2] == ("bob", "y@example.com")

        bound = alice.send
        assert isinstance(bound, Task)
        assert bound.name.endswith("Mailer.send")
        assert bound.__name__ == "send"
        assert bound.__doc__ == "Send as this mailer."

        # Through the class: the Task itself.
        assert Mailer.send is Mailer.__dict__["send"]
        assert isinstance(Mailer.send, Task)
        # Its __wrapped__ is the plain function; it runs synchronously with an explicit self.
        plain = Mailer.send.__wrapped__  # type: ignore[attr-defined]
        assert plain(bob, "z")[:2] == ("bob", "z")
        assert plain(bob, "z")[2] == threading.current_thread().name
        assert bg.drain(timeout=WAIT).finished
        assert bg.stats().submitted == 2


def test_a_named_method_task_keeps_its_name() -> None:
    with Background(1, name="named-methods") as bg:

        class Worker:
            @bg.task(name="worker-run")
            def run(self, n: int) -> int:
                return n * 3

        assert Worker().run(4).result(timeout=WAIT) == 12
        assert Worker().run.name == "worker-run"
        assert Worker.run.name == "worker-run"


# -- late pool lookup -------------------------------------------------------------------


def test_a_task_decorated_before_the_pool_is_used_works() -> None:
    bg = Background(1, name="late")

    @bg.task
    def work(x: int) -> int:
        return x + 1

    # Decorating starts nothing.
    assert not [t for t in threading.enumerate() if t.name.startswith("background-late-")]
    assert bg.stats().submitted == 0
    try:
        assert work(1).result(timeout=WAIT) == 2
        assert bg.stats().submitted == 1
    finally:
        bg.shutdown()
    with pytest.raises(PoolClosed):
        work(2)


def test_task_finds_its_pool_at_call_time() -> None:
    current: dict[str, Background] = {}

    def work() -> str:
        return threading.current_thread().name

    task = Task(work, pool=lambda: current["pool"])  # defined while no pool exists
    with Background(1, name="first") as first:
        current["pool"] = first
        assert task().result(timeout=WAIT).startswith("background-first-")
    with Background(1, name="second") as second:
        current["pool"] = second
        assert task().result(timeout=WAIT).startswith("background-second-")
    assert first.stats().submitted == second.stats().submitted == 1


# -- static types -----------------------------------------------------------------------

TYPED_SOURCE = """\
from background_core import Background

bg = Background(1, name="types")


@bg.task
def send_email(to: str) -> None: ...


@bg.task
async def fetch() -> int:
    return 1


@bg.task(name="send-named")
def send_named(to: str) -> None: ...


@bg.task(name="fetch-named")
async def fetch_named() -> int:
    return 1


class Mailer:
    @bg.task
    def send(self, to: str) -> int:
        return 1


reveal_type(send_email("a"))  # L:send_email
reveal_type(fetch())  # L:fetch
reveal_type(send_named("a"))  # L:send_named
reveal_type(Mailer().send("a"))  # L:method
reveal_type(bg.submit(send_email.__wrapped__, "a"))  # L:wrapped
reveal_type(fetch_named())  # L:fetch_named
send_email(1)  # L:bad_argument
"""


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Run mypy --strict once on TYPED_SOURCE; map each `# L:` label to its line's output."""
    tmp = tmp_path_factory.mktemp("typing")
    source = tmp / "typed_tasks.py"
    source.write_text(TYPED_SOURCE)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp / "cache"),
            "--no-error-summary",
            "--hide-error-context",
            str(source),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=50,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    labels = {
        number: match.group(1)
        for number, line in enumerate(TYPED_SOURCE.splitlines(), start=1)
        if (match := re.search(r"# L:(\w+)", line))
    }
    out: dict[str, str] = {label: "" for label in labels.values()}
    out["_all"] = proc.stdout
    for line in proc.stdout.splitlines():
        match = re.match(r".*typed_tasks\.py:(\d+): (.*)", line)
        if match and int(match.group(1)) in labels:
            out[labels[int(match.group(1))]] += match.group(2) + "\n"
    return out


def _revealed(output: str) -> str:
    match = re.search(r'Revealed type is "([^"]+)"', output)
    assert match, output
    return match.group(1)


def test_a_task_call_is_typed_as_a_future_of_its_return_type(mypy_output: dict[str, str]) -> None:
    assert _revealed(mypy_output["send_email"]) == "concurrent.futures._base.Future[None]"
    assert _revealed(mypy_output["send_named"]) == "concurrent.futures._base.Future[None]"
    # mypy writes builtins.int or int depending on its version.
    assert re.fullmatch(
        r"concurrent\.futures\._base\.Future\[(builtins\.)?int\]", _revealed(mypy_output["method"])
    )
    for label in ("send_email", "send_named", "method"):
        assert "error" not in mypy_output[label], mypy_output[label]


def test_an_async_task_call_is_typed_as_a_future_of_the_awaited_value(
    mypy_output: dict[str, str],
) -> None:
    # mypy writes builtins.int or int depending on its version.
    assert re.fullmatch(
        r"concurrent\.futures\._base\.Future\[(builtins\.)?int\]", _revealed(mypy_output["fetch"])
    )
    assert "error" not in mypy_output["fetch"]


def test_a_wrong_argument_is_a_type_error(mypy_output: dict[str, str]) -> None:
    output = mypy_output["bad_argument"]
    assert "error:" in output, mypy_output["_all"]
    assert '"int"' in output
    assert '"str"' in output


def test_nothing_else_in_the_typed_file_is_an_error(mypy_output: dict[str, str]) -> None:
    errors = [
        line
        for line in mypy_output["_all"].splitlines()
        if ": error:" in line and "typed_tasks.py" in line
    ]
    # Only the deliberate bad argument and the two known bugs below may be reported.
    allowed = {"bad_argument", "wrapped", "fetch_named"}
    expected_lines = {
        str(n)
        for n, line in enumerate(TYPED_SOURCE.splitlines(), start=1)
        if any(f"# L:{label}" in line for label in allowed)
    }
    unexpected = [line for line in errors if line.split(":")[1] not in expected_lines]
    assert unexpected == [], mypy_output["_all"]


def test_a_named_async_task_call_is_typed_as_a_future_of_the_awaited_value(
    mypy_output: dict[str, str],
) -> None:
    assert re.fullmatch(
        r"concurrent\.futures\._base\.Future\[(builtins\.)?int\]",
        _revealed(mypy_output["fetch_named"]),
    ), mypy_output["fetch_named"]


def test_wrapped_is_visible_to_the_type_checker(mypy_output: dict[str, str]) -> None:
    output = mypy_output["wrapped"]
    assert "error" not in output, output
    assert _revealed(output) == "concurrent.futures._base.Future[None]"


def test_a_task_over_staticmethod_and_classmethod(pool: Background) -> None:
    class Mailer:
        @pool.task
        @staticmethod
        def render(subject: str) -> str:
            return subject.upper()

        @pool.task
        @classmethod
        def kind(cls, subject: str) -> tuple[str, str]:
            return cls.__name__, subject

    class Newsletter(Mailer):
        pass

    assert Mailer.render("hi").result(timeout=WAIT) == "HI"
    assert Mailer().render("hi").result(timeout=WAIT) == "HI"  # no instance passed in
    assert Mailer.kind("a").result(timeout=WAIT) == ("Mailer", "a")
    assert Mailer().kind("b").result(timeout=WAIT) == ("Mailer", "b")
    assert Newsletter().kind("c").result(timeout=WAIT) == ("Newsletter", "c")
    assert Mailer.render.__name__ == "render"
