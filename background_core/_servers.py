"""What the library can tell of the server it runs under: whether that server's stop would
end this process with tasks still queued, and what setting prevents it.

Adapters ask at startup (`warn_if_unguarded`), so that the loss is a WARNING the day the
app is deployed rather than a silent gap after the next deploy. See docs/servers.md.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from ._report import log_fields

logger = logging.getLogger("background")

# uWSGI's own recipe for a graceful stop: its master's SIGTERM then sends each worker the
# graceful signal (finish the request, then exit through the interpreter's exit hooks).
UWSGI_GRACEFUL_STOP = "gracefully_kill_them_all"
UWSGI_SKIPS_EXIT = ("skip-atexit", "skip-atexit-teardown")


def warn_if_unguarded(pool: str, fix: str) -> bool:
    """Log a WARNING, and return True, if this process is served by a server known to let
    its stop end the process with the tasks still queued in `pool` lost.

    For adapters at startup: `fix` says how to switch `install_sigterm_handler` on in the
    adapter's own terms ("Set BACKGROUND_SIGTERM_HANDLER = True"). Under uWSGI that handler
    cannot help (uWSGI's signals never reach Python), so the WARNING names uWSGI's option.
    """
    uwsgi_fix = _uwsgi_fix()
    if uwsgi_fix is not None:
        logger.warning(
            "uWSGI ends a worker at once on SIGTERM and SIGINT, and a worker busy with a "
            "request skips its exit hooks: the tasks still queued in pool %r would be "
            "lost. %s.",
            pool,
            uwsgi_fix,
            extra=log_fields(pool),
        )
        return True
    server = _unguarded_server()
    if server is not None:
        logger.warning(
            "%s: a SIGTERM would end this process at once, with the tasks still queued in "
            "pool %r lost. %s to drain them first.",
            server,
            pool,
            fix,
            extra=log_fields(pool),
        )
    return server is not None


def _uwsgi_fix() -> str | None:
    """Under uWSGI started without a graceful stop, what to add (or drop); else None."""
    uwsgi = sys.modules.get("uwsgi")  # uWSGI's embedded module, there before any app
    options = getattr(uwsgi, "opt", None)
    if not isinstance(options, dict):
        return None
    skipping = [name for name in UWSGI_SKIPS_EXIT if options.get(name)]
    if skipping:
        return f"Drop --{skipping[0]}: it skips the interpreter's exit, where pools drain"
    hooks = options.get("hook-master-start", ())
    # uWSGI keeps only the last value of an option given twice (Python 3 plugin), so any
    # graceful hook counts: the docs give the SIGTERM one, then the SIGINT one.
    if isinstance(hooks, (bytes, str)):
        hooks = [hooks]
    if any(UWSGI_GRACEFUL_STOP in _text(hook) for hook in hooks):
        return None
    return (
        'Start uWSGI with --hook-master-start "unix_signal:15 gracefully_kill_them_all" '
        '(and "unix_signal:2 gracefully_kill_them_all" for Ctrl-C) to stop its workers '
        "gracefully, which drains them"
    )


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _unguarded_server() -> str | None:
    """Which server lets SIGTERM end this process at once, and how; else None. Only the
    main thread sees the process's handlers; elsewhere this says None."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None  # somebody handles it: a server, or this library
    multiprocessing = sys.modules.get("multiprocessing")
    in_child = multiprocessing is not None and multiprocessing.parent_process() is not None
    if "waitress" in sys.modules:
        return "waitress installs no signal handler"
    if "hypercorn" in sys.modules and in_child:
        return (
            "hypercorn's worker processes install no SIGTERM handler (a SIGTERM to the "
            "whole process group, systemd's default, reaches them)"
        )
    if os.environ.get("FLASK_RUN_FROM_CLI") == "true" and "run" in sys.argv[1:]:
        return "flask run's development server installs no SIGTERM handler"
    return None
