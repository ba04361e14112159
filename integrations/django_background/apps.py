"""The ``django_background`` app: what runs at Django's startup, in every process that
sets Django up (``INSTALLED_APPS = [..., "django_background"]``)."""

from __future__ import annotations

from django.apps import AppConfig

from ._lifecycle import guard_sigterm


class BackgroundConfig(AppConfig):  # type: ignore[misc]
    """Installs the SIGTERM handler with ``BACKGROUND_SIGTERM_HANDLER = True``, for servers
    that install none (``manage.py runserver --noreload``, waitress); otherwise logs a
    WARNING under a server known to end the process at once on SIGTERM.

    Pools are not started here: Django is set up in processes that never serve (the
    autoreloader's parent, gunicorn's master with ``--preload``). They start at first
    use, or at an ASGI server's startup with `django_background.lifespan`.
    """

    name = "django_background"
    verbose_name = "Background tasks"

    def ready(self) -> None:
        guard_sigterm()
