"""``docs/bench.png``: one horizontal bar panel per figure, ours highlighted."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, NamedTuple

from bench.section import Section


class Panel(NamedTuple):
    key: str  # section
    column: str  # the figure plotted
    title: str
    log: bool = False
    better: str = "lower"  # or "higher": said in the panel's title


PANELS = [
    Panel("submission", "µs per submit", "Submission, workers busy: µs per submit", log=True),
    Panel("submission", "no-op tasks/s", "Throughput: no-op tasks/s", better="higher"),
    Panel("memory", "bytes per queued task", "Memory: bytes per queued task"),
    Panel("handler", "req/s vs nothing", "Handler cost: req/s vs firing nothing", better="higher"),
    Panel("isolation", "p99 ms", "Isolation: sync endpoint p99 (ms)"),
    Panel("shutdown", "ran (worst)", "Shutdown: tasks of 200 run, worst round", better="higher"),
    Panel("dask", "tasks/s", "Dask: no-op tasks per second", log=True, better="higher"),
]
OURS = "#1f77b4"
OTHERS = "#b0b0b0"


def draw(sections: list[Section], machine: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_key = {s.key: s for s in sections}
    panels = [p for p in PANELS if p.key in by_key and p.column in by_key[p.key].columns]
    if not panels:
        return
    columns = 2
    rows = math.ceil(len(panels) / columns)
    heights = [len(by_key[p.key].rows) for p in panels]
    figure, axes = plt.subplots(
        rows, columns, figsize=(15, 1.2 + rows * (0.32 * max(heights) + 1.0)), squeeze=False
    )
    for ax, panel in zip(axes.flat, panels, strict=False):
        _bars(ax, by_key[panel.key], panel)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    figure.suptitle(
        f"background vs the alternatives: {machine['cores']} cores, "
        f"Python {machine['python']}, {machine['date']}",
        fontsize=12,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.98))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _bars(ax: Any, section: Section, panel: Panel) -> None:
    index = section.columns.index(panel.column)
    first_number = next(i for i, c in enumerate(section.rows[0]) if _number(c) is not None)
    labels, values = [], []
    for row in section.rows:
        value = _number(row[index])
        if value is not None:
            labels.append(" · ".join(str(c) for c in row[:first_number] if c))
            values.append(value)
    colors = [OURS if _is_ours(label) else OTHERS for label in labels]
    positions = range(len(values))
    ax.barh(positions, values, color=colors)
    ax.set_yticks(list(positions), labels, fontsize=8)
    ax.invert_yaxis()
    if panel.log and all(v > 0 for v in values):
        ax.set_xscale("log")
    elif max(values) >= 10_000:
        ax.xaxis.set_major_formatter(lambda x, _: f"{x / 1000:g}k")
    for y, v in zip(positions, values, strict=True):
        ax.text(v, y, f" {v:,.2f}" if v < 10 else f" {v:,.0f}", va="center", fontsize=7)
    ax.set_title(f"{panel.title} ({panel.better} is better)", fontsize=10)
    ax.margins(x=0.18)


def _number(cell: object) -> float | None:
    """A figure of a table: a number, or the count of a "count/total" cell."""
    if isinstance(cell, (int, float)):
        return float(cell)
    if isinstance(cell, str) and re.fullmatch(r"\d+/\d+", cell):
        return float(cell.split("/")[0])
    return None


def _is_ours(label: str) -> bool:
    lowered = label.lower()
    return lowered.startswith("background") or "ours" in lowered
