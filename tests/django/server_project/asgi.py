"""``uvicorn asgi:application``: Django's ASGI application with the lifespan that drains
the pools at shutdown. ``asgi:django_application`` is Django's alone, which has none."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

import django_background

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
django_application = get_asgi_application()
application = django_background.lifespan(django_application)
