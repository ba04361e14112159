"""The demo's page in headless Chromium: fill the form, send, watch the stats move and the
email arrive in the inbox; send a burst and watch it drain."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .browser import ARGS, CHROMIUM, MISSING
from .demo_process import running_demo

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=MISSING)

playwright = pytest.importorskip(
    "playwright.sync_api", reason="needs Playwright: make test installs it (the dev group)"
)
expect = playwright.expect

# Records each value a stat tile showed, as the page's script updates it.
WATCH = """(ids) => {
  window.seen = {};
  for (const id of ids) {
    window.seen[id] = [];
    const tile = document.getElementById(id);
    new MutationObserver(() => window.seen[id].push(Number(tile.textContent)))
      .observe(tile, { childList: true, characterData: true, subtree: true });
  }
}"""


@pytest.mark.parametrize("framework", ["fastapi", "flask"])
def test_the_page_sends_an_email_and_shows_the_stats_and_the_inbox(
    tmp_path: Path, framework: str
) -> None:
    with (
        running_demo(tmp_path, framework, "--threads", "2") as demo,
        playwright.sync_playwright() as driver,
    ):
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.goto(demo.url)
            expect(page.locator("#stat-workers")).to_have_text("2")
            expect(page.locator("#about")).to_contain_text("embedded aiosmtpd server")
            page.evaluate(WATCH, ["stat-sent", "stat-submitted", "stat-queued"])

            page.fill("#to", "reader@example.com")
            page.fill("#subject", "Sent from Chromium ✓")
            page.fill("#body", "Grüße from the browser test.")
            page.click("#send")

            expect(page.locator("#send-message")).to_contain_text("Accepted (202)")
            expect(page.locator("#stat-sent")).to_have_text("1")
            expect(page.locator("#stat-submitted")).to_have_text("1")
            newest = page.locator("#inbox tbody tr").first
            expect(newest).to_contain_text("Sent from Chromium ✓")
            expect(newest).to_contain_text("reader@example.com")
            expect(newest).to_contain_text("Grüße from the browser test.")

            page.fill("#to", "not-an-address")
            page.click("#send")
            expect(page.locator("#send-message")).to_contain_text(
                "422: to is not a valid email address"
            )
            expect(page.locator("#to")).to_have_class(re.compile(r"\binvalid\b"))

            page.fill("#to", "burst@example.com")
            page.fill("#count", "300")
            page.click("#burst")
            expect(page.locator("#burst-message")).to_contain_text("300 emails queued")
            expect(page.locator("#stat-sent")).to_have_text("301", timeout=30_000)
            expect(page.locator("#stat-queued")).to_have_text("0")
            expect(page.locator("#inbox tbody tr").first).to_contain_text("of 300")
            seen = page.evaluate("window.seen")
        finally:
            browser.close()

    assert seen["stat-submitted"][-1] == 301
    # The page showed the burst draining: emails waiting, and some sent but not all.
    assert max(seen["stat-queued"]) > 0, seen
    assert any(1 < sent < 301 for sent in seen["stat-sent"]), seen
