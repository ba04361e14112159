"""`make bench`'s scale section: each contender gives every figure it is asked for, and the
table, its ratios and its targets come out of the samples as the notes say."""

from __future__ import annotations

import pytest

from bench.micro import measure
from bench.report import markdown_table
from bench.scale import FIGURES, FLOOR_FIGURES, KEYS, _section


@pytest.mark.parametrize("name", ["background", "ThreadPoolExecutor", "floor"])
def test_a_contender_gives_each_figure_in_a_process_of_its_own(name: str) -> None:
    figures = FLOOR_FIGURES if name == "floor" else FIGURES
    got = measure(name, "--tasks", "300", "--figures", ",".join(figures), timeout=50)
    for figure in [*figures, "fire"]:
        assert got[KEYS[figure]] > 0, figure


def test_a_queued_figure_last_ends_the_process_without_running_the_backlog() -> None:
    got = measure("background", "--tasks", "300", "--figures", "queued", "--abandon", timeout=50)
    assert got["queued_ns"] > 0


def test_the_floor_has_no_futures_to_wait_on() -> None:
    with pytest.raises(RuntimeError, match="no futures"):
        measure("floor", "--tasks", "10", "--figures", "queued,wait", timeout=50)


def test_the_table_takes_ratios_round_by_round_and_checks_the_targets() -> None:
    two = {"floor": [0.05e3, 0.05e3], "ThreadPoolExecutor": [10e3, 8e3], "background": [2e3, 4e3]}
    rates = {
        "floor": [8e6, 10e6],
        "ThreadPoolExecutor": [100e3, 100e3],
        "background": [300e3, 200e3],
    }
    samples = {
        "queued@20000": two,
        "live@20000": two,
        "fire@20000": rates,
        "wait@20000": {k: v for k, v in rates.items() if k != "floor"},
        "queued@1000000": {"floor": [0.05e3], "background": [3e3]},
    }
    section = _section(samples, {20_000: 2}, quick=False, million=False)
    rows = {(row[0], row[1]): row for row in section.rows}
    queued = rows["submit, queued (workers blocked): µs", 20_000]
    # Round by round: 2/10 and 4/8; their median 0.35, not 3/9.
    assert queued[2:] == [
        "0.05 (0.05-0.05)",
        "9.00 (8.00-10.0)",
        "3.00 (2.00-4.00)",
        "0.35 (0.20-0.50)",
        "60.0 (40.0-80.0)",
    ]
    fire = rows["end to end, fire-and-forget, to shutdown(): k tasks/s", 20_000]
    assert fire[5] == "2.50 (2.00-3.00)"  # ours / the stdlib's rate
    assert fire[6] == "38.3 (26.7-50.0)"  # the floor's rate / ours
    wait = rows["end to end, keep and wait(fs): k tasks/s", 20_000]
    assert wait[2] is None
    assert wait[6] == "38.3 (26.7-50.0)"  # against the floor's fire-and-forget
    million = rows["submit, queued (workers blocked): µs", 1_000_000]
    assert million[3] is None
    assert million[4] == "3.00"
    met = {t.name: t.met for t in section.targets}
    assert met["submit, queued, 20,000 tasks: background / ThreadPoolExecutor"] is False
    assert met["end to end, fire-and-forget, 20,000 tasks: background / ThreadPoolExecutor"]
    assert not any("1,000,000" in name for name in met)  # no ThreadPoolExecutor there
    assert "median at 100,000" not in section.notes[-1]  # none measured
    table = markdown_table(section)
    assert "| submit, live (workers running the backlog): µs | 20,000 |" in table
    assert "\n|---|---:|---:|---:|---:|---:|---:|\n" in table  # figures as text go right
    assert "❌ submit, queued, 20,000 tasks" in table
