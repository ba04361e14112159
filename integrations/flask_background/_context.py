"""What a task of a Flask pool runs inside: a fresh app context of the submitting app.

Built in the worker, not at submission: the task gets its own `g`, and the app's
`teardown_appcontext` functions run when it ends (so a Flask-SQLAlchemy session is
removed). With ``BACKGROUND_COPY_REQUEST``, a task submitted during a request runs in a
request context rebuilt from that request's WSGI environ: URL, method, headers, query
string and cookies, but no body, which belongs to the request and may be gone.
"""

from __future__ import annotations

import io
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from flask import Flask, current_app, has_app_context, has_request_context, request
from flask.globals import _cv_app, _cv_request

# Environ entries that belong to the live request and must not travel.
_LIVE_ONLY = ("wsgi.input", "wsgi.errors", "werkzeug.request", "werkzeug.socket")


class TaskContext:
    """Capturers for a Flask pool (see `background_core.Background(capturer=...)`)."""

    # The submitter's app and request contexts must not leak into the task through the
    # contextvars it inherits: a request object outlives its response there.
    FLASK_CONTEXTVARS = (_cv_app, _cv_request)

    @staticmethod
    def capturer(app: Flask, *, copy_request: bool) -> Callable[[], AbstractContextManager[object]]:
        """The pool's capturer: the current app (else `app`), and the request if asked."""
        own = weakref.ref(app)

        def capture() -> AbstractContextManager[object]:
            if has_app_context():
                submitting: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
                if copy_request and has_request_context():
                    return _request_context(submitting, _copy_environ(request.environ))
                return _app_context(submitting)
            served = own()
            if served is None:
                raise RuntimeError("the Flask app of this background pool no longer exists")
            return _app_context(served)

        return capture


@contextmanager
def _app_context(app: Flask) -> Iterator[None]:
    with app.app_context():
        yield


@contextmanager
def _request_context(app: Flask, environ: dict[str, Any]) -> Iterator[None]:
    with app.request_context(environ):
        yield


def _copy_environ(environ: dict[str, Any]) -> dict[str, Any]:
    copied = {k: v for k, v in environ.items() if k not in _LIVE_ONLY}
    copied["wsgi.input"] = io.BytesIO()
    copied["wsgi.errors"] = io.StringIO()
    copied["CONTENT_LENGTH"] = "0"
    return copied
