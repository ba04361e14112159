"""Tables for the terminal and for Markdown, from `Section` results."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from bench.section import Cell, Section


def cell(value: Cell) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return value


def figure(value: float) -> str:
    """A target's figure: a ratio to two decimals, a count as a whole number."""
    return f"{value:.0f}" if value == int(value) and value >= 10 else f"{value:.2f}"


def is_text(section: Section, column: int) -> bool:
    """Whether a column holds words (aligned left), not figures: "1.93 (1.92-2.09)" and
    "200/200" are figures."""
    cells = [row[column] for row in section.rows if row[column] is not None]
    return all(isinstance(v, str) and not v[:1].isdigit() for v in cells)


def text_table(section: Section) -> str:
    """A fixed-width table, its targets and notes, for the terminal."""
    cells = [section.columns] + [[cell(v) for v in row] for row in section.rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(section.columns))]
    text = [is_text(section, i) for i in range(len(widths))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            v.ljust(w) if left else v.rjust(w) for v, w, left in zip(row, widths, text, strict=True)
        )

    out = [section.title, line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells[1:]]
    out += [
        f"  {'met ' if t.met else 'MISSED'} {t.name}: {figure(t.value)} (target {t.op} {t.limit})"
        for t in section.targets
    ]
    return "\n".join(out)


def markdown_table(section: Section) -> str:
    """The section as a Markdown table, then its targets and notes."""
    columns = section.columns
    text = [is_text(section, i) for i in range(len(columns))]
    out = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" if left else "---:" for left in text) + "|",
    ]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in section.rows]
    if section.targets:
        out.append("")
        out += [
            f"- {'✅' if t.met else '❌'} {t.name}: **{figure(t.value)}** (target {t.op} {t.limit})"
            for t in section.targets
        ]
    if section.notes:
        out.append("")
        out += [f"*{note}*" if len(section.notes) == 1 else f"- *{note}*" for note in section.notes]
    return "\n".join(out)


def main_for(run: Callable[[bool], Section]) -> None:
    """Command line of a single benchmark module: run it and print its table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    t0 = time.monotonic()
    section = run(args.quick)
    print(text_table(section))
    for note in section.notes:
        print(f"  {note}")
    print(f"({time.monotonic() - t0:.0f} s)")
