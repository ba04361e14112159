"""Django adapter of `background`: a backend for Django's tasks framework.

    # settings.py
    TASKS = {
        "default": {
            "BACKEND": "django_background.BackgroundBackend",
            "OPTIONS": {"workers": 8},
        }
    }

    # tasks.py
    from django.tasks import task          # Django 5.2: from django_tasks import task

    @task
    def send_welcome(user_id: int) -> None: ...

    # views.py
    result = send_welcome.enqueue(user.id)  # runs in a background thread of this process

    # asgi.py, under uvicorn: drain the pools at the server's shutdown
    application = django_background.lifespan(get_asgi_application())

Django 6's ``django.tasks``, or on Django 5.2 the ``django-tasks`` backport: the same API.
"""

from __future__ import annotations

from background_core import __version__ as __version__

from . import _compat  # noqa: F401  (first: the one check that Django's tasks API is installed)
from ._backend import BackgroundBackend as BackgroundBackend
from ._lifespan import lifespan as lifespan
from ._middleware import QueueFullMiddleware as QueueFullMiddleware

__all__ = ("BackgroundBackend", "QueueFullMiddleware", "lifespan")
