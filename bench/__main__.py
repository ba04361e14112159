"""``python -m bench`` (``make bench``): every benchmark, side by side, in one run.

Prints each table, writes ``bench/results/latest.json`` and ``latest.md``, and draws
``docs/bench.png``. ``--quick`` is a short smoke run; ``--only KEY`` runs some sections;
``--update-docs`` also copies the Markdown into docs/benchmarks.md between its bench
markers; ``--render`` only redraws the Markdown, the chart (and the page) from ``latest.json``;
``--baseline REV`` sets the git revision whose ``Background.submit`` the submission table
measures beside ours (``--baseline ''``: none); ``--million`` adds ThreadPoolExecutor to the
scale section's queued submission at 1,000,000 tasks.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import time
from pathlib import Path
from typing import Any

from bench.machine import describe
from bench.report import markdown_table, text_table
from bench.section import Section, section_from_dict
from bench.submission import BASELINE

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CHART = ROOT / "docs" / "bench.png"
PAGE = ROOT / "docs" / "benchmarks.md"
MARKERS = ("<!-- bench:start -->", "<!-- bench:end -->")
# Section key -> module; the Dask row needs the `dask` extra.
MODULES = {
    "submission": "bench.submission",
    "scale": "bench.scale",
    "memory": "bench.memory",
    "handler": "bench.handler",
    "isolation": "bench.isolation",
    "shutdown": "bench.shutdown",
    "dask": "bench.dask_cluster",
}
NEEDS = {"dask": "distributed"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--only", action="append", choices=list(MODULES), help="repeatable")
    parser.add_argument("--update-docs", action="store_true", help="copy into " + str(PAGE))
    parser.add_argument("--render", action="store_true", help="from latest.json, measure nothing")
    parser.add_argument(
        "--baseline",
        default=BASELINE,
        metavar="REV",
        help="the git revision of the engine whose plain submit is measured beside ours "
        "(default: %(default)s, before task options; '' for none)",
    )
    parser.add_argument(
        "--million",
        action="store_true",
        help="ThreadPoolExecutor's queued submission at 1,000,000 tasks too (about 25 s more)",
    )
    args = parser.parse_args()
    if args.render:
        data = json.loads((RESULTS / "latest.json").read_text())
        rendered = [section_from_dict(s) for s in data["sections"]]
        write(rendered, data["machine"], json_too=False)
        if args.update_docs:
            update_page(markdown(rendered, data["machine"]))
        return
    started = time.monotonic()
    machine = describe()
    print(f"{machine['summary']}\n")
    sections: list[Section] = []
    seconds: dict[str, float] = {}
    for key, module in MODULES.items():
        if args.only and key not in args.only:
            continue
        if key in NEEDS and importlib.util.find_spec(NEEDS[key]) is None:
            print(f"(skipped {key}: needs {NEEDS[key]}, from `pip install -e '.[dask]'`)\n")
            continue
        t0 = time.monotonic()
        run = importlib.import_module(module).run
        if key == "submission":
            section: Section = run(args.quick, args.baseline)
        elif key == "scale":
            section = run(args.quick, args.million)
        else:
            section = run(args.quick)
        seconds[key] = round(time.monotonic() - t0, 1)
        sections.append(section)
        print(f"{text_table(section)}\n  ({seconds[key]:.0f} s)\n", flush=True)
    machine["seconds"] = {**seconds, "total": round(time.monotonic() - started, 1)}
    machine["quick"] = args.quick
    write(sections, machine)
    if args.update_docs:
        update_page(markdown(sections, machine))
    print(f"done in {machine['seconds']['total']:.0f} s: {RESULTS / 'latest.md'}, {CHART}")


def markdown(sections: list[Section], machine: dict[str, Any]) -> str:
    parts = [f"Measured on {machine['date']}: {machine['summary']}."]
    if machine["quick"]:
        parts.append("**A quick smoke run: too short for figures to be trusted.**")
    for number, section in enumerate(sections, 1):
        parts += [f"#### {number}. {section.title}", markdown_table(section)]
    return "\n\n".join(parts) + "\n"


def write(sections: list[Section], machine: dict[str, Any], *, json_too: bool = True) -> None:
    from bench.chart import draw

    RESULTS.mkdir(parents=True, exist_ok=True)
    if json_too:
        data = {"machine": machine, "sections": [s.as_dict() for s in sections]}
        text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
        (RESULTS / "latest.json").write_text(text)
    (RESULTS / "latest.md").write_text(markdown(sections, machine))
    draw(sections, machine, CHART)


def update_page(text: str) -> None:
    page = PAGE.read_text()
    start, end = (page.index(m) for m in MARKERS)
    PAGE.write_text(page[: start + len(MARKERS[0])] + "\n" + text + page[end:])


if __name__ == "__main__":
    main()
