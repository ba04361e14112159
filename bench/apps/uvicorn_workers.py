"""uvicorn's own command line, for ``--workers N``, with a listening socket made as TCP's.

uvicorn (0.54 and before) binds the socket it hands its worker processes with
``socket.socket(family)``, whose ``proto`` is 0. Accepted connections inherit it, and
asyncio sets ``TCP_NODELAY`` only on a socket whose ``proto`` is ``IPPROTO_TCP``: Nagle's
algorithm then holds each response's body until the client's delayed ACK of its headers,
about 40 ms on Linux (uvicorn issue 3149), and every worker idles waiting for it. The
single-process server is unaffected (asyncio binds it from ``getaddrinfo``). Here the socket
uvicorn bound is reopened from its descriptor, which detects ``IPPROTO_TCP``; the rest is
uvicorn's supervisor and workers as they are.

Run: ``python -m bench.apps.uvicorn_workers --workers 6 [uvicorn's options] APP``.
"""

from __future__ import annotations

import socket
import sys

import uvicorn.config
import uvicorn.main

_bind_socket = uvicorn.config.Config.bind_socket


def _bind_tcp_socket(config: uvicorn.config.Config) -> socket.socket:
    sock = _bind_socket(config)
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return sock
    return socket.socket(fileno=sock.detach())  # family, type and proto read from the fd


uvicorn.config.Config.bind_socket = _bind_tcp_socket  # type: ignore[method-assign,assignment]

if __name__ == "__main__":
    sys.exit(uvicorn.main.main())
