"""Take docs/demo.png and docs/demo-phone.png: the real page in headless Chromium, at a
desktop's width and a phone's (390 px), while a burst drains (some of its emails retried)
and a reminder waits.

Run from the repository's root: ``.venv/bin/python -m tests.demo.screenshot docs/demo.png``
(`make demo-screenshot`); the phone's picture goes beside it, as ``demo-phone.png``. Needs
Debian's chromium and Playwright, as the browser test does, which runs this too.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright

from .browser import ARGS, CHROMIUM, DESKTOP, MISSING, PHONE
from .demo_process import running_demo

SCROLLS_SIDEWAYS = (
    "document.documentElement.scrollWidth > window.innerWidth"
    " ? document.documentElement.scrollWidth : 0"
)
"""How wide the page is when it scrolls sideways (else 0)."""


def phone_path(desktop: Path) -> Path:
    """Where the phone's picture goes: beside `desktop`, ``demo.png`` -> ``demo-phone.png``."""
    return desktop.with_name(f"{desktop.stem}-phone{desktop.suffix}")


def take(desktop: Path, framework: str = "fastapi") -> tuple[Path, Path]:
    """Serve the demo with `framework`, and write the desktop's picture to `desktop` and
    the phone's beside it. Returns both paths.

    Raises:
        SystemExit: Chromium is missing, or the page scrolls sideways on the phone.
    """
    if not CHROMIUM.exists():
        raise SystemExit(MISSING)
    phone = phone_path(desktop)
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_demo(Path(tmp), framework) as demo,
        sync_playwright() as driver,
    ):
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            on_desktop = _open(browser, demo.url, DESKTOP, mobile=False)
            on_phone = _open(browser, demo.url, PHONE, mobile=True)
            _send(on_phone, "grace@example.com", "Welcome aboard", "Sent from a phone.")
            _send(
                on_desktop,
                "ada@example.com",
                "Your receipt, order #1042",
                "Thanks for your order! Sent after the request was answered.",
            )
            on_desktop.fill("#delay", "90")
            on_desktop.click("#remind")
            expect(on_desktop.locator("#send-message")).to_contain_text("is scheduled: it is")
            on_desktop.fill("#count", "1000")
            on_desktop.click("#burst")
            on_desktop.wait_for_function(
                "Number(document.getElementById('stat-sent').textContent) >= 350"
            )
            on_desktop.screenshot(path=str(desktop), full_page=True)
            on_phone.screenshot(path=str(phone), full_page=True)
            too_wide = on_phone.evaluate(SCROLLS_SIDEWAYS)
        finally:
            browser.close()
    if too_wide:
        raise SystemExit(
            f"the page is {too_wide} px wide on a {PHONE['width']} px phone: it scrolls "
            "sideways; fix demo_app/page.html's layout for narrow screens"
        )
    return desktop, phone


def _open(browser: Browser, url: str, viewport: dict[str, int], *, mobile: bool) -> Page:
    context = browser.new_context(
        viewport={"width": viewport["width"], "height": viewport["height"]},
        is_mobile=mobile,
        has_touch=mobile,
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(url)
    return page


def _send(page: Page, to: str, subject: str, body: str) -> None:
    page.fill("#to", to)
    page.fill("#subject", subject)
    page.fill("#body", body)
    page.click("#send")
    expect(page.locator("#send-message")).to_contain_text("was sent")


def main(argv: list[str]) -> None:
    for path in take(Path(argv[0] if argv else "docs/demo.png")):
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
