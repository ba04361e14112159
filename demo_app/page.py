"""The demo's one page: a form (send now, or later as a reminder), a burst button, the
pool's live stats, and the inbox; and its icon.

The page is static HTML with a script that polls ``GET /stats`` (every 150 ms while a
burst drains, else every second), ``GET /inbox``, and ``GET /emails/{id}`` for the email
the form sent until it is sent or failed; only the configuration rows are filled in
here. Everything the script shows from the server goes in as text, never HTML.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Iterable
from importlib import resources

FAVICON_TYPE = "image/svg+xml"
"""The icon's media type: an SVG, served at ``/favicon.ico`` (browsers go by the type)."""


@functools.cache
def _template() -> str:
    return resources.files("demo_app").joinpath("page.html").read_text(encoding="utf-8")


@functools.cache
def favicon() -> bytes:
    """The page's icon, an SVG (`FAVICON_TYPE`)."""
    return resources.files("demo_app").joinpath("favicon.svg").read_bytes()


def render(about: Iterable[tuple[str, str]], *, inbox: bool) -> str:
    """The page, with `about` as its configuration rows (escaped).

    `inbox` says whether ``GET /inbox`` has an inbox to show.
    """
    rows = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
        for label, value in about
    )
    return _template().replace("{{about}}", rows).replace("{{inbox}}", "true" if inbox else "false")
