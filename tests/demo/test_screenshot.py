"""The pictures `make demo-screenshot` takes: the demo's page on a desktop and on a phone.

A module of its own: `take` runs Playwright's sync API, which cannot start while another
module's Chromium (`test_browser`'s) is still running in this thread."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from .browser import CHROMIUM, DESKTOP, MISSING, PHONE

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=MISSING)

pytest.importorskip(
    "playwright.sync_api", reason="needs Playwright: make test installs it (the dev group)"
)

from .screenshot import take  # noqa: E402  (it needs Playwright, checked just above)


def png_size(path: Path) -> tuple[int, int]:
    """A PNG's width and height, from its header."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


@pytest.mark.parametrize("framework", ["fastapi"])  # the page is the same for every framework
def test_make_demo_screenshot_takes_the_page_on_a_desktop_and_on_a_phone(
    tmp_path: Path, framework: str
) -> None:
    desktop, phone = take(tmp_path / "demo.png", framework)

    assert phone == tmp_path / "demo-phone.png"
    width, height = png_size(desktop)
    assert width == DESKTOP["width"]
    assert height >= DESKTOP["height"]  # the full page
    width, height = png_size(phone)
    assert width == PHONE["width"]
    assert height >= PHONE["height"]
