"""Take docs/demo.png: the real page in headless Chromium, while a burst drains.

Run from the repository's root: ``.venv/bin/python -m tests.demo.screenshot docs/demo.png``
(needs Debian's chromium and Playwright, as the browser test does).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from .browser import ARGS, CHROMIUM, MISSING
from .demo_process import running_demo


def main(out: Path) -> None:
    if not CHROMIUM.exists():
        raise SystemExit(MISSING)
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_demo(Path(tmp), "fastapi") as demo,
        sync_playwright() as driver,
    ):
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            page.goto(demo.url)
            page.fill("#to", "ada@example.com")
            page.fill("#subject", "Your receipt, order #1042")
            page.fill("#body", "Thanks for your order! Sent after the request was answered.")
            page.click("#send")
            expect(page.locator("#stat-sent")).to_have_text("1")
            page.fill("#count", "1000")
            page.click("#burst")
            page.wait_for_function(
                "Number(document.getElementById('stat-sent').textContent) >= 350"
            )
            page.screenshot(path=str(out), full_page=True)
        finally:
            browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/demo.png"))
