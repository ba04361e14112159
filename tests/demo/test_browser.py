"""The demo's page in headless Chromium: fill the form, send, watch the stats move and the
email arrive in the inbox; send a burst and watch it drain; watch an email retried and a
reminder scheduled then sent; the same on a phone's screen. One Chromium serves the
module; `test_screenshot` starts its own, as `make demo-screenshot` does."""

from __future__ import annotations

import itertools
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .browser import ARGS, CHROMIUM, MISSING, PHONE
from .demo_process import running_demo
from .smtp_server import smtp_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=MISSING)

playwright = pytest.importorskip(
    "playwright.sync_api", reason="needs Playwright: make test installs it (the dev group)"
)
expect = playwright.expect

SENT = re.compile(r"Accepted \(202\): email ([0-9a-f]{16}) was sent\.")

# Records each value a stat tile showed, and each label of the pool's state, as the page's
# script updates them.
WATCH = """(ids) => {
  window.seen = {};
  for (const id of ids) {
    window.seen[id] = [];
    const tile = document.getElementById(id);
    new MutationObserver(() => window.seen[id].push(Number(tile.textContent)))
      .observe(tile, { childList: true, characterData: true, subtree: true });
  }
  const online = document.getElementById("online");
  window.seen.online = [online.textContent];
  new MutationObserver(() => window.seen.online.push(online.textContent))
    .observe(online, { childList: true, characterData: true, subtree: true });
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module (about 2.5 s to start); each test gets a
    browser context of its own, which shares nothing with the others'."""
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def page_of(browser: Browser, url: str, **context: Any) -> Iterator[Page]:
    """A page in a fresh browser context (made with `context`) at `url`."""
    made = browser.new_context(**context)
    try:
        page = made.new_page()
        page.set_default_timeout(15_000)
        page.goto(url)
        yield page
    finally:
        made.close()


def send_and_follow(page: Page, to: str, subject: str, body: str) -> str:
    """Send an email from the form and wait until the page says it was sent; its id."""
    page.fill("#to", to)
    page.fill("#subject", subject)
    page.fill("#body", body)
    page.click("#send")
    # The page follows its email to the end, by the id it was given.
    message = page.locator("#send-message")
    expect(message).to_have_text(SENT)
    sent = SENT.fullmatch(message.text_content() or "")
    assert sent is not None
    return sent[1]


@pytest.mark.parametrize("framework", ["fastapi", "flask"])
def test_the_page_sends_an_email_and_shows_the_stats_and_the_inbox(
    tmp_path: Path, framework: str, browser: Browser
) -> None:
    with (
        running_demo(tmp_path, framework, "--threads", "2") as demo,
        page_of(browser, demo.url) as page,
    ):
        expect(page.locator("#stat-workers")).to_have_text("2")
        expect(page.locator("#about")).to_contain_text("embedded aiosmtpd server")
        page.evaluate(WATCH, ["stat-sent", "stat-submitted", "stat-queued"])

        email_id = send_and_follow(
            page, "reader@example.com", "Sent from Chromium ✓", "Grüße from the browser test."
        )
        assert demo.request("GET", f"/emails/{email_id}") == (
            200,
            {"id": email_id, "status": "sent", "error": None},
        )
        expect(page.locator("#stat-sent")).to_have_text("1")
        expect(page.locator("#stat-submitted")).to_have_text("1")
        newest = page.locator("#inbox tbody tr").first
        expect(newest).to_contain_text("Sent from Chromium ✓")
        expect(newest).to_contain_text("reader@example.com")
        expect(newest).to_contain_text("Grüße from the browser test.")
        expect(page.locator("#inbox-count")).to_have_text("(1 received)")

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
        expect(page.locator("#online")).to_have_text("● live")
        expect(page.locator("#inbox tbody tr").first).to_contain_text("of 300")
        # The embedded server keeps the last 100; the page shows the newest 12.
        expect(page.locator("#inbox-count")).to_have_text(
            "(301 received; showing the newest 12 of the last 100 kept)"
        )
        expect(page.locator("#inbox tbody tr")).to_have_count(12)
        seen = page.evaluate("window.seen")

        demo.signal(signal.SIGTERM)  # a label of its own once the server stops
        expect(page.locator("#online")).to_have_text("● server stopped")

    assert seen["stat-submitted"][-1] == 301
    # The page showed the burst draining: emails waiting, and some sent but not all.
    assert max(seen["stat-queued"]) > 0, seen
    assert any(1 < sent < 301 for sent in seen["stat-sent"]), seen
    # A burst is ordinary work: the page says so, not that the server is shutting down.
    assert "● sending" in seen["online"], seen["online"]
    assert set(seen["online"]) <= {"● live", "● sending"}, seen["online"]


@pytest.mark.parametrize("framework", ["fastapi", "flask"])
def test_the_page_follows_its_email_to_failed_when_the_server_refuses_it(
    tmp_path: Path, framework: str, browser: Browser
) -> None:
    with (
        smtp_server(refuse=frozenset({"nobody@example.com"})) as smtp,
        running_demo(tmp_path, framework, "--smtp-url", smtp.url) as demo,
        page_of(browser, demo.url) as page,
    ):
        page.fill("#to", "nobody@example.com")
        page.click("#send")
        message = page.locator("#send-message")
        expect(message).to_have_text(
            re.compile(
                r"Accepted \(202\): email [0-9a-f]{16} failed \(SMTPRecipientsRefused\); "
                r"the server's log says why\."
            )
        )
        expect(message).to_have_class(re.compile(r"\berror\b"))
        expect(page.locator("#stat-failed")).to_have_text("1")


# The page is the same for each framework; Django's app has this one test of its own, where
# its own code shows on the page: retries (Django tasks that enqueue the next attempt) and
# a reminder (run_after). The rest of its API is tested by test_contract and test_http.
@pytest.mark.parametrize("framework", ["fastapi", "flask", "django"])
def test_the_page_shows_an_email_retried_and_a_reminder_scheduled_then_sent(
    tmp_path: Path, framework: str, browser: Browser
) -> None:
    # The embedded server refuses the first attempt of every email: each is retried once.
    with (
        running_demo(tmp_path, framework, "--smtp-refuse-share", "1") as demo,
        page_of(browser, demo.url) as page,
    ):
        expect(page.locator("#about")).to_contain_text(
            "refuses the first attempt of 100% of them with a temporary 451"
        )
        expect(page.locator(".tile span")).to_have_text(
            ["queued", "scheduled", "running", "sent", "retried", "failed"]
        )

        send_and_follow(page, "reader@example.com", "Refused once", "Then sent.")
        expect(page.locator("#stat-retried")).to_have_text("1")
        expect(page.locator("#stat-sent")).to_have_text("1")
        expect(page.locator("#stat-failed")).to_have_text("0")

        message = page.locator("#send-message")
        page.fill("#delay", "500")
        page.click("#remind")
        expect(message).to_have_text("422: delay must be a number of seconds from 0 to 300")
        expect(page.locator("#delay")).to_have_class(re.compile(r"\binvalid\b"))

        page.fill("#delay", "2")
        page.click("#remind")
        expect(message).to_have_text(
            re.compile(r"Accepted \(202\): email [0-9a-f]{16} is scheduled: it is sent in [12] s\.")
        )
        expect(page.locator("#stat-scheduled")).to_have_text("1")
        expect(page.locator("#delay")).not_to_have_class(re.compile(r"\binvalid\b"))
        expect(message).to_have_text(SENT)
        expect(page.locator("#stat-sent")).to_have_text("2")
        expect(page.locator("#stat-retried")).to_have_text("2")
        expect(page.locator("#stat-scheduled")).to_have_text("0")
        newest = page.locator("#inbox tbody tr").first
        expect(newest).to_contain_text("Refused once")  # the form's subject, unchanged
        expect(page.locator("#inbox-count")).to_have_text("(2 received, newest first)")


# Where each <section> (panel) of the page is, in the viewport.
PANELS = """() => [...document.querySelectorAll("main > section")].map((section) => {
  const box = section.getBoundingClientRect();
  return { left: box.left, right: box.right, top: box.top, bottom: box.bottom };
})"""


@pytest.mark.parametrize("framework", ["fastapi"])  # the page is the same for every framework
def test_on_a_phone_the_panels_stack_and_the_page_does_not_scroll_sideways(
    tmp_path: Path, framework: str, browser: Browser
) -> None:
    with (
        running_demo(tmp_path, framework, "--threads", "2") as demo,
        page_of(browser, demo.url, viewport=PHONE, is_mobile=True, has_touch=True) as page,
    ):
        expect(page.locator("#stat-workers")).to_have_text("2")
        page.fill("#to", "a-rather-long-address.for-a-phone@subdomain.example.com")
        page.fill("#subject", "S" * 200)  # one word, as wide as a subject may be
        page.fill("#body", "B" * 2000)
        page.click("#send")
        expect(page.locator("#send-message")).to_contain_text("Accepted (202)")
        page.fill("#count", "20")
        page.click("#burst")
        expect(page.locator("#stat-sent")).to_have_text("21", timeout=30_000)
        expect(page.locator("#inbox tbody tr").first).to_contain_text("of 20")
        widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        panels = page.evaluate(PANELS)

    scroll_width, inner_width = widths
    assert inner_width == PHONE["width"]
    assert scroll_width <= inner_width, "the page scrolls sideways"
    assert len(panels) == 3
    for panel in panels:
        assert 0 <= panel["left"] < panel["right"] <= inner_width, panels
    for above, below in itertools.pairwise(panels):
        assert above["bottom"] <= below["top"], f"panels side by side: {panels}"
