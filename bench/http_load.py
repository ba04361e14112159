"""Bounded HTTP load on 127.0.0.1: requests per second and latency percentiles.

`load` runs Debian's ``wrk`` when it is on the PATH (``wrk -t1 -c<N> -d<s>s``, with a Lua
script that stops after a number of responses and reports exact percentiles; wrk takes whole
seconds, so a duration is rounded up), otherwise the
keep-alive HTTP/1.1 generator of this module in a subprocess of its own; ``BENCH_LOAD=python``
forces the generator. Both are closed loops over N connections, bounded by time and by count;
requests still in flight when the time is up are not counted.

`start` begins a run and returns at once (for two loads side by side); `generate` runs the
generator in the calling process (for exactly N requests, as the shutdown section fires).

Run alone: ``python -m bench.http_load URL [--seconds S] [--connections N] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench import cpus

ROOT = Path(__file__).resolve().parent.parent
MAX_REQUESTS = 200_000  # per run, whatever its length: the count bound
TIMEOUT = 10.0  # seconds one request may take before it counts as an error
GRACE = 15.0  # seconds a load process may overrun its duration before it is killed

# Counts responses to stop at the bound (init's argument), and prints the figures exactly.
WRK_SCRIPT = """
local limit = 0
local seen = 0
function init(args) limit = tonumber(args[1]) end
function response(status, headers, body)
  seen = seen + 1
  if seen >= limit then wrk.thread:stop() end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH %d %d %d %.1f %.1f\\n",
    summary.requests, e.connect + e.read + e.write + e.status + e.timeout,
    summary.duration, latency:percentile(50.0), latency:percentile(99.0)))
end
"""


@dataclass(frozen=True)
class LoadResult:
    """What one run saw. ``errors`` counts failed requests and answers with status >= 400."""

    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    tool: str

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def tool() -> str:
    """The load tool `load` uses: ``"wrk"`` or ``"python"``."""
    if os.environ.get("BENCH_LOAD", "").lower() == "python" or not shutil.which("wrk"):
        return "python"
    return "wrk"


class Running:
    """A load run in a subprocess of its own; `result` waits for it (bounded)."""

    def __init__(self, argv: list[str], seconds: float, tool: str) -> None:
        self.tool = tool
        self.deadline = time.monotonic() + seconds + GRACE
        self.proc = subprocess.Popen(
            cpus.for_load(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
        )

    def result(self) -> LoadResult:
        try:
            out, err = self.proc.communicate(timeout=max(0.1, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise RuntimeError(f"{self.tool} overran its duration by {GRACE}s; killed") from None
        if self.tool == "wrk":
            return _parse_wrk(out, err)
        if self.proc.returncode != 0:
            raise RuntimeError(f"the load generator failed:\n{err}")
        return LoadResult(**json.loads(out))


def start(
    url: str, *, seconds: float, connections: int, max_requests: int = MAX_REQUESTS
) -> Running:
    """Begin a closed-loop load of `connections` keep-alive connections on `url` for at
    most `seconds` and `max_requests` responses; return at once."""
    if tool() == "wrk":
        script = _wrk_script()
        seconds = max(1, math.ceil(seconds))  # wrk takes whole seconds only
        argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={TIMEOUT:g}s"]
        argv += ["-s", str(script), url, "--", str(max_requests)]
        return Running(argv, seconds, "wrk")
    argv = [sys.executable, "-m", "bench.http_load", url, "--json"]
    argv += [f"--seconds={seconds}", f"--connections={connections}"]
    argv += [f"--max-requests={max_requests}"]
    return Running(argv, seconds, "python")


def load(
    url: str, *, seconds: float, connections: int, max_requests: int = MAX_REQUESTS
) -> LoadResult:
    """Put a closed-loop load on `url` (see `start`) and return what it saw."""
    return start(url, seconds=seconds, connections=connections, max_requests=max_requests).result()


def _wrk_script() -> Path:
    path = Path(tempfile.gettempdir()) / f"bench-wrk-{os.getuid()}.lua"
    if not path.exists() or path.read_text() != WRK_SCRIPT:
        path.write_text(WRK_SCRIPT)
    return path


def _parse_wrk(out: str, err: str) -> LoadResult:
    line = next((x for x in out.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk reported nothing:\n{out}\n{err}")
    requests, errors, duration_us, p50_us, p99_us = line.split()[1:]
    seconds = int(duration_us) / 1e6
    n = int(requests)
    return LoadResult(
        requests=n,
        errors=int(errors),
        rps=n / seconds if seconds else 0.0,
        p50_ms=float(p50_us) / 1000 if n else float("nan"),
        p99_ms=float(p99_us) / 1000 if n else float("nan"),
        tool="wrk",
    )


# -- the Python generator ---------------------------------------------------------------


def generate(
    url: str, *, seconds: float, connections: int, max_requests: int = MAX_REQUESTS
) -> LoadResult:
    """Run the keep-alive generator in this process: at most `max_requests` requests are
    sent, over `connections` connections, for at most `seconds`."""
    return asyncio.run(_generate(url, seconds, connections, max_requests))


async def _generate(url: str, seconds: float, connections: int, max_requests: int) -> LoadResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    latencies: list[float] = []
    errors = [0]
    budget = [max_requests]
    t0 = time.perf_counter()
    deadline = t0 + seconds

    async def client() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while budget[0] > 0 and time.perf_counter() < deadline:
            budget[0] -= 1
            sent = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                assert reader is not None
                writer.write(request)
                status, keep = await asyncio.wait_for(_response(reader), TIMEOUT)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
                errors[0] += 1
                writer = _close(writer)
                continue
            latencies.append(time.perf_counter() - sent)
            if status >= 400:
                errors[0] += 1
            if not keep:
                writer = _close(writer)
        _close(writer)

    tasks = [asyncio.create_task(client()) for _ in range(connections)]
    _, late = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.perf_counter()))
    for task in late:  # requests in flight at the deadline are not counted
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
    elapsed = time.perf_counter() - t0
    return _summary(latencies, errors[0], elapsed)


async def _response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; return its status and whether the connection stays open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:] if line)
    }
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection", "").lower() != "close"


def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        writer.close()


def _summary(latencies: list[float], errors: int, elapsed: float) -> LoadResult:
    ordered = sorted(latencies)

    def percentile(q: float) -> float:
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return LoadResult(
        requests=len(ordered),
        errors=errors,
        rps=len(ordered) / elapsed if elapsed else 0.0,
        p50_ms=percentile(0.50),
        p99_ms=percentile(0.99),
        tool="python",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--max-requests", type=int, default=MAX_REQUESTS)
    parser.add_argument("--json", action="store_true", help="run the Python generator here")
    args = parser.parse_args()
    bounds = {"seconds": args.seconds, "connections": args.connections}
    if args.json:  # what `start` runs as the fallback: one JSON line
        print(json.dumps(generate(args.url, **bounds, max_requests=args.max_requests).as_dict()))
        return
    result = load(args.url, **bounds, max_requests=args.max_requests)
    print(
        f"{result.tool}: {result.requests} requests, {result.errors} errors, "
        f"{result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms"
    )


if __name__ == "__main__":
    main()
