"""`python -m demo_app`'s options, and the errors it stops at before serving."""

from __future__ import annotations

import socket

import pytest

from bench.server_process import free_port
from demo_app.cli import REFUSE_SHARE, main, parser


def test_the_defaults_serve_fastapi_on_127_0_0_1_8000_with_the_embedded_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SMTP_URL", raising=False)
    args = parser().parse_args([])

    assert (args.framework, args.host, args.port) == ("fastapi", "127.0.0.1", 8000)
    assert (args.smtp_url, args.threads, args.drain_timeout) == (None, 4, 25.0)
    assert args.smtp_refuse_share is None  # the embedded server's default, REFUSE_SHARE
    assert REFUSE_SHARE == 0.1
    assert parser().parse_args(["--smtp-refuse-share", "0.25"]).smtp_refuse_share == 0.25


def test_smtp_url_comes_from_the_environment_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_URL", "smtp://env.example.com")

    assert parser().parse_args([]).smtp_url == "smtp://env.example.com"
    assert parser().parse_args(["--smtp-url", "smtp://x"]).smtp_url == "smtp://x"


def test_the_dask_scheduler_comes_from_the_environment_unless_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DASK_SCHEDULER", raising=False)
    assert parser().parse_args([]).dask_scheduler is None
    monkeypatch.setenv("DASK_SCHEDULER", "tcp://127.0.0.1:8786")
    assert parser().parse_args([]).dask_scheduler == "tcp://127.0.0.1:8786"
    given = parser().parse_args(["--dask-scheduler", "tcp://10.0.0.1:8786"])
    assert given.dask_scheduler == "tcp://10.0.0.1:8786"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--framework", "bottle"], "invalid choice"),
        (
            ["--framework", "django", "--dask-scheduler", "tcp://127.0.0.1:8786"],
            "--dask-scheduler is for fastapi and flask",
        ),
        (["--threads", "0"], "must be 1 to 256"),
        (["--port", "70000"], "a port is 1 to 65535"),
        (["--drain-timeout", "0"], "--drain-timeout must be"),
        (["--smtp-refuse-share", "1.5"], "must be a share from 0 to 1"),
        (["--smtp-refuse-share", "some"], "must be a share from 0 to 1"),
        (
            ["--smtp-url", "smtp://user:hunter2@host", "--smtp-refuse-share", "0"],
            "--smtp-refuse-share applies to the embedded SMTP server only",
        ),
        (["--smtp-url", "smtp://user:hunter2@host?bogus=1"], "unknown options"),
        (["--dask-scheduler", "nowhere"], "--dask-scheduler must be a scheduler address"),
    ],
)
def test_a_bad_option_stops_with_a_message(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv if "--port" in argv else [*argv, "--port", str(free_port())])

    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert says in err
    assert "hunter2" not in err


def test_a_busy_port_stops_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(SystemExit) as stopped:
            main(["--port", str(port), "--smtp-url", "smtp://127.0.0.1:1"])

    assert stopped.value.code == 2
    assert "choose another --port" in capsys.readouterr().err
