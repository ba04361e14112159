"""The demo of `background`: emails sent from request handlers, in FastAPI, Flask and Django.

``python -m demo_app`` serves one page and a small JSON API. Each accepted email becomes
a task on the app's `background_core.Background` pool (for Django, a Django task that
`django_background`'s backend runs on its pool), which sends it over SMTP; the page shows
the pool's live stats and, with the embedded SMTP server, what it received.

Modules: `mail` (SMTP settings, message, sending), `sink` (the embedded SMTP server),
`payloads` (request validation), `api` (what the apps do), `outbox` (the emails accepted,
by id), `page` (the HTML page), `fastapi_app`, `flask_app`, `django_app` and
`django_views` (framework glue), `servers` (uvicorn, gunicorn), `telemetry` (``--otel``:
OpenTelemetry's SDK), `cli`.
"""
