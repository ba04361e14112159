"""A backend's ``OPTIONS``: the pool's options and the results it keeps, checked by key.

Checked without making anything, so that a wrong value is reported by Django's system
checks (``manage.py check``, ``runserver``) naming its key,
``TASKS['default']['OPTIONS']['workers']``, and raised by the backend's first use.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

from background_core import OnFull, PoolOptions, check_option

# OPTIONS key -> default; each key is the `background_core.Background` option of that name.
# A web app's defaults, as the other adapters': a bounded queue refused at once when full
# (the view may answer 503), a drain below gunicorn's 30 s --graceful-timeout.
POOL_DEFAULTS: dict[str, object] = {
    "workers": None,
    "max_queue": 10_000,
    "on_full": "raise",
    "block_timeout": 1.0,  # with on_full="block": well under gunicorn's 30 s --timeout
    "drain_timeout": 25.0,
    "eager": False,
}
RESULTS = 10_000
"""Results a backend holds by default: beyond that, the oldest finished ones are forgotten
(unfinished ones never are)."""
KEYS = (*POOL_DEFAULTS, "results")


@dataclass(frozen=True)
class Config:
    """A backend alias's checked options; equal configurations share one pool."""

    alias: str
    workers: int | None
    max_queue: int | None
    on_full: OnFull
    block_timeout: float
    drain_timeout: float
    eager: bool
    results: int

    def pool_options(self) -> PoolOptions:
        """The `background_core.Background` options, named after the alias."""
        return {
            "name": "django" if self.alias == "default" else f"django.{self.alias}",
            "workers": self.workers,
            "max_queue": self.max_queue,
            "on_full": self.on_full,
            "block_timeout": self.block_timeout,
            "drain_timeout": self.drain_timeout,
            "eager": self.eager,
        }


def read_options(alias: str, options: object) -> tuple[Config | None, list[str]]:
    """The configuration of backend `alias` from its ``OPTIONS``, or None and what is
    wrong with them: one message per wrong key, each naming it."""
    where = f"TASKS[{alias!r}]['OPTIONS']"
    if not isinstance(options, Mapping):
        return None, [f"{where} must be a dict, got {type(options).__name__}"]
    problems = []
    for key in options:
        if key not in KEYS:
            match = difflib.get_close_matches(str(key), KEYS, n=1, cutoff=0.6)
            hint = f"did you mean {match[0]!r}? " if match else ""
            problems.append(
                f"{where} has an unknown key {key!r}: {hint}The keys are {', '.join(KEYS)}."
            )
    values = {**POOL_DEFAULTS, "results": RESULTS, **options}
    for key in POOL_DEFAULTS:
        try:
            check_option(key, values[key], f"{where}[{key!r}]")
        except (TypeError, ValueError) as error:
            problems.append(str(error))
    results = values["results"]
    if isinstance(results, bool) or not isinstance(results, int) or results < 0:
        shown = results if isinstance(results, int) else type(results).__name__
        problems.append(f"{where}['results'] must be an int >= 0 (the results held), got {shown}")
    if problems:
        return None, problems
    return Config(alias=alias, **{key: values[key] for key in KEYS}), []
