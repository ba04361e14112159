"""The demo as `make demo` starts it, stopped while a burst drains: every accepted email
arrives at the test's SMTP server, and the demo exits within its drain deadline."""

from __future__ import annotations

import re
import signal
import sys
import time
from pathlib import Path

import pytest

from .demo_process import running_demo
from .smtp_server import smtp_server

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals, gunicorn")

DRAIN = 10.0  # --drain-timeout
MARGIN = 5.0  # seconds the server may take beyond the drain deadline to exit
BURST = 200

# uvicorn (FastAPI, Django) re-raises the signal once its lifespan drained the pool:
# SIGTERM then ends the process; Ctrl-C becomes a KeyboardInterrupt that uvicorn.run()
# swallows. gunicorn's master exits with 0.
EXIT_STATUS = {
    ("fastapi", signal.SIGTERM): -signal.SIGTERM,
    ("fastapi", signal.SIGINT): 0,
    ("flask", signal.SIGTERM): 0,
    ("flask", signal.SIGINT): 0,
    ("django", signal.SIGTERM): -signal.SIGTERM,
    ("django", signal.SIGINT): 0,
}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
@pytest.mark.parametrize("framework", ["fastapi", "flask", "django"])
def test_stopping_mid_burst_delivers_every_accepted_email(
    tmp_path: Path, framework: str, signum: signal.Signals
) -> None:
    options = ("--threads", "4", "--drain-timeout", str(DRAIN))
    with (
        smtp_server() as smtp,
        running_demo(tmp_path, framework, "--smtp-url", smtp.url, *options) as demo,
    ):
        banner = demo.output()
        smtp.recorder.hold()  # nothing arrives before the signal
        status, reply = demo.request(
            "POST", "/emails/bulk", {"to": "b@example.com", "count": BURST}
        )
        assert (status, reply["queued"]) == (202, BURST), reply
        before = demo.stats()
        sent_at = demo.signal(signum)
        smtp.recorder.release()
        code = demo.wait(DRAIN + MARGIN)
        elapsed = time.monotonic() - sent_at
        arrived = smtp.recorder.wait_for(BURST, timeout=5)
        output = demo.output()

    assert f"open http://127.0.0.1:{demo.port}/" in banner
    assert "4 worker threads" in banner
    assert f"smtp://127.0.0.1:{smtp.port}" in banner
    assert before["succeeded"] == 0
    assert before["queued"] + before["running"] == BURST
    subjects = {a.subject for a in arrived}
    [burst] = {subject.split(":")[0] for subject in subjects}
    assert re.fullmatch(r"Burst [0-9a-f]{6}", burst)
    assert subjects == {f"{burst}: {i} of {BURST}" for i in range(1, BURST + 1)}
    assert len(arrived) == BURST, "an email arrived twice"
    assert f"stopped: {BURST} emails sent, 0 failed" in output, output
    assert "Traceback" not in output, output
    assert elapsed < DRAIN + MARGIN, (elapsed, output)
    assert code == EXIT_STATUS[framework, signum], output
    print(f"{framework} {signum.name}: exited {code} {elapsed:.2f}s after the signal")
