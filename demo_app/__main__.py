"""``python -m demo_app``: see `demo_app.cli`."""

from __future__ import annotations

from demo_app.cli import main

raise SystemExit(main())
