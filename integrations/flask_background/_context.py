"""What a task of a Flask pool runs inside: a fresh app context of the pool's app.

Built in the worker, not at submission: the task gets its own `g`, and the app's
`teardown_appcontext` functions run when it ends (so a Flask-SQLAlchemy session is
removed). With ``BACKGROUND_COPY_REQUEST``, a task submitted during one of the app's
requests runs in a request context rebuilt from that request's WSGI environ: URL, method,
headers, query string and cookies, but no body, which belongs to the request and may be
gone.
"""

from __future__ import annotations

import io
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import Any

import flask.globals
from flask import Flask, current_app, has_request_context, request
from flask.ctx import AppContext

# The submitter's app and request contexts must not reach the task through the contextvars
# it inherits: a request object outlives its response there. (Flask keeps them in these
# variables; a Flask that drops one simply has nothing to exclude.)
FLASK_CONTEXTVARS: tuple[ContextVar[Any], ...] = tuple(
    var
    for var in (
        getattr(flask.globals, "_cv_app", None),
        getattr(flask.globals, "_cv_request", None),
    )
    if isinstance(var, ContextVar)
)

_GONE = "the Flask app of this background pool no longer exists"

# The environ entries a copied request keeps: the CGI variables and the URL scheme.
_WSGI_KEPT = ("wsgi.url_scheme",)


def task_context(app: Flask, *, copy_request: bool) -> Callable[[], AbstractContextManager[object]]:
    """The pool's capturer: `app`'s context, with a copy of its request if asked."""
    own = weakref.ref(app)
    contexts = _AppContexts(own)  # one for every task: a submission allocates nothing here

    def capture() -> AbstractContextManager[object]:
        served = own()
        if served is None:
            raise RuntimeError(_GONE)
        if (
            copy_request and has_request_context() and current_app._get_current_object() is served  # type: ignore[attr-defined]
        ):
            return _RequestContext(served, _copy_environ(request.environ))
        return contexts

    return capture


# Context managers that build Flask's contexts when the worker enters them, not before.

# The app contexts a task entered, innermost last: per task, as each runs in its own context.
_ENTERED: ContextVar[tuple[AppContext, ...]] = ContextVar("flask_background_entered", default=())


class _AppContexts:
    """Enters a fresh app context of the app around each task, in whichever thread.

    One serves every task of a pool (reentrant, thread-safe): it holds the app weakly, so
    the pool's threads never keep the app alive, and submissions allocate nothing for it.
    What it entered is kept in a context variable, not per thread: each task, and each
    ``async def`` task interleaved with others on the pool's loop, runs in a context of
    its own, so tasks never pop each other's app context.
    """

    __slots__ = ("_app",)

    def __init__(self, app: weakref.ref[Flask]) -> None:
        self._app = app

    def __enter__(self) -> None:
        app = self._app()
        if app is None:
            raise RuntimeError(_GONE)
        context = app.app_context()
        context.push()
        _ENTERED.set((*_ENTERED.get(), context))

    def __exit__(self, *exc_info: object) -> None:
        *rest, context = _ENTERED.get()
        _ENTERED.set(tuple(rest))
        context.pop(exc_info[1] if isinstance(exc_info[1], BaseException) else None)


class _RequestContext:
    """A copy of the request, pushed anew at each use (a retried task enters it again)."""

    def __init__(self, app: Flask, environ: dict[str, Any]) -> None:
        self._app = app
        self._environ = environ
        self._pushed: list[Any] = []

    def __enter__(self) -> None:
        context = self._app.request_context(self._environ)
        context.push()
        self._pushed.append(context)

    def __exit__(self, *exc_info: object) -> None:
        self._pushed.pop().pop(exc_info[1] if isinstance(exc_info[1], BaseException) else None)


def _copy_environ(environ: dict[str, Any]) -> dict[str, Any]:
    copied = {k: v for k, v in environ.items() if k.isupper() or k in _WSGI_KEPT}
    copied.update(
        {
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": io.StringIO(),
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "CONTENT_LENGTH": "0",
        }
    )
    return copied
