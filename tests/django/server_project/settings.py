"""Settings of the Django project that tests/django/test_servers.py runs under real servers.

Configuration comes from the environment (see tests/servers/app_support.py):

- ``BACKGROUND_WORKERS``, ``BACKGROUND_DRAIN_TIMEOUT``: the default backend's ``OPTIONS``
  ``workers`` and ``drain_timeout``;
- ``BACKGROUND_SIGTERM_HANDLER``: the setting of that name (``true`` or ``false``);
- ``SERVER_APP_OUT``: the file each task appends ``"<pid> <i>\\n"`` to;
- ``SERVER_APP_RELOAD``: a file the autoreloader watches too (touch it to reload).
"""

from __future__ import annotations

import importlib.util

import app_support

config = app_support.background_config()
BACKPORT = importlib.util.find_spec("django.tasks") is None  # Django 5.2: django-tasks

SECRET_KEY = "tests/django/server_project"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = [*(["django_tasks"] if BACKPORT else []), "django_background"]
MIDDLEWARE = ["django_background.QueueFullMiddleware"]
ROOT_URLCONF = "urls"
WSGI_APPLICATION = "wsgi.application"
DATABASES: dict[str, object] = {}
USE_TZ = True

TASKS = {
    "default": {
        "BACKEND": "django_background.BackgroundBackend",
        "OPTIONS": {
            "workers": config.get("BACKGROUND_WORKERS", 4),
            "drain_timeout": config.get("BACKGROUND_DRAIN_TIMEOUT", 5.0),
        },
    }
}
BACKGROUND_SIGTERM_HANDLER = config.get("BACKGROUND_SIGTERM_HANDLER", False)

# The library's records as the harness reads them, "[WARNING] background: ...", and the
# autoreloader's "... changed, reloading." (Django logs it only with DEBUG otherwise).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "[%(levelname)s] %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        name: {"handlers": ["stderr"], "level": "INFO", "propagate": False}
        for name in ("background", "django.utils.autoreload")
    },
}
