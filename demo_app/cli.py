"""``python -m demo_app``: read the options, start the embedded SMTP server, serve.

The configuration comes from the command line, else from the environment (``SMTP_URL``),
else the defaults: FastAPI on http://127.0.0.1:8000/, 4 worker threads, and an embedded
SMTP server on a free port of 127.0.0.1.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING

from flask import Flask

from . import fastapi_app, flask_app, telemetry
from .api import DemoApi
from .mail import URL_FORMS, SmtpSettings, parse_smtp_url, redact
from .servers import run_gunicorn, run_uvicorn
from .sink import Sink

if TYPE_CHECKING:
    from .django_app import ASGIApp

SERVERS = {
    "fastapi": "FastAPI under uvicorn",
    "flask": "Flask under gunicorn (gthread)",
    "django": "Django under uvicorn (ASGI, django_background.lifespan)",
}

REFUSE_SHARE = 0.1
"""The share of emails whose first attempt the embedded SMTP server refuses by default:
one in ten, so that the page shows retries."""


def parser() -> argparse.ArgumentParser:
    """The command line's parser."""
    cli = argparse.ArgumentParser(
        prog="python -m demo_app",
        description="Serve the background demo: emails sent from request handlers by a "
        "pool of threads, with a live page.",
    )
    cli.add_argument("--framework", choices=sorted(SERVERS), default="fastapi")
    cli.add_argument("--host", default="127.0.0.1", help="address to serve on (127.0.0.1)")
    cli.add_argument("--port", type=_port, default=8000, help="port to serve on (8000)")
    cli.add_argument(
        "--smtp-url",
        default=os.environ.get("SMTP_URL") or None,
        help=f"send through this SMTP server (default: $SMTP_URL, else an embedded "
        f"server on 127.0.0.1 that keeps what it receives). Forms: {URL_FORMS}",
    )
    cli.add_argument(
        "--smtp-refuse-share",
        type=_share,
        default=None,
        metavar="SHARE",
        help=f"the embedded SMTP server refuses the first attempt of this share of emails "
        f"(0 to 1) with a temporary 451, which the demo retries ({REFUSE_SHARE:g}: every "
        f"{1 / REFUSE_SHARE:g}th email; 0 for none)",
    )
    cli.add_argument(
        "--dask-scheduler",
        default=os.environ.get("DASK_SCHEDULER") or None,
        metavar="ADDRESS",
        help="send the emails from the workers of the Dask cluster whose scheduler is at "
        "ADDRESS, such as tcp://127.0.0.1:8786 (default: $DASK_SCHEDULER, else the pool's "
        "threads). Start one on loopback with `dask scheduler --host 127.0.0.1 "
        "--dashboard-address 127.0.0.1:8787` and `dask worker tcp://127.0.0.1:8786 --host "
        "127.0.0.1`; the workers need this repository on their path",
    )
    cli.add_argument(
        "--otel",
        default=None,
        metavar="TARGET",
        help="trace each request and the email tasks it fires, in one trace, with "
        "OpenTelemetry: 'console' prints each span as JSON on stdout (and the metrics once, "
        "at exit); an http(s) URL, such as http://127.0.0.1:4318, sends spans and metrics "
        f"(every {telemetry.METRICS_INTERVAL:g} s) to that OTLP/HTTP endpoint (needs pip "
        f"install {telemetry.OTLP_PACKAGE}). Default: no OpenTelemetry at all",
    )
    cli.add_argument("--threads", type=_positive, default=4, help="the pool's worker threads (4)")
    cli.add_argument(
        "--drain-timeout",
        type=float,
        default=25.0,
        help="seconds to send accepted emails for at Ctrl-C or SIGTERM (25)",
    )
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo until Ctrl-C or SIGTERM. Returns the exit status."""
    cli = parser()
    args = cli.parse_args(argv)
    _check_args(cli, args)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        _check_free(args.host, args.port)
    except OSError as error:
        cli.error(f"cannot serve on {args.host}:{args.port} ({error}): choose another --port")
    sink: Sink | None = None
    if args.smtp_url is None:
        share = REFUSE_SHARE if args.smtp_refuse_share is None else args.smtp_refuse_share
        sink = Sink(refuse_share=share)
        smtp = SmtpSettings(sink.host, sink.port)
    else:
        try:
            smtp = parse_smtp_url(args.smtp_url)
        except ValueError as error:
            cli.error(str(error))
    api = DemoApi(
        smtp,
        None if sink is None else sink.inbox,
        threads=args.threads,
        drain_timeout=args.drain_timeout,
        server=SERVERS[args.framework],
        dask_scheduler=args.dask_scheduler,
        refuse_share=0.0 if sink is None else sink.refusals.share,
    )
    _banner(api, args.host, args.port, args.otel)
    if args.framework == "flask":

        def load() -> Flask:
            # In gunicorn's worker: the handlers read the sink's inbox there, and the
            # spans are made there (the SDK's export threads would not survive the fork).
            if sink is not None:
                sink.start()
            return flask_app.create_app(api, otel=args.otel)

        run_gunicorn(load, host=args.host, port=args.port, drain_timeout=args.drain_timeout)
        return 0
    try:
        if sink is not None:
            sink.start()
        # uvicorn serves in this process.
        if args.framework == "django":
            run_uvicorn(_django_app(api, args.otel), host=args.host, port=args.port)
        else:
            run_uvicorn(fastapi_app.create_app(api, otel=args.otel), host=args.host, port=args.port)
    finally:
        if sink is not None:
            sink.stop()
    return 0


def _django_app(api: DemoApi, otel: str | None) -> ASGIApp:
    """Django, set up in this process for `api`, and its ASGI app (imported here: the other
    frameworks need none of Django)."""
    from . import django_app  # noqa: PLC0415

    return django_app.create_app(django_app.configure(api), otel=otel)


def _check_args(cli: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Stop with a message (exit status 2) at options that do not go together or cannot work."""
    if not 0 < args.drain_timeout <= 600:
        cli.error("--drain-timeout must be more than 0 and at most 600 seconds")
    if args.smtp_url is not None and args.smtp_refuse_share is not None:
        cli.error(
            "--smtp-refuse-share applies to the embedded SMTP server only: drop it, or "
            "--smtp-url (and SMTP_URL)"
        )
    if args.dask_scheduler is not None and args.framework == "django":
        cli.error(
            "--dask-scheduler is for fastapi and flask: Django's tasks run on the pool of "
            "django_background's backend, whose OPTIONS take no Dask scheduler"
        )
    if args.dask_scheduler is not None:
        try:
            _check_scheduler(args.dask_scheduler, "--dask-scheduler")
        except ImportError:
            cli.error("--dask-scheduler needs Dask: pip install distributed")
        except (TypeError, ValueError) as error:
            cli.error(str(error))
    if args.otel is not None:
        try:
            telemetry.check(args.otel, args.framework)
        except ValueError as error:
            cli.error(str(error))


def _check_scheduler(address: str, label: str) -> None:
    """Raise ValueError unless `address` is a scheduler address; ImportError without Dask."""
    from background_core.dask import check_address  # noqa: PLC0415  (an optional extra)

    check_address(address, label)


def _banner(api: DemoApi, host: str, port: int, otel: str | None) -> None:
    shown = f"[{host}]" if ":" in host else host
    lines = [f"background demo: open http://{shown}:{port}/ in a browser", ""]
    lines += [f"  {label.lower():<9} {value}" for label, value in api.about()]
    lines += [
        "  api       POST /emails, POST /emails/bulk, GET /emails/{id}, GET /stats, GET /inbox",
    ]
    if otel is not None:
        where = (
            "printed below as JSON within 5 s of their end"
            if otel == telemetry.CONSOLE
            else f"sent to {redact(otel)}"
        )
        lines += [
            f"  otel      spans {where}: a request's span and the span of the email task it "
            "fired (process send_email) share a trace_id; the page's polls are not traced",
        ]
    lines += [""]
    print("\n".join(lines), flush=True)


def _check_free(host: str, port: int) -> None:
    """Raise OSError if `port` cannot be bound (say, another demo runs); a clear message
    here beats the server's own failure after startup."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, port), family=family):
        pass


def _port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, got {port}")
    return port


def _share(text: str) -> float:
    try:
        share = float(text)
    except ValueError:
        share = -1.0
    if not 0 <= share <= 1:
        raise argparse.ArgumentTypeError("must be a share from 0 to 1, such as 0.1")
    return share


def _positive(text: str) -> int:
    value = int(text)
    if not 0 < value <= 256:
        raise argparse.ArgumentTypeError(f"must be 1 to 256, got {value}")
    return value
