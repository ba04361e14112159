"""What every benchmark returns: one table, its targets, and the raw samples behind it.

A benchmark module exposes ``run(quick: bool) -> Section``. Figures are medians over
interleaved rounds; a ratio is taken pair by pair within a round, then its median reported.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Cell = str | int | float | None


@dataclass
class Target:
    """One goal from the issue: ``value <op> limit``."""

    name: str
    value: float
    limit: float
    op: Literal["<=", ">="]

    @property
    def met(self) -> bool:
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


@dataclass
class Section:
    """One measurement: a table (``columns`` and ``rows``), targets, notes and raw data."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[Cell]]
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "columns": self.columns,
            "rows": self.rows,
            "targets": [t.as_dict() for t in self.targets],
            "notes": self.notes,
            "raw": self.raw,
        }


def section_from_dict(data: dict[str, Any]) -> Section:
    """A `Section` back from `Section.as_dict()` (as ``latest.json`` keeps it)."""
    targets = [Target(t["name"], t["value"], t["limit"], t["op"]) for t in data["targets"]]
    return Section(
        data["key"],
        data["title"],
        data["columns"],
        data["rows"],
        targets,
        data["notes"],
        data["raw"],
    )


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def pair_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Ratios taken round by round: ``numerators[i] / denominators[i]``."""
    return [a / b for a, b in zip(numerators, denominators, strict=True) if b]
