"""The docs: the site builds with warnings as errors, and the README's links lead somewhere.

`mkdocs build --strict` fails on a broken link or anchor, a page missing from the
navigation, and a docstring that griffe cannot parse (mkdocs.yml asks for all of them).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

# [text](target) and ![alt](target), up to a title or the closing parenthesis.
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)')
# Fenced code blocks hold no links, only text that may look like one.
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)


def test_the_site_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="the docs group needs Python 3.11 (mkdocs-material)")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=50, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{output}"
    assert "WARNING" not in output, output
    for page in ("index.html", "reference/background_core/index.html", "benchmarks/index.html"):
        assert (tmp_path / page).is_file(), page


def relative_links(markdown: str) -> list[str]:
    targets = LINK.findall(FENCE.sub("", markdown))
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:|#", t)]


def test_every_relative_link_in_the_readme_leads_to_a_file() -> None:
    links = relative_links((ROOT / "README.md").read_text())
    assert links, "the README links into docs/"
    missing = [link for link in links if not (ROOT / link.split("#")[0]).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_the_link_finder_sees_links_and_skips_the_rest() -> None:
    text = (
        "[a](docs/a.md) ![b](docs/b.png) [c](docs/c.md#part) [d](https://example.com/) "
        '[e](#top) [h](docs/h.md "title")\n'
        "```python\nx = f[0](docs/not-a-link.md)\n```\n"
    )
    assert relative_links(text) == ["docs/a.md", "docs/b.png", "docs/c.md#part", "docs/h.md"]
