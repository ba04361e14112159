"""Module-level callables for `test_remote`: what a worker could import by name."""

from __future__ import annotations

import threading

from background_core import Background

pool = Background(1, name="remote-tasks")  # never started: only its decorator is used


def add(a: int, b: int = 0) -> int:
    return a + b


@pool.task
def decorated(a: int) -> int:
    return a * 2


def lock() -> threading.Lock:
    return threading.Lock()


class Box:
    def __init__(self, value: int) -> None:
        self.value = value

    def plus(self, more: int) -> int:
        return self.value + more

    @pool.task
    def task_plus(self, more: int) -> int:
        return self.value + more

    @classmethod
    def make(cls, value: int) -> int:
        return cls(value).value

    @staticmethod
    def double(value: int) -> int:
        return value * 2


alias = add  # the same function under a second name: its path is still "add"
