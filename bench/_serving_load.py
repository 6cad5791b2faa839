"""bench/serving.py's load: wrk (closed loop) and an open-loop fixed-rate generator.

* :func:`run_wrk`: wrk from Debian's packages, POSTing one body over ``connections``
  keep-alive connections for ``duration`` seconds; a Lua ``done`` hook prints requests,
  errors and latency percentiles as one JSON line.
* :func:`fixed_rate`: wrk2 is not packaged, so this is an open-loop generator in asyncio over
  raw keep-alive sockets: request ``i`` is due at ``start + i / rate`` whatever happened to
  the ones before (a new connection is opened when every open one is busy, up to a cap), and
  its latency is measured from that due time, so a server that stalls is charged for the
  requests that queue behind the stall (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import gc
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

WRK_INSTALL_HINT = "install wrk with `apt-get install -y wrk` (Debian's package)"

_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


@dataclass
class WrkResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0


def run_wrk(
    url: str, body: bytes, *, duration: float, connections: int = 16, threads: int = 1
) -> WrkResult:
    """Closed-loop load with wrk: ``connections`` connections, each sending back to back."""
    wrk = wrk_path()
    if wrk is None:
        raise RuntimeError(f"wrk is not installed; {WRK_INSTALL_HINT}")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA.format(body=_lua_string(body.decode())))
    try:
        out = subprocess.run(
            [
                wrk,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(duration))}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=duration + 60,
            check=False,
        )
    finally:
        Path(script.name).unlink(missing_ok=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {(out.stderr or out.stdout).strip()[:300]}")
    data = json.loads(line.removeprefix("WRKJSON "))
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=errors,
        p50_ms=data["p50_us"] / 1e3,
        p90_ms=data["p90_us"] / 1e3,
        p99_ms=data["p99_us"] / 1e3,
        max_ms=data["max_us"] / 1e3,
    )


# ---------------------------------------------------------------- open loop


@dataclass
class FixedRateResult:
    rate: float
    sent: int
    ok: int
    errors: int
    unfinished: int  # still unanswered at the end: counted with their latency so far
    connections: int
    latencies_ms: list[float] = field(repr=False, default_factory=list)

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    @property
    def p50_ms(self) -> float:
        return self.percentile(50)

    @property
    def p99_ms(self) -> float:
        return self.percentile(99)


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, request: bytes) -> int:
        """Send one request, read its whole response; return the status code."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        return status

    def close(self) -> None:
        self.writer.close()


async def _fixed_rate(
    host: str,
    port: int,
    path: str,
    body: bytes,
    rate: float,
    duration: float,
    grace: float,
    max_connections: int,
) -> FixedRateResult:
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    opened = 0
    total = int(rate * duration)
    due_times: list[float] = []
    done_at: dict[int, float] = {}
    statuses: dict[int, int] = {}

    async def one(i: int) -> None:
        nonlocal opened
        conn = None
        try:
            if idle.empty() and opened < max_connections:
                opened += 1
                reader, writer = await asyncio.open_connection(host, port)
                conn = _Connection(reader, writer)
            else:
                conn = await idle.get()  # at the cap: queue (the wait counts as latency)
            status = await conn.exchange(request)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            statuses[i] = 0
            done_at[i] = time.perf_counter()
            if conn is not None:
                conn.close()
                opened -= 1
            return
        statuses[i] = status
        done_at[i] = time.perf_counter()
        idle.put_nowait(conn)

    loop = asyncio.get_running_loop()
    tasks = []
    start = time.perf_counter() + 0.05
    for i in range(total):
        due = start + i / rate
        due_times.append(due)
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one(i)))
    end = start + duration
    pending = [t for t in tasks if not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=max(0.0, end + grace - time.perf_counter()))
    stop = time.perf_counter()
    for task in tasks:
        task.cancel()
    while not idle.empty():
        idle.get_nowait().close()
    latencies = []
    ok = errors = unfinished = 0
    for i, due in enumerate(due_times):
        if i in done_at:
            latencies.append((done_at[i] - due) * 1e3)
            if 200 <= statuses[i] < 300:
                ok += 1
            else:
                errors += 1
        else:
            unfinished += 1
            latencies.append((stop - due) * 1e3)
    return FixedRateResult(rate, total, ok, errors, unfinished, opened, latencies)


def fixed_rate(
    url: str,
    body: bytes,
    *,
    rate: float,
    duration: float,
    grace: float = 5.0,
    max_connections: int = 256,
) -> FixedRateResult:
    """Open-loop load: ``rate`` requests/s for ``duration`` s; latency from each due time."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    # The generator must not stall: a full garbage collection of this process's heap (MLflow,
    # pandas and LightGBM were imported to build the model) takes ~0.4 s, during which every
    # due request would be charged as server latency. Collect once now, then pause the
    # collector while the load runs.
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return asyncio.run(
            _fixed_rate(
                parts.hostname, parts.port, parts.path, body, rate, duration, grace, max_connections
            )
        )
    finally:
        gc.enable()
        gc.unfreeze()
