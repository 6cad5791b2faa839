"""Serve one model over HTTP: Conveyor vs mlflow, BentoML, LitServe and a minimal server.

The model: a 200-tree LightGBM binary classifier on 20 numeric features (synthetic data,
fixed seed), trained with Conveyor's adapter, logged with its verified ONNX export to a
local MLflow (SQLite, in the work folder), registered with Conveyor's tags and promoted to
``champion`` (see _serving_model.py). The servers, each started as a subprocess on a free
port of 127.0.0.1 and killed (its whole process group) at the end:

* conveyor: ``conveyor serve --workers 2`` in a bare project named after the model, so it
  follows the project's deployment (there is none: the ``champion`` alias) and records the
  per-version rollout statistics (``POST /predict`` with ``{"instances": [...]}``; ready at
  ``/readyz``), with its own
  settings (runtime, threads, batching, validation, prediction log). Its row is skipped, with
  the reason, when the command does not exist.
* mlflow: ``mlflow models serve -m models:/NAME@champion --env-manager local -w 2`` (its pyfunc
  is Conveyor's; ``POST /invocations`` with ``dataframe_records``; ``/ping``), with
  ``OMP_NUM_THREADS=1`` so LightGBM does not oversubscribe the two cores.
* minimal: bench/serving_peers/minimal.py, a hand-written Starlette + uvicorn (uvloop,
  httptools) + orjson + numpy server, 2 workers, ONNX Runtime with one thread: the floor for
  a Python HTTP stack. ``minimal-lgbm`` is the same with LightGBM (``num_threads=1``).
* bentoml: bench/serving_peers/bentoml_service.py, BentoML with adaptive batching, 2 workers.
* litserve: bench/serving_peers/litserve_server.py, LitServe on CPU, 2 inference workers.

BentoML and LitServe pin versions that conflict with the project's, so each lives in its own
virtual environment, bench/.venvs/NAME, created on first use with pip (``--no-install`` skips
them instead). A peer that cannot be installed or started gets ``skipped: <reason>`` in its
row; the log of every server is in the work folder.

Each server gets the same rows, in its own protocol: after a check that it answers them
(the right number of predictions, and the native model's probabilities where the answer has
them), a warm-up and ``--settle`` idle seconds, an open-loop generator sends 1-row requests
at a fixed 1,000/s (latency from each request's due time: no coordinated omission; see
_serving_load.py): the steady-state latency. Then wrk (Debian's package) sends 1-row and
32-row JSON requests over 16 keep-alive connections for ``--duration`` seconds each, and the
fixed-rate load runs again at once ("after burst": while a server still digests the burst,
e.g. writes its prediction log). "ready s" is the time from starting the server's process to
the first 200 from its readiness endpoint (a worker has loaded the model); the load starts
once 20 checks in a row got 200 (every worker ready; ``all_ready_s`` in the JSON). Ratios
compare 1-row requests/s; "best peer" is the fastest of mlflow, BentoML and LitServe. The
targets of issue 5 (for Conveyor's row): >= 40x mlflow, >= 5x the best peer, >= 80 % of
minimal, p99 <= 10 ms at 1,000 requests/s, ready <= 3 s.

The load generator shares the machine with the servers (2 cores): keep it otherwise idle.

    python bench/serving.py                  # 10 s per load: a few minutes
    python bench/serving.py --quick          # 3 s per load: a smoke run
    python bench/serving.py --only conveyor,minimal --json /tmp/serving.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _serving_load import (
    WRK_INSTALL_HINT,
    fixed_rate,
    run_wrk,
    wrk_path,
)
from _venvs import VENVS, ensure_venv

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PEERS = BENCH / "serving_peers"
PY = Path(sys.executable)
BIN = PY.parent

SERVERS = ("conveyor", "mlflow", "minimal", "minimal-lgbm", "bentoml", "litserve")
PEER_NAMES = ("mlflow", "bentoml", "litserve")
FLOOR = "minimal"
BIG_ROWS = 32
PEER_VENVS = {
    "bentoml": ["bentoml>=1.4,<2", "numpy", "onnxruntime", "lightgbm", "orjson"],
    "litserve": ["litserve>=0.2.19,<0.3", "pyzmq", "numpy", "onnxruntime", "lightgbm", "orjson"],
}
TARGETS = {
    "x_mlflow": 40.0,
    "x_best_peer": 5.0,
    "x_minimal": 0.8,
    "fixed_p99_ms": 10.0,
    "ready_s": 3.0,
    "worker_ready_s": 3.0,
}


# ---------------------------------------------------------------- servers


@dataclass
class Server:
    name: str
    command: list[str]
    health: str
    path: str
    body: Callable[[list[dict[str, float]]], dict[str, Any]]
    probabilities: Callable[[Any], list[float] | None]  # from a response: P(class 1) per row
    count: Callable[[Any], int | None]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None


def _mlflow_proba(answer: Any) -> list[float] | None:
    preds = answer.get("predictions") if isinstance(answer, dict) else None
    if isinstance(preds, list) and preds and isinstance(preds[0], dict) and "proba_1" in preds[0]:
        return [float(p["proba_1"]) for p in preds]
    return None


def _list_count(key: str | None) -> Callable[[Any], int | None]:
    def count(answer: Any) -> int | None:
        found = answer.get(key) if key and isinstance(answer, dict) else answer
        return len(found) if isinstance(found, list) else None

    return count


def _conveyor_proba(answer: Any) -> list[float] | None:
    """P(class 1) from Conveyor's answer, if it has probabilities in a form we recognise."""
    if not isinstance(answer, dict):
        return None
    probs = answer.get("probabilities")
    if isinstance(probs, list) and probs:
        first = probs[0]
        if isinstance(first, dict):
            key = "1" if "1" in first else next(iter(first), None)
            return [float(p[key]) for p in probs] if key == "1" else None
        if isinstance(first, list) and len(first) == 2:
            return [float(p[1]) for p in probs]
    return _mlflow_proba(answer)


def _conveyor_count(answer: Any) -> int | None:
    for key in ("predictions", "outputs", "results"):
        if isinstance(answer, dict) and isinstance(answer.get(key), list):
            return len(answer[key])
    return None


def build_servers(model: Any, workers: int, workdir: Path) -> dict[str, Server]:
    # `conveyor serve` runs in a bare project named after the model: it follows the project's
    # deployment (none: the champion alias), recording per-version statistics for rollouts.
    project = workdir / "project"
    project.mkdir(parents=True, exist_ok=True)
    (project / "conveyor.yaml").write_text(f"name: {model.name}\n")
    peer_env = model.peer_env() | {"BENCH_WORKERS": str(workers), "OMP_NUM_THREADS": "1"}
    instances = lambda rows: {"instances": rows}  # noqa: E731
    return {
        "conveyor": Server(
            "conveyor",
            [str(BIN / "conveyor"), "serve", "--workers", str(workers)],
            "/readyz",
            "/predict",
            instances,
            _conveyor_proba,
            _conveyor_count,
            env={"MLFLOW_TRACKING_URI": model.tracking_uri},
            cwd=project,
        ),
        "mlflow": Server(
            "mlflow",
            [
                *(str(BIN / "mlflow"), "models", "serve", "-m", model.uri),
                *("--env-manager", "local", "-w", str(workers)),
            ],
            "/ping",
            "/invocations",
            lambda rows: {"dataframe_records": rows},
            _mlflow_proba,
            _list_count("predictions"),
            env={"MLFLOW_TRACKING_URI": model.tracking_uri, "OMP_NUM_THREADS": "1"},
        ),
        "minimal": Server(
            "minimal",
            [str(PY), str(PEERS / "minimal.py"), "--workers", str(workers), "--runtime", "onnx"],
            "/readyz",
            "/predict",
            instances,
            lambda a: a.get("probabilities"),
            _list_count("predictions"),
            env=peer_env,
        ),
        "minimal-lgbm": Server(
            "minimal-lgbm",
            [
                *(str(PY), str(PEERS / "minimal.py")),
                *("--workers", str(workers), "--runtime", "lightgbm"),
            ],
            "/readyz",
            "/predict",
            instances,
            lambda a: a.get("probabilities"),
            _list_count("predictions"),
            env=peer_env,
        ),
        "bentoml": Server(
            "bentoml",
            [str(VENVS / "bentoml" / "bin" / "bentoml"), "serve", "bentoml_service:Model"],
            "/readyz",
            "/predict",
            instances,
            lambda a: a,
            _list_count(None),
            env=peer_env | {"BENTOML_DO_NOT_TRACK": "True"},
            cwd=PEERS,
        ),
        "litserve": Server(
            "litserve",
            [str(VENVS / "litserve" / "bin" / "python"), str(PEERS / "litserve_server.py")],
            "/health",
            "/predict",
            instances,
            lambda a: a.get("predictions"),
            _list_count("predictions"),
            env=peer_env | {"LITSERVE_DISABLE_TELEMETRY": "1"},
        ),
    }


def conveyor_unavailable() -> str | None:
    """Why ``conveyor serve`` cannot run yet, or None."""
    if not (ROOT / "src" / "conveyor" / "cli" / "serve.py").exists():
        return "`conveyor serve` does not exist yet (no src/conveyor/cli/serve.py)"
    try:
        out = subprocess.run(
            [str(BIN / "conveyor"), "serve", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"`conveyor serve --help` failed: {err}"
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"`conveyor serve --help` exits {out.returncode}: {tail[0][:160]}"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(url: str, body: bytes | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class Running:
    """A server process in its own process group, with its port and log."""

    def __init__(self, server: Server, workdir: Path, workers: int) -> None:
        self.server = server
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{server.name}.log"
        command = list(server.command)
        if server.name == "minimal" or server.name == "minimal-lgbm":
            command += ["--port", str(self.port)]
        elif server.name == "litserve":
            command += ["--port", str(self.port)]
        else:
            command += ["--host", "127.0.0.1", "--port", str(self.port)]
        if server.name == "mlflow":
            command[command.index("--port")] = "-p"
            command[command.index("--host")] = "-h"
        env = os.environ | server.env
        env["PATH"] = f"{Path(command[0]).parent}{os.pathsep}{env.get('PATH', '')}"
        self.log = self.log_path.open("wb")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            cwd=server.cwd or workdir,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float) -> float:
        """Seconds from process start to the first 200 of the health endpoint."""
        deadline = self.started + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"exited with {self.process.returncode}: {self.log_tail()}")
            try:
                status, _ = http(self.base + self.server.health, timeout=2)
                if status == 200:
                    return time.perf_counter() - self.started
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.02)
        raise RuntimeError(f"not ready after {timeout:.0f} s: {self.log_tail()}")

    def wait_all_ready(self, timeout: float, in_a_row: int = 20) -> float:
        """Seconds from process start until ``in_a_row`` health checks (new connections,
        so several workers answer) in a row were 200: every worker has loaded its model."""
        deadline = self.started + timeout
        streak = 0
        while time.perf_counter() < deadline:
            try:
                status, _ = http(self.base + self.server.health, timeout=2)
            except (OSError, urllib.error.URLError):
                status = 0
            streak = streak + 1 if status == 200 else 0
            if streak >= in_a_row:
                return time.perf_counter() - self.started
            time.sleep(0.01 if status == 200 else 0.05)
        raise RuntimeError(f"not every worker ready after {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self) -> str:
        self.log.flush()
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(lines[-3:])[-300:] or "no output"

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # Workers that outlived their parent are still in the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


# ---------------------------------------------------------------- measuring


def check_answers(running: Running, model: Any, bodies: dict[int, bytes]) -> str:
    """Send the 1-row and 32-row bodies once; raise unless each gets its rows back."""
    notes = []
    for rows, body in bodies.items():
        status, raw = http(running.base + running.server.path, body, timeout=30)
        if status != 200:
            raise RuntimeError(f"{rows}-row request: HTTP {status}: {raw[:200]!r}")
        answer = json.loads(raw)
        count = running.server.count(answer)
        if count is not None and count != rows:
            raise RuntimeError(f"{rows}-row request answered {count} predictions")
        proba = running.server.probabilities(answer)
        if proba is None:
            notes.append(f"{rows}-row answer not compared")
            continue
        diff = max(abs(a - b) for a, b in zip(proba, model.proba[:rows], strict=True))
        if diff > 1e-4:
            raise RuntimeError(f"{rows}-row probabilities differ from the model's by {diff:.3g}")
    return "; ".join(notes)


def _fixed(url: str, body: bytes, args: argparse.Namespace) -> dict[str, Any]:
    fixed = fixed_rate(url, body, rate=args.rate, duration=args.duration)
    return {
        "rate": fixed.rate,
        "sent": fixed.sent,
        "ok": fixed.ok,
        "errors": fixed.errors,
        "unfinished": fixed.unfinished,
        "p50_ms": fixed.p50_ms,
        "p99_ms": fixed.p99_ms,
    }


def measure(server: Server, model: Any, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    bodies = {
        n: json.dumps(server.body(model.rows[:n]), separators=(",", ":")).encode()
        for n in (1, BIG_ROWS)
    }
    result: dict[str, Any] = {"server": server.name}
    running = Running(server, workdir, args.workers)
    try:
        result["ready_s"] = running.wait_ready(args.startup_timeout)
        result["all_ready_s"] = running.wait_all_ready(args.startup_timeout)
        if server.name == "conveyor":  # a new worker: process start -> model loaded and warm
            found = re.findall(rb"ready in ([0-9.]+)s", running.log_path.read_bytes())
            result["worker_ready_s"] = max(float(x) for x in found) if found else None
        result["check"] = check_answers(running, model, bodies)
        url = running.base + server.path
        run_wrk(url, bodies[1], duration=args.warmup, connections=args.connections)
        time.sleep(args.settle)  # what the warm-up left behind (logs, flushes) is written
        result["fixed"] = _fixed(url, bodies[1], args)  # steady state
        for rows in (1, BIG_ROWS):
            load = run_wrk(url, bodies[rows], duration=args.duration, connections=args.connections)
            result[f"wrk_{rows}"] = {
                "rps": load.rps,
                "rows_per_s": load.rps * rows,
                "requests": load.requests,
                "errors": load.errors,
                "p50_ms": load.p50_ms,
                "p90_ms": load.p90_ms,
                "p99_ms": load.p99_ms,
                "max_ms": load.max_ms,
            }
        result["fixed_after_burst"] = _fixed(url, bodies[1], args)  # while the backlog drains
    except Exception as err:  # a peer that fails gets a row saying why, the others go on
        result["skipped"] = f"{type(err).__name__}: {err}"[:400]
    finally:
        running.stop()
    return result


# ---------------------------------------------------------------- report


def ratios(results: list[dict[str, Any]]) -> None:
    rps = {r["server"]: r["wrk_1"]["rps"] for r in results if "wrk_1" in r}
    peers = [rps[name] for name in PEER_NAMES if rps.get(name)]
    best_peer = max(peers) if peers else None
    for r in results:
        own = r.get("wrk_1", {}).get("rps")
        r["x_mlflow"] = own / rps["mlflow"] if own and rps.get("mlflow") else None
        r["x_best_peer"] = own / best_peer if own and best_peer else None
        r["x_minimal"] = own / rps[FLOOR] if own and rps.get(FLOOR) else None


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else (f"{value:.2f}x" if value < 10 else f"{value:.0f}x")


def table(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    head = (
        "server",
        "req/s 1-row",
        f"req/s {BIG_ROWS}-row (rows/s)",
        "p50/p99 ms",
        f"{args.rate:,.0f}/s p50/p99 ms",
        "after burst p99",
        "ready s",
        "x mlflow",
        "x best peer",
        "x minimal",
    )
    lines = []
    for r in results:
        if "skipped" in r and "wrk_1" not in r:
            lines.append((r["server"], f"skipped: {r['skipped']}"))
            continue
        one, big, fixed = r.get("wrk_1", {}), r.get(f"wrk_{BIG_ROWS}", {}), r.get("fixed", {})
        after = r.get("fixed_after_burst", {})
        late = ""
        if fixed and (fixed["ok"] < fixed["sent"] or fixed["unfinished"]):
            late = f" ({fixed['ok']}/{fixed['sent']} ok)"
        lines.append(
            (
                r["server"],
                _num(one.get("rps")),
                f"{_num(big.get('rps'))} ({_num(big.get('rows_per_s'))})" if big else "-",
                f"{_num(one.get('p50_ms'), 1)}/{_num(one.get('p99_ms'), 1)}" if one else "-",
                f"{_num(fixed.get('p50_ms'), 1)}/{_num(fixed.get('p99_ms'), 1)}{late}"
                if fixed
                else "-",
                _num(after.get("p99_ms"), 1) if after else "-",
                _num(r.get("ready_s"), 2),
                _ratio(r.get("x_mlflow")),
                _ratio(r.get("x_best_peer")),
                _ratio(r.get("x_minimal")),
            )
        )
    widths = [len(h) for h in head]
    for line in lines:
        if len(line) == len(head):
            widths = [max(w, len(c)) for w, c in zip(widths, line, strict=True)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    for line in lines:
        if len(line) == len(head):
            out.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)))
        else:
            out.append(f"{line[0].ljust(widths[0])}  {line[1]}")
    notes = [f"  {r['server']}: {r['check']}" for r in results if r.get("check")]
    errors = [
        f"  {r['server']}: {load} had {r[load]['errors']} errors"
        for r in results
        for load in ("wrk_1", f"wrk_{BIG_ROWS}")
        if r.get(load, {}).get("errors")
    ]
    return "\n".join(out + (["notes:", *notes, *errors] if notes or errors else []))


def targets(results: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    ours = next((r for r in results if r["server"] == "conveyor"), None)
    if ours is None or "wrk_1" not in ours:
        reason = "not run" if ours is None else ours.get("skipped", "no result")
        return f"targets (issue 5): n/a, conveyor {reason}", {}
    checks = {
        "x_mlflow": (ours.get("x_mlflow"), ">=", "throughput vs mlflow models serve"),
        "x_best_peer": (ours.get("x_best_peer"), ">=", "throughput vs the best peer"),
        "x_minimal": (ours.get("x_minimal"), ">=", "throughput vs the minimal server"),
        "fixed_p99_ms": (ours.get("fixed", {}).get("p99_ms"), "<=", "p99 ms at 1,000 req/s"),
        "ready_s": (ours.get("ready_s"), "<=", "s to ready (whole server, cold)"),
        "worker_ready_s": (ours.get("worker_ready_s"), "<=", "s to ready (a new worker)"),
    }
    lines, verdicts = ["targets (issue 5), conveyor:"], {}
    for key, (value, op, label) in checks.items():
        goal = TARGETS[key]
        if value is None:
            verdict = "n/a"
        else:
            verdict = "PASS" if (value >= goal if op == ">=" else value <= goal) else "FAIL"
        verdicts[key] = {"value": value, "target": goal, "op": op, "verdict": verdict}
        shown = "-" if value is None else f"{value:.2f}"
        lines.append(f"  {verdict:4}  {label}: {shown} (target {op} {goal:g})")
    return "\n".join(lines), verdicts


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load")
    parser.add_argument("--quick", action="store_true", help="3 s per load: a smoke run")
    parser.add_argument("--warmup", type=float, default=None, help="seconds (default 2, 1)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, default=1000.0, help="fixed-rate requests/s")
    parser.add_argument(
        "--settle", type=float, default=6.0, help="idle seconds between warm-up and load"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", help=f"comma-separated, of {','.join(SERVERS)}")
    parser.add_argument("--skip", default="", help="comma-separated servers to leave out")
    parser.add_argument("--no-install", action="store_true", help="skip peers with no venv")
    parser.add_argument("--startup-timeout", type=float, default=120.0)
    parser.add_argument("--workdir", type=Path, help="keep the model and logs here")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    if args.quick:
        args.duration = 3.0
    if args.warmup is None:
        args.warmup = 1.0 if args.quick else 2.0
    names = [n.strip() for n in (args.only or ",".join(SERVERS)).split(",") if n.strip()]
    unknown = sorted(set(names) - set(SERVERS))
    if unknown:
        parser.error(f"unknown servers {unknown}; choose from {', '.join(SERVERS)}")
    names = [n for n in names if n not in set(args.skip.split(","))]
    if wrk_path() is None:
        print(f"wrk is not installed: {WRK_INSTALL_HINT}", file=sys.stderr)
        return 2

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="conveyor-bench-serving-"))
    try:
        import _serving_model

        started = time.perf_counter()
        model = _serving_model.build(workdir / "model-build")
        print(
            f"model: {model.uri} (version {model.version}), ONNX "
            f"{'verified' if model.onnx_verified else f'not verified: {model.onnx_reason}'}; "
            f"built in {time.perf_counter() - started:.0f} s; work folder {workdir}"
        )
        if model.onnx_path is None:
            names = [n for n in names if n != "minimal"]
        servers = build_servers(model, args.workers, workdir)
        results = []
        for name in names:
            reason = None
            if name == "conveyor":
                reason = conveyor_unavailable()
            elif name in PEER_VENVS:
                reason = ensure_venv(name, PEER_VENVS[name], install=not args.no_install)
            if reason is not None:
                print(f"{name}: skipped: {reason}")
                results.append({"server": name, "skipped": reason})
                continue
            print(f"{name}: measuring ...", flush=True)
            result = measure(servers[name], model, args, workdir)
            if "skipped" in result:
                print(f"{name}: skipped: {result['skipped']}")
            results.append(result)
        ratios(results)
        verdict_text, verdicts = targets(results)
        print()
        print(
            f"{args.connections} connections, {args.duration:g} s per load, {args.workers} "
            f"workers per server, {os.cpu_count()} CPUs; ratios of 1-row requests/s"
        )
        print(table(results, args))
        print()
        print(verdict_text)
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "settings": {
                            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                        },
                        "model": {"uri": model.uri, "onnx_verified": model.onnx_verified},
                        "results": results,
                        "targets": verdicts,
                    },
                    indent=2,
                )
            )
            print(f"wrote {args.json}")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
