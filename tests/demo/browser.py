"""Headless Chromium for the demo's page: Debian's ``chromium``, driven by Playwright.

Playwright's own browser download is not used: the Debian package is launched by path.
This module imports no Playwright, so tests can skip without it.
"""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MISSING = (
    f"needs Debian's Chromium at {CHROMIUM}: "
    "sudo apt-get update && sudo apt-get install -y chromium"
)

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
"""The viewports the page is looked at in: a desktop's, and a phone's (CSS pixels)."""
