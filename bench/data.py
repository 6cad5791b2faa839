"""Ingest + validate a large CSV: Conveyor vs Great Expectations vs pandas + pandera.

Generates a CSV of N rows (default 10 million) and 20 columns (integers, floats, categories,
a timestamp, a string id, some nullable columns) in which about 0.1 % of the rows are bad
(an age out of range, a country not allowed, a missing price), then times three contenders
that read it and run the same checks on it: a range per number column, the allowed values of
the categories, non-null for every column not declared nullable, one regular expression (the
id), uniqueness of the id, and a minimum row count.

* conveyor: the ingest step (``take_snapshot``: DuckDB reads the CSV into a content-addressed
  Parquet snapshot; ``--ingest copy`` does only the DuckDB ``COPY``) then
  ``validate_snapshot``, which checks the snapshot in batches and writes clean and quarantined
  rows (with a reason each) to Parquet.
* great_expectations: ``pandas.read_csv`` of the whole file, then a GE 1.x validation
  definition (ephemeral context, pandas datasource, one expectation per check) with GE's
  default result format.
* pandas_pandera: ``pandas.read_csv`` of the whole file, then one pandera ``DataFrameSchema``
  validated with ``lazy=True`` (every failure collected).

Each contender runs in its own subprocess. "wall s" is the time of reading plus validating,
measured inside it (interpreter start-up and imports excluded); "peak RSS" is the child's
maximum resident set size as the kernel reports it (``wait4``); "bad found" is what the
contender reports: quarantined rows (Conveyor), unexpected values (GE), failure cases
(pandera). Targets (on the 2-core machine, 10 million rows): Conveyor at least 5x faster than
Great Expectations, and its peak RSS at most 1.5 GB, bounded by the batch size rather than the
file size.

Great Expectations runs from the project's environment when it is installed there, otherwise
from its own virtual environment (``--ge-venv``, default ``$TMPDIR/conveyor-bench-ge``),
created on first use with ``great_expectations`` and this environment's versions of pandas,
numpy and pyarrow (so both pandas-based contenders use the same Arrow-backed strings).

The machine should be otherwise idle: on two cores, anything else running skews the times.

    python bench/data.py                      # 10 million rows: several minutes
    python bench/data.py --rows 1000000       # a quick run
    python bench/data.py --keep --workdir /tmp/bench   # keep the CSV and reuse it next time
    python bench/data.py --only conveyor --ingest copy
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GE_REQUIREMENT = "great_expectations>=1.24,<2"
SHARED_PACKAGES = ("pandas", "numpy", "pyarrow")
TARGET_SPEEDUP = 5.0
TARGET_RSS_MB = 1536
CONTENDERS = ("conveyor", "great_expectations", "pandas_pandera")

COUNTRIES = ["AT", "BE", "CA", "CH", "DE", "DK", "ES", "FI", "FR", "GB"]
COUNTRIES += ["IE", "IT", "JP", "MX", "NL", "NO", "PL", "PT", "SE", "US"]
CHANNELS = ["partner", "phone", "store", "web"]
STATUSES = ["cancelled", "new", "paid", "returned", "shipped"]
DEVICES = ["android", "desktop", "ios"]
SEGMENTS = ["A", "B", "C", "D"]
ID_PATTERN = r"^T\d{10}$"

# The checks, written once; each contender's own form (a Conveyor `schema:`, GE expectations,
# a pandera schema) is derived from this list, so all three check exactly the same things.
COLUMNS: list[dict[str, Any]] = [
    {"name": "id", "type": "str", "pattern": ID_PATTERN, "unique": True},
    {"name": "ts", "type": "datetime"},
    {"name": "customer_id", "type": "int", "min": 0, "max": 999_999},
    {"name": "age", "type": "int", "min": 18, "max": 90},
    {"name": "quantity", "type": "int", "min": 1, "max": 100},
    {"name": "price", "type": "float", "min": 0, "max": 10_000},
    {"name": "discount", "type": "float", "nullable": True, "min": 0, "max": 1},
    {"name": "score", "type": "float", "min": -5, "max": 5},
    {"name": "rating", "type": "int", "nullable": True, "min": 1, "max": 5},
    {"name": "country", "type": "str", "allowed": COUNTRIES},
    {"name": "channel", "type": "str", "allowed": CHANNELS},
    {"name": "status", "type": "str", "allowed": STATUSES},
    {"name": "device", "type": "str", "nullable": True, "allowed": DEVICES},
    {"name": "lat", "type": "float", "min": -90, "max": 90},
    {"name": "lon", "type": "float", "min": -180, "max": 180},
    {"name": "weight_kg", "type": "float", "nullable": True, "min": 0, "max": 500},
    {"name": "clicks", "type": "int", "min": 0, "max": 10_000},
    {"name": "is_member", "type": "bool"},
    {"name": "segment", "type": "str", "allowed": SEGMENTS},
    {"name": "balance", "type": "float", "min": -1_000_000, "max": 1_000_000},
]


# Imported before a contender's clock starts: the time measured is reading and checking.
PRELOAD = {
    "conveyor": ["duckdb", "pandas", "pyarrow.parquet", "pandera.pandas", "conveyor.data"],
    "great_expectations": ["pandas", "great_expectations", "great_expectations.expectations"],
    "pandas_pandera": ["pandas", "pandera.pandas"],
}


def min_rows(rows: int) -> int:
    """The row-count check: at least 90 % of the generated rows."""
    return rows * 9 // 10


# ---------------------------------------------------------------- data


def _uniform(salt: int) -> str:
    """SQL for a deterministic uniform number in [0, 1) from the row number ``i``."""
    return f"((hash(i * 7919 + {salt}) % 1000000007) / 1000000007.0)"


def _pick(values: list[str], salt: int) -> str:
    items = ", ".join(f"'{v}'" for v in values)
    return f"[{items}][1 + CAST(floor({_uniform(salt)} * {len(values)}) AS INTEGER)]"


def generate_sql(rows: int) -> str:
    """The query that makes the data: same rows, same bad rows, every time.

    Bad rows (1 in 1,000): age 150 where ``i % 3000 = 7``, country 'XX' where
    ``i % 3000 = 1009``, price NULL where ``i % 3000 = 2011``.
    """
    u = _uniform
    return f"""
SELECT
  'T' || lpad(CAST(i AS VARCHAR), 10, '0') AS id,
  TIMESTAMP '2024-01-01 00:00:00' + to_seconds(i * 3) AS ts,
  CAST(floor({u(1)} * 1000000) AS BIGINT) AS customer_id,
  CASE WHEN i % 3000 = 7 THEN 150 ELSE 18 + CAST(floor({u(2)} * 73) AS INTEGER) END AS age,
  1 + CAST(floor({u(3)} * 100) AS INTEGER) AS quantity,
  CASE WHEN i % 3000 = 2011 THEN NULL ELSE round({u(4)} * 10000, 2) END AS price,
  CASE WHEN {u(5)} < 0.2 THEN NULL ELSE round({u(6)}, 3) END AS discount,
  round(({u(7)} + {u(8)} + {u(9)} - 1.5) * 3, 4) AS score,
  CASE WHEN {u(10)} < 0.3 THEN NULL ELSE 1 + CAST(floor({u(11)} * 5) AS INTEGER) END AS rating,
  CASE WHEN i % 3000 = 1009 THEN 'XX' ELSE {_pick(COUNTRIES, 12)} END AS country,
  {_pick(CHANNELS, 13)} AS channel,
  {_pick(STATUSES, 14)} AS status,
  CASE WHEN {u(15)} < 0.05 THEN NULL ELSE {_pick(DEVICES, 16)} END AS device,
  round({u(17)} * 180 - 90, 5) AS lat,
  round({u(18)} * 360 - 180, 5) AS lon,
  CASE WHEN {u(19)} < 0.1 THEN NULL ELSE round({u(20)} * 500, 2) END AS weight_kg,
  CAST(floor({u(21)} * {u(22)} * 10000) AS BIGINT) AS clicks,
  {u(23)} < 0.35 AS is_member,
  {_pick(SEGMENTS, 24)} AS segment,
  round(({u(25)} - 0.5) * 2000000, 2) AS balance
FROM range({rows}) AS r(i)
"""


def generate(path: Path, rows: int) -> None:
    """Write the CSV with DuckDB (about 4 s per million rows on two cores)."""
    import duckdb

    partial = path.with_suffix(".partial")
    with duckdb.connect() as con:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"COPY ({generate_sql(rows)}) TO '{partial}' (FORMAT csv, HEADER)")
    partial.rename(path)


# ---------------------------------------------------------------- contenders (in a child)


def conveyor_spec(csv: Path, rows: int) -> str:
    """A conveyor.yaml with the CSV as its one source and the checks as its ``schema:``."""
    lines = [
        "name: bench",
        "sources:",
        f"  events: {{type: file, path: {json.dumps(str(csv))}}}",
        "schema:",
        "  columns:",
    ]
    for column in COLUMNS:
        fields = {k: v for k, v in column.items() if k != "name"}
        lines.append(f"    {column['name']}: {json.dumps(fields)}")
    lines += ["  checks:", f"    min_rows: {min_rows(rows)}"]
    return "\n".join(lines) + "\n"


def run_conveyor(csv: Path, rows: int, workdir: Path, ingest: str) -> int:
    """Ingest the CSV into a snapshot and validate it; return the quarantined rows."""
    from conveyor.data.validation import validate_snapshot
    from conveyor.spec import parse_spec

    loaded = parse_spec(conveyor_spec(csv, rows))
    schema = loaded.spec.schema_
    assert schema is not None
    if ingest == "snapshot":
        from conveyor.artifacts import ArtifactStore
        from conveyor.data import take_snapshot
        from conveyor.store import MetadataStore

        with MetadataStore(f"sqlite:///{workdir / 'conveyor.db'}") as store:
            snapshot = take_snapshot(
                "bench",
                loaded.spec.sources,
                loaded.spec.dataset,
                raw_sources=loaded.raw["sources"],
                project_root=workdir,
                workdir=workdir,
                store=store,
                artifacts=ArtifactStore(str(workdir / "artifacts")),
            )
        parquet = snapshot.path
    else:
        import duckdb

        parquet = workdir / "snapshot.parquet"
        with duckdb.connect() as con:
            con.execute("SET enable_progress_bar = false")
            con.execute(
                f"COPY (SELECT * FROM read_csv('{csv}')) TO '{parquet}' "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
    result = validate_snapshot(parquet, schema, workdir=workdir / "validated")
    if result.rows != rows:
        raise SystemExit(f"conveyor read {result.rows:,} rows, expected {rows:,}")
    return int(result.quarantined_rows)


def read_pandas(csv: Path) -> Any:
    """The whole file as one pandas DataFrame, the way both pandas-based contenders read it."""
    import pandas as pd

    return pd.read_csv(csv, parse_dates=["ts"])


def run_great_expectations(csv: Path, rows: int) -> int:
    """Read the CSV with pandas and validate it with GE; return the unexpected values."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("bench")
        .add_dataframe_asset("events")
        .add_batch_definition_whole_dataframe("all")
    )
    suite = context.suites.add(gx.ExpectationSuite(name="events"))
    suite.add_expectation(gxe.ExpectTableRowCountToBeBetween(min_value=min_rows(rows)))
    for column in COLUMNS:
        name = column["name"]
        if not column.get("nullable"):
            suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=name))
        if "min" in column:
            suite.add_expectation(
                gxe.ExpectColumnValuesToBeBetween(
                    column=name, min_value=column["min"], max_value=column["max"]
                )
            )
        if "allowed" in column:
            suite.add_expectation(
                gxe.ExpectColumnValuesToBeInSet(column=name, value_set=column["allowed"])
            )
        if "pattern" in column:
            suite.add_expectation(
                gxe.ExpectColumnValuesToMatchRegex(column=name, regex=column["pattern"])
            )
        if column.get("unique"):
            suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column=name))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="events", data=batch, suite=suite)
    )
    frame = read_pandas(csv)
    result = definition.run(batch_parameters={"dataframe": frame})
    if result.results[0].result.get("observed_value") != rows:
        raise SystemExit(f"GE saw {result.results[0].result} rows, expected {rows:,}")
    return sum(int(r.result.get("unexpected_count") or 0) for r in result.results)


def run_pandas_pandera(csv: Path, rows: int) -> int:
    """Read the CSV with pandas and validate it with pandera; return the failure cases."""
    import pandera.pandas as pa

    columns = {}
    for column in COLUMNS:
        checks = []
        if "min" in column:
            checks.append(pa.Check.in_range(column["min"], column["max"]))
        if "allowed" in column:
            checks.append(pa.Check.isin(column["allowed"]))
        if "pattern" in column:
            checks.append(pa.Check.str_matches(column["pattern"]))
        columns[column["name"]] = pa.Column(
            None,  # no dtype check: GE has none either (Conveyor's is part of reading)
            checks,
            nullable=bool(column.get("nullable")),
            unique=bool(column.get("unique")),
        )
    schema = pa.DataFrameSchema(
        columns, checks=[pa.Check(lambda df: len(df) >= min_rows(rows), element_wise=False)]
    )
    frame = read_pandas(csv)
    if len(frame) != rows:
        raise SystemExit(f"pandas read {len(frame):,} rows, expected {rows:,}")
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        return len(err.failure_cases)
    return 0


def child(args: argparse.Namespace) -> None:
    """Run one contender and write what it measured to ``args.result`` (JSON)."""
    import resource

    csv, rows, workdir = Path(args.csv), args.rows, Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # Import the contender's libraries before the clock starts (and check they are there).
    for module in PRELOAD[args.child]:
        importlib.import_module(module)

    start = time.perf_counter()
    if args.child == "conveyor":
        bad = run_conveyor(csv, rows, workdir, args.ingest)
    elif args.child == "great_expectations":
        bad = run_great_expectations(csv, rows)
    else:
        bad = run_pandas_pandera(csv, rows)
    wall = time.perf_counter() - start
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    Path(args.result).write_text(json.dumps({"wall": wall, "bad": bad, "rss_kb": rss_kb}))


# ---------------------------------------------------------------- parent


def ge_python(venv: Path) -> str:
    """A Python that can import great_expectations: this one, or one in ``venv`` (made once).

    The venv gets the same pandas, numpy and pyarrow as this environment (pyarrow makes
    pandas' strings Arrow-backed), so GE works on the same kind of DataFrame as pandera.
    """
    if importlib.util.find_spec("great_expectations") is not None:
        return sys.executable
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} for Great Expectations (once)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pins = [f"{name}=={version_of(name, sys.executable)}" for name in SHARED_PACKAGES]
    wanted = [GE_REQUIREMENT, *pins]
    probe = ["import great_expectations"]
    probe += [
        f"assert importlib.metadata.version({p.split('==')[0]!r}) == {p.split('==')[1]!r}"
        for p in pins
    ]
    code = "import importlib.metadata\n" + "\n".join(probe)
    if subprocess.run([str(python), "-c", code], capture_output=True).returncode != 0:
        print(f"installing {' '.join(wanted)} into {venv}...", flush=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *wanted], check=True)
    return str(python)


def measure(
    name: str, python: str, csv: Path, rows: int, workdir: Path, ingest: str
) -> dict[str, Any]:
    """Run one contender in a child process; its wall time, peak RSS and findings."""
    result = workdir / f"{name}.json"
    log = workdir / f"{name}.log"
    command = [python, str(Path(__file__).resolve()), "--child", name, "--csv", str(csv)]
    command += ["--rows", str(rows), "--workdir", str(workdir / name), "--result", str(result)]
    command += ["--ingest", ingest]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with log.open("w") as stream:
        process = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    shutil.rmtree(workdir / name, ignore_errors=True)
    if process.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
        raise SystemExit(f"{name} failed (exit {process.returncode}); end of {log}:\n{tail}")
    measured = json.loads(result.read_text())
    measured["rss_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return measured


def version_of(name: str, python: str) -> str:
    """The installed version of a distribution, as seen by ``python``."""
    code = f"import importlib.metadata as m; print(m.version({name!r}))"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def report(results: dict[str, dict[str, Any]], labels: dict[str, str], rows: int) -> None:
    """Print the table and the verdict on the targets.

    "conveyor speed-up" is the contender's wall time over Conveyor's: above 1, Conveyor is
    faster.
    """
    base = results.get("conveyor")
    header = ["contender", "wall s", "rows/s", "peak RSS MB", "bad found", "conveyor speed-up"]
    table = [header]
    for name, r in results.items():
        table.append(
            [
                labels[name],
                f"{r['wall']:.1f}",
                f"{rows / r['wall']:,.0f}",
                f"{r['rss_mb']:,.0f}",
                f"{r['bad']:,}",
                f"{r['wall'] / base['wall']:.2f}x" if base else "-",
            ]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        print(" | ".join(cells))
        if i == 0:
            print("-+-".join("-" * w for w in widths))
    if base is None:
        return
    verdicts = []
    ge = results.get("great_expectations")
    if ge is not None:
        speedup = ge["wall"] / base["wall"]
        met = "met" if speedup >= TARGET_SPEEDUP else "NOT met"
        verdicts.append(f"{speedup:.2f}x over Great Expectations (target >= 5x: {met})")
    pandera = results.get("pandas_pandera")
    if pandera is not None:
        verdicts.append(f"{pandera['wall'] / base['wall']:.2f}x over pandas+pandera")
    met = "met" if base["rss_mb"] <= TARGET_RSS_MB else "NOT met"
    verdicts.append(f"peak RSS {base['rss_mb']:,.0f} MB (target <= 1536 MB: {met})")
    print(f"\n{rows:,} rows, conveyor speed-up: " + "; ".join(verdicts))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows to generate")
    parser.add_argument("--workdir", type=Path, help="where the CSV and outputs go")
    parser.add_argument("--keep", action="store_true", help="keep the CSV and reuse it")
    parser.add_argument("--only", choices=CONTENDERS, action="append", help="run only these")
    parser.add_argument(
        "--ingest",
        choices=("snapshot", "copy"),
        default="snapshot",
        help="Conveyor's ingest: the real snapshot step, or only DuckDB's COPY to Parquet",
    )
    parser.add_argument(
        "--ge-venv",
        type=Path,
        default=Path(tempfile.gettempdir()) / "conveyor-bench-ge",
        help="virtual environment for Great Expectations when it is not installed here",
    )
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return

    if args.workdir is None and args.keep:
        args.workdir = Path(tempfile.gettempdir()) / "conveyor-bench-data"
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-bench-")) if temporary else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    csv = workdir / f"events-{args.rows}.csv"
    try:
        if not (args.keep and csv.exists()):
            print(f"generating {args.rows:,} rows x {len(COLUMNS)} columns...", flush=True)
            start = time.perf_counter()
            generate(csv, args.rows)
            size = csv.stat().st_size / 2**20
            print(f"  {csv} ({size:,.0f} MB) in {time.perf_counter() - start:.1f} s")
        names = args.only or list(CONTENDERS)
        pythons = dict.fromkeys(names, sys.executable)
        if "great_expectations" in names:
            pythons["great_expectations"] = ge_python(args.ge_venv)
        labels = {
            "conveyor": f"conveyor {version_of('conveyor-ml', sys.executable)}"
            f" ({'snapshot' if args.ingest == 'snapshot' else 'COPY'} + validate)",
            "great_expectations": "great_expectations "
            + version_of("great_expectations", pythons.get("great_expectations", sys.executable)),
            "pandas_pandera": f"pandas {version_of('pandas', sys.executable)}"
            f" + pandera {version_of('pandera', sys.executable)}",
        }
        results = {}
        for name in names:
            print(f"running {labels[name]}...", flush=True)
            results[name] = measure(name, pythons[name], csv, args.rows, workdir, args.ingest)
            r = results[name]
            print(f"  {r['wall']:.1f} s, peak RSS {r['rss_mb']:,.0f} MB, bad {r['bad']:,}")
        print()
        report(results, labels, args.rows)
    finally:
        if not args.keep:
            csv.unlink(missing_ok=True)
        if temporary and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
