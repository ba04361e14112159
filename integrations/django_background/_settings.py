"""The setting of the ``django_background`` app, ``BACKGROUND_SIGTERM_HANDLER``: read,
checked, and reported by Django's checks where nothing would read it."""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

APP = "django_background"
SIGTERM_SETTING = "BACKGROUND_SIGTERM_HANDLER"


def sigterm_handler_wanted() -> bool:
    """``BACKGROUND_SIGTERM_HANDLER`` (False when unset).

    Raises:
        ImproperlyConfigured: It is not True or False.
    """
    wanted = getattr(settings, SIGTERM_SETTING, False)
    if not isinstance(wanted, bool):
        raise ImproperlyConfigured(
            f"{SIGTERM_SETTING} must be True or False, got {type(wanted).__name__}"
        )
    return wanted


def unread_settings() -> list[str]:
    """What the settings ask for that nothing would do: the SIGTERM handler is installed
    by the app's ``ready()``, which runs only with the app in ``INSTALLED_APPS``."""
    if getattr(settings, SIGTERM_SETTING, False) is True and not apps.is_installed(APP):
        return [
            f"{SIGTERM_SETTING} = True, but {APP!r} is not in INSTALLED_APPS, whose app "
            f"installs the handler: add it, or a SIGTERM may end the process with tasks "
            "still queued."
        ]
    return []
