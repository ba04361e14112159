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
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import flask.globals
from flask import Flask, current_app, has_request_context, request
from flask.ctx import AppContext
from flask.signals import appcontext_popped, appcontext_pushed, appcontext_tearing_down


def _flask_variable(name: str) -> ContextVar[Any] | None:
    variable = getattr(flask.globals, name, None)
    return variable if isinstance(variable, ContextVar) else None


# Flask's variable of the current app context (Flask 2.3+), None in a Flask without it.
# Read directly where it counts: has_app_context() and current_app read it through a proxy.
APP_CONTEXT = _flask_variable("_cv_app")

# The submitter's app and request contexts must not reach the task through the contextvars
# it inherits: a request object outlives its response there. (A Flask that drops one of
# these variables simply has nothing to exclude.)
FLASK_CONTEXTVARS: tuple[ContextVar[Any], ...] = tuple(
    variable for variable in (APP_CONTEXT, _flask_variable("_cv_request")) if variable is not None
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

# What each task entered, innermost first: (app context, its token or None, what was
# there before). Per task, as each runs in its own context, `async def` ones included.
_ENTERED: ContextVar[tuple[Any, ...]] = ContextVar("flask_background_entered", default=())


def _replicates_push_and_pop() -> bool:
    """True if this Flask's `AppContext.push` and ``pop`` are the ones `_AppContexts`
    repeats (Flask 2.3 to 3.1: set or reset ``_cv_app``, send a signal, tear down once);
    any other Flask gets the plain push and pop."""
    try:
        major, minor = (int(part) for part in version("flask").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return False
    return APP_CONTEXT is not None and (2, 3) <= (major, minor) <= (3, 1)


LEAN = _replicates_push_and_pop()
"""Whether tasks push their app context the lean way (see `_AppContexts`)."""


class _AppContexts:
    """Enters a fresh app context of the app around each task, in whichever thread.

    One serves every task of a pool (reentrant, thread-safe): it holds the app weakly, so
    the pool's threads never keep the app alive, and submissions allocate nothing for it.
    What it entered is kept in a context variable, not per thread: each task, and each
    ``async def`` task interleaved with others on the pool's loop, runs in a context of
    its own, so tasks never pop each other's app context.

    Each task gets ``app.app_context()``, a fresh one (its own `g`), pushed and popped as
    Flask's ``push`` and ``pop`` do, minus what does nothing: a signal nobody receives,
    and a teardown with no function or receiver to call. That is most of the cost of an
    app context per task. An app whose class overrides ``app_context`` or
    ``do_teardown_appcontext``, and a Flask this was not checked against, get the plain
    ``push`` and ``pop``.
    """

    __slots__ = ("_app", "_lean")

    def __init__(self, app: weakref.ref[Flask]) -> None:
        self._app = app
        served = app()
        self._lean = LEAN and (
            served is not None
            and type(served).app_context is Flask.app_context
            and type(served).do_teardown_appcontext is Flask.do_teardown_appcontext
        )

    def __enter__(self) -> None:
        app = self._app()
        if app is None:
            raise RuntimeError(_GONE)
        if self._lean:
            context = AppContext(app)  # what app.app_context() makes
            token = APP_CONTEXT.set(context)  # type: ignore[union-attr]
            if appcontext_pushed.receivers:
                appcontext_pushed.send(app, _async_wrapper=app.ensure_sync)
        else:
            context = app.app_context()
            token = None
            context.push()
        _ENTERED.set((context, token, _ENTERED.get()))

    def __exit__(self, *exc_info: object) -> None:
        context, token, before = _ENTERED.get()
        _ENTERED.set(before)
        error = exc_info[1] if isinstance(exc_info[1], BaseException) else None
        if token is None:
            context.pop(error)
            return
        app = context.app
        try:
            if app.teardown_appcontext_funcs or appcontext_tearing_down.receivers:
                app.do_teardown_appcontext(error)
        finally:
            current = APP_CONTEXT.get()  # type: ignore[union-attr]
            APP_CONTEXT.reset(token)  # type: ignore[union-attr]
        if current is not context:  # a task that left its own app context pushed
            raise AssertionError(f"Popped wrong app context. ({current!r} instead of {context!r})")
        if appcontext_popped.receivers:
            appcontext_popped.send(app, _async_wrapper=app.ensure_sync)


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
