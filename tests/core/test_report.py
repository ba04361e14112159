"""`_report`: what the library's log lines look like where nobody configured logging
(a server configures loggers of its own, not the root one), and that they appear once
where somebody did."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import run_script

FAIL_ONCE = """
    from background_core import Background

    def explode(password):
        raise ValueError("boom")

    with Background(1, name="mail") as bg:
        bg.submit(explode, "hunter2")  # fired and forgotten
"""


def test_records_show_their_level_and_logger_where_nothing_is_configured(
    tmp_path: Path,
) -> None:
    proc = run_script(tmp_path, FAIL_ONCE)
    assert proc.returncode == 0, proc.stderr
    first = proc.stderr.splitlines()[0]
    # Python's last-resort handler would print the message alone.
    assert re.fullmatch(
        r"\[\d{4}-\d\d-\d\d [\d:,]+\] \[\d+\] \[ERROR\] background: "
        r"task 'explode' \(id 1\) in pool 'mail' failed",
        first,
    ), proc.stderr
    assert proc.stderr.count("Traceback") == 1
    assert "hunter2" not in proc.stderr


def test_records_appear_once_where_the_app_configured_logging(tmp_path: Path) -> None:
    proc = run_script(
        tmp_path,
        "import logging\n"
        "logging.basicConfig(format='APP %(levelname)s %(name)s %(message)s')\n"
        + FAIL_ONCE.replace("\n    ", "\n"),
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "failed" in line]
    assert lines == ["APP ERROR background task 'explode' (id 1) in pool 'mail' failed"]
