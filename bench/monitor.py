"""Data drift on a large window: Conveyor vs Evidently vs NannyML (and a plain scipy loop).

Generates a reference and a current table (default 1M rows each) of ``--columns`` numeric
columns (default 50: normal, log-normal, uniform, Poisson counts and a normal column with 5 %
missing values, in turn) and 4 categorical ones, with a fixed seed, written as Parquet. Every
fifth numeric column is shifted by half a standard deviation in the current table, and two
categorical columns drift (one changes its shares, one gets a category the reference never
had), so a drift tool should flag 10 + 2 columns out of 54 (``expected`` in the table).

* conveyor: ``conveyor.monitor.compute_drift`` on the two Parquet files (DuckDB reads them
  column-wise; PSI, KS, Wasserstein, Jensen-Shannon per numeric column; chi-square, JS, PSI
  and unseen categories per categorical one), deciding with Wasserstein (normalised) and
  Jensen-Shannon at 0.1, as Evidently does, and with no sampling (``max_rows=None``).
* evidently: ``pandas.read_parquet`` of both files, then ``Report([DataDriftPreset()])``
  (its defaults for more than 1,000 rows: normed Wasserstein for numeric columns,
  Jensen-Shannon for categorical ones, threshold 0.1).
* nannyml: ``pandas.read_parquet`` of both files, then ``UnivariateDriftCalculator`` with
  Kolmogorov-Smirnov and Jensen-Shannon for continuous columns, chi-square and Jensen-Shannon
  for categorical ones, the current table as one chunk (``chunk_size`` = its rows) and
  constant thresholds (JS 0.1; KS and chi2 alert on their own defaults); flagged = columns
  with an alert on Jensen-Shannon.
* scipy: the plain loop: ``pyarrow.parquet`` reads both files, then per numeric column
  ``scipy.stats.ks_2samp`` and PSI on ``numpy.quantile`` deciles (``numpy.histogram``); flags
  KS > 0.1. A floor for what a straightforward implementation costs.

Each contender runs in its own subprocess, with its libraries imported before the clock
starts. "wall s" is reading plus computing, measured inside the child; "peak RSS" is the
child's maximum resident set size as the kernel reports it (``wait4``). Evidently and NannyML
pin versions that conflict with the project's, so each lives in its own virtual environment,
bench/.venvs/NAME, created on first use with pip (``--no-install`` skips them instead).
Issue 7's targets (1M x 1M x 50 numeric columns): >= 25x faster than Evidently, >= 2x faster
than NannyML, peak RSS <= 1.5 GB.

Two cores are shared here: keep the machine otherwise idle, and try small sizes first.

    python bench/monitor.py                          # 1M x 1M rows: several minutes
    python bench/monitor.py --rows 100000            # a quick run
    python bench/monitor.py --only conveyor,nannyml --json /tmp/monitor.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _venvs import ensure_venv, venv_python

ROOT = Path(__file__).resolve().parent.parent
CONTENDERS = ("conveyor", "evidently", "nannyml", "scipy")
PEER_VENVS = {  # pandas 3 breaks both (removed internals), NannyML imports statsmodels
    "evidently": ["evidently>=0.7,<0.8", "pandas<3", "pyarrow"],
    "nannyml": ["nannyml>=0.13,<0.14", "statsmodels", "pandas<3", "pyarrow"],
}
PRELOAD = {
    "conveyor": ["numpy", "scipy.stats", "scipy.spatial", "duckdb", "pyarrow", "conveyor.monitor"],
    "evidently": ["pandas", "pyarrow", "evidently", "evidently.presets"],
    "nannyml": ["pandas", "pyarrow", "nannyml"],
    "scipy": ["numpy", "scipy.stats", "pyarrow.parquet"],
}
TARGETS = {"evidently": 25.0, "nannyml": 2.0}
TARGET_RSS_MB = 1536
CATEGORICAL = ("cat_0", "cat_1", "cat_2", "cat_3")
CHUNK_ROWS = 100_000


# ---------------------------------------------------------------- data


def numeric_names(columns: int) -> list[str]:
    return [f"num_{j:02d}" for j in range(columns)]


def expected_drifted(columns: int) -> list[str]:
    """The columns the generator shifts."""
    return [f"num_{j:02d}" for j in range(0, columns, 5)] + ["cat_2", "cat_3"]


def generate(path: Path, rows: int, columns: int, side: int, seed: int) -> None:
    """Write one side's table, ``CHUNK_ROWS`` rows at a time (bounded memory)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    levels = {
        "cat_0": [f"a{i}" for i in range(5)],
        "cat_1": [f"b{i}" for i in range(20)],
        "cat_2": [f"c{i}" for i in range(6)],
        "cat_3": [f"d{i}" for i in range(8)],
    }
    writer = None
    for chunk, start in enumerate(range(0, rows, CHUNK_ROWS)):
        size = min(CHUNK_ROWS, rows - start)
        rng = np.random.default_rng([seed, side, chunk])
        data: dict[str, Any] = {}
        for j, name in enumerate(numeric_names(columns)):
            shift = 0.5 if side == 1 and j % 5 == 0 else 0.0
            kind = j % 5
            if kind == 0:
                values = rng.normal(shift, 1.0, size)
            elif kind == 1:
                values = np.exp(rng.normal(0.0, 0.5, size))
            elif kind == 2:
                values = rng.uniform(0.0, 10.0, size)
            elif kind == 3:
                values = rng.poisson(3.0, size).astype(np.float64)
            else:
                values = rng.normal(100.0, 15.0, size)
                values[rng.random(size) < 0.05] = np.nan
            data[name] = values
        for name, values in levels.items():
            p = np.full(len(values), 1.0 / len(values))
            if side == 1 and name == "cat_2":
                p = np.linspace(3.0, 0.5, len(values))
                p /= p.sum()
            picked = np.asarray(values, dtype=object)[rng.choice(len(values), size, p=p)]
            if side == 1 and name == "cat_3":
                picked[rng.random(size) < 0.1] = "d_new"
            data[name] = pa.array(picked.tolist(), pa.string())
        table = pa.table(data)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()


# ---------------------------------------------------------------- contenders (in the child)


def run_conveyor(ref: str, cur: str, columns: list[str]) -> int:
    from conveyor.monitor import compute_drift
    from conveyor.spec import DriftSpec

    spec = DriftSpec.model_validate(
        {"methods": {"numeric": "wasserstein", "categorical": "jensen_shannon"}, "max_rows": None}
    )
    report = compute_drift(ref, cur, spec=spec)
    return len(report.drifted_columns)


def run_evidently(ref: str, cur: str, columns: list[str]) -> int:
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference, current = pd.read_parquet(ref), pd.read_parquet(cur)
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    for metric in snapshot.dict()["metrics"]:
        if str(metric.get("metric_name", "")).startswith("DriftedColumnsCount"):
            return int(metric["value"]["count"])
    raise RuntimeError("no DriftedColumnsCount in Evidently's result")


def run_nannyml(ref: str, cur: str, columns: list[str]) -> int:
    import nannyml as nml
    import pandas as pd

    reference, current = pd.read_parquet(ref), pd.read_parquet(cur)
    calculator = nml.UnivariateDriftCalculator(
        column_names=columns,
        treat_as_categorical=list(CATEGORICAL),
        continuous_methods=["kolmogorov_smirnov", "jensen_shannon"],
        categorical_methods=["chi2", "jensen_shannon"],
        chunk_size=len(current),
        thresholds={"jensen_shannon": nml.thresholds.ConstantThreshold(upper=0.1)},
    )
    calculator.fit(reference)
    result = calculator.calculate(current).filter(period="analysis")
    frame = result.to_df()
    flagged = 0
    for column in columns:
        if bool(frame[(column, "jensen_shannon", "alert")].any()):
            flagged += 1
    return flagged


def run_scipy(ref: str, cur: str, columns: list[str]) -> int:
    import numpy as np
    import pyarrow.parquet as pq
    from scipy.stats import ks_2samp

    numeric = [c for c in columns if c not in CATEGORICAL]
    reference = pq.read_table(ref, columns=numeric)
    current = pq.read_table(cur, columns=numeric)
    flagged = 0
    for name in numeric:
        r = reference[name].to_numpy()
        c = current[name].to_numpy()
        r, c = r[~np.isnan(r)], c[~np.isnan(c)]
        edges = np.unique(np.quantile(r, np.linspace(0, 1, 11)))
        edges[0], edges[-1] = -np.inf, np.inf
        pr = np.maximum(np.histogram(r, edges)[0] / len(r), 1e-4)
        pc = np.maximum(np.histogram(c, edges)[0] / len(c), 1e-4)
        float(np.sum((pc - pr) * np.log(pc / pr)))
        flagged += int(ks_2samp(r, c, method="asymp").statistic > 0.1)
    return flagged


RUNNERS = {
    "conveyor": run_conveyor,
    "evidently": run_evidently,
    "nannyml": run_nannyml,
    "scipy": run_scipy,
}


def child(args: argparse.Namespace) -> None:
    """Run one contender and write what it measured to ``args.result`` (JSON)."""
    import importlib
    import warnings

    warnings.simplefilter("ignore")
    for module in PRELOAD[args.child]:
        importlib.import_module(module)
    columns = [*numeric_names(args.columns), *CATEGORICAL]
    start = time.perf_counter()
    flagged = RUNNERS[args.child](args.ref, args.cur, columns)
    wall = time.perf_counter() - start
    Path(args.result).write_text(json.dumps({"wall": wall, "flagged": flagged}))


# ---------------------------------------------------------------- parent


def python_for(name: str) -> str:
    return sys.executable if name in ("conveyor", "scipy") else str(venv_python(name))


def measure(
    name: str, args: argparse.Namespace, ref: Path, cur: Path, workdir: Path
) -> dict[str, Any]:
    """Run one contender in a child process; its wall time, peak RSS and flagged columns."""
    result, log = workdir / f"{name}.json", workdir / f"{name}.log"
    command = [python_for(name), str(Path(__file__).resolve()), "--child", name]
    command += ["--ref", str(ref), "--cur", str(cur), "--result", str(result)]
    command += ["--columns", str(args.columns)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT / "bench")}
    with log.open("w") as stream:
        process = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-12:])
        return {"skipped": f"exit {code}; end of {log}:\n{tail}"}
    measured: dict[str, Any] = json.loads(result.read_text())
    measured["rss_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return measured


def version_of(name: str) -> str:
    distribution = "conveyor-ml" if name == "conveyor" else name
    code = f"import importlib.metadata as m; print(m.version({distribution!r}))"
    out = subprocess.run([python_for(name), "-c", code], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    """Print the table; ratios are the contender's value over Conveyor's (above 1: Conveyor
    is faster / smaller)."""
    base = results.get("conveyor", {})
    expected = len(expected_drifted(args.columns))
    header = ["contender", "wall s", "peak RSS MB", "flagged", "time ratio", "memory ratio"]
    rows = [header]
    for r in results.values():
        if "skipped" in r:
            rows.append([r["label"], "skipped: " + r["skipped"].splitlines()[0], "", "", "", ""])
            continue
        time_ratio = mem_ratio = "-"
        if "wall" in base:
            time_ratio = f"{r['wall'] / base['wall']:.1f}x"
            mem_ratio = f"{r['rss_mb'] / base['rss_mb']:.1f}x"
        rows.append(
            [
                r["label"],
                f"{r['wall']:.1f}",
                f"{r['rss_mb']:,.0f}",
                f"{r['flagged']} / {expected}",
                time_ratio,
                mem_ratio,
            ]
        )
    widths = [max(len(row[i]) for row in rows if len(row[i]) < 40) for i in range(len(header))]
    print(
        f"\n{args.rows:,} reference x {args.rows:,} current rows, {args.columns} numeric + "
        f"{len(CATEGORICAL)} categorical columns ({expected} shifted)\n"
    )
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print(" | ".join(cells).rstrip())
        if i == 0:
            print("-+-".join("-" * w for w in widths))
    for name, r in results.items():
        if "skipped" in r:
            print(f"\n{name} skipped: {r['skipped']}")
    if "wall" not in base:
        return
    verdicts = []
    for peer, target in TARGETS.items():
        if "wall" in results.get(peer, {}):
            speedup = results[peer]["wall"] / base["wall"]
            met = "met" if speedup >= target else "NOT met"
            verdicts.append(f"{speedup:.1f}x faster than {peer} (target >= {target:g}x: {met})")
    met = "met" if base["rss_mb"] <= TARGET_RSS_MB else "NOT met"
    verdicts.append(f"peak RSS {base['rss_mb']:,.0f} MB (target <= {TARGET_RSS_MB} MB: {met})")
    print("\nconveyor: " + "; ".join(verdicts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per side")
    parser.add_argument("--columns", type=int, default=50, help="numeric columns")
    parser.add_argument("--only", help="comma-separated contenders: " + ",".join(CONTENDERS))
    parser.add_argument("--no-install", action="store_true", help="skip peers with no venv")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--workdir", type=Path, help="where the Parquet files go (kept)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--ref", help=argparse.SUPPRESS)
    parser.add_argument("--cur", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    names = args.only.split(",") if args.only else list(CONTENDERS)
    unknown = set(names) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders {sorted(unknown)}; choose from {', '.join(CONTENDERS)}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="conveyor-bench-monitor-"))
    workdir.mkdir(parents=True, exist_ok=True)
    tag = f"{args.rows}x{args.columns}-{args.seed}"
    ref, cur = workdir / f"reference-{tag}.parquet", workdir / f"current-{tag}.parquet"
    if not (ref.exists() and cur.exists()):
        started = time.perf_counter()
        print(f"writing {ref.name} and {cur.name} to {workdir} ...", flush=True)
        generate(ref, args.rows, args.columns, 0, args.seed)
        generate(cur, args.rows, args.columns, 1, args.seed)
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        reason = None
        if name in PEER_VENVS:
            reason = ensure_venv(name, PEER_VENVS[name], install=not args.no_install)
        label = f"{name} {version_of(name)}" if reason is None else name
        print(f"running {label} ...", flush=True)
        measured = {"skipped": reason} if reason else measure(name, args, ref, cur, workdir)
        results[name] = {"label": label, **measured}
    report(results, args)
    if args.json:
        payload = {"rows": args.rows, "columns": args.columns, "results": results}
        args.json.write_text(json.dumps(payload, indent=2))
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
