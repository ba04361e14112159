from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.urls import path
from django.utils.autoreload import BaseReloader, autoreload_started
from views import fire, pid

urlpatterns = [path("fire/<int:i>", fire), path("pid", pid)]


def watch_the_reload_file(sender: BaseReloader, **kwargs: Any) -> None:
    """Under the autoreloader, also watch ``SERVER_APP_RELOAD``: the tests touch it to
    reload, and never touch the checkout."""
    sender.extra_files.add(Path(os.environ["SERVER_APP_RELOAD"]))


if "SERVER_APP_RELOAD" in os.environ:
    autoreload_started.connect(watch_the_reload_file)
