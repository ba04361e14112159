"""Headless Chromium for the demo's page: Debian's ``chromium``, driven by Playwright.

Playwright's own browser download is not used: the Debian package is launched by path.
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
