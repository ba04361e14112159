"""A/B: ``Background.submit`` of this checkout against an earlier git revision's, alone.

The submission table measures the baseline beside ours in its 4 rounds; this runs only
those two, for as many rounds as asked: in each round both, in a fresh process each, one
right after the other (this tree first in one round, the baseline first in the next). The
ratio is taken within each round; its median and range are printed.

Run: ``python -m bench.ab [REV] [--rounds 20] [--tasks 20000]`` (REV: the engine before
task options unless told).
"""

from __future__ import annotations

import argparse
import time

from bench.micro import measure
from bench.report import text_table
from bench.section import Section, median, pair_ratios
from bench.submission import BASELINE, WORKERS
from bench.venvs import source_tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rev", nargs="?", default=BASELINE, help="default: %(default)s")
    parser.add_argument("--rounds", type=int, default=20, help="2 to 200 (default: %(default)s)")
    parser.add_argument("--tasks", type=int, default=20_000, help="per figure, up to 200,000")
    args = parser.parse_args()
    if not 2 <= args.rounds <= 200 or not 1 <= args.tasks <= 200_000:
        parser.error("--rounds goes from 2 to 200, --tasks from 1 to 200,000")
    tree, commit = source_tree(args.rev)
    size = ["--workers", str(WORKERS), "--tasks", str(args.tasks)]
    submit: dict[str, list[float]] = {"ours": [], "baseline": []}
    rate: dict[str, list[float]] = {"ours": [], "baseline": []}
    t0 = time.monotonic()
    for number in range(args.rounds):
        for name in ("ours", "baseline") if number % 2 == 0 else ("baseline", "ours"):
            got = measure("background", *size, source=None if name == "ours" else tree)
            submit[name].append(got["submit_ns"] / 1000)
            rate[name].append(got["tasks_per_s"])
    ratios = {
        "µs per submit": pair_ratios(submit["ours"], submit["baseline"]),
        "no-op tasks/s": pair_ratios(rate["ours"], rate["baseline"]),
    }
    labels = {"ours": "this checkout", "baseline": f"{args.rev} ({commit})"}
    section = Section(
        key="ab",
        title=f"Background.submit, A/B: {args.rounds} rounds of {args.tasks:,} no-op tasks",
        columns=["engine", "µs per submit", "µs min-max", "no-op tasks/s", "tasks/s min-max"],
        rows=[
            [
                labels[name],
                round(median(submit[name]), 2),
                f"{min(submit[name]):.2f}-{max(submit[name]):.2f}",
                round(median(rate[name])),
                f"{min(rate[name]):,.0f}-{max(rate[name]):,.0f}",
            ]
            for name in ("ours", "baseline")
        ],
    )
    print(text_table(section))
    for figure, values in ratios.items():
        print(
            f"  {figure}, this checkout / baseline, round by round: median {median(values):.3f}, "
            f"min-max {min(values):.3f}-{max(values):.3f}"
        )
    print(f"({time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    main()
