"""``gunicorn wsgi:application``; ``manage.py runserver`` finds it through the settings."""

from __future__ import annotations

import os
import sys

from django.core.wsgi import get_wsgi_application

LOADED = "wsgi: application loaded"  # the tests wait until each worker says it

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
application = get_wsgi_application()
sys.stderr.write(f"{LOADED} in {os.getpid()}\n")
