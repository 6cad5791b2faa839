"""The data layer through the CLI: built-in ingest/validate steps and `conveyor data ...`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from conveyor.cli import app
from conveyor.cli._console import console, err_console
from conveyor.store import MetadataStore, StepStatus

SPEC = """
name: shop
sources:
  orders: {type: file, path: data/orders.csv}
dataset:
  time_column: ordered_at
schema:
  columns:
    order_id: {type: int, unique: true}
    country: {type: str, allowed: [DE, FR, NL]}
    amount: {type: float, min: 0}
  checks: {min_rows: 5}
  max_quarantine_fraction: 0.25
steps:
  revenue:
    run: steps:revenue
    inputs: {orders: validate.dataset}
    outputs: [total]
"""

STEPS = """
import duckdb

def revenue(ctx):
    path = str(ctx.inputs["orders"])
    total = duckdb.sql(f"select sum(amount) from read_parquet('{path}')").fetchall()[0][0]
    return {"total": f"{total:.2f}"}
"""


def orders(rows: int, *, bad: int = 0) -> str:
    lines = ["order_id,country,amount,ordered_at"]
    for i in range(rows):
        country = "XX" if i < bad else ("DE", "FR", "NL")[i % 3]
        lines.append(f"{i},{country},{10 + i}.5,2026-11-{1 + i % 20:02d} 10:00:00")
    return "\n".join(lines) + "\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CONVEYOR_DB_URL", "CONVEYOR_ARTIFACTS_URL"):
        monkeypatch.delenv(name, raising=False)
    for each in (console, err_console):
        monkeypatch.setattr(each, "width", 200)
    (tmp_path / "data").mkdir()
    (tmp_path / "conveyor.yaml").write_text(SPEC)
    (tmp_path / "steps.py").write_text(STEPS)
    (tmp_path / "data" / "orders.csv").write_text(orders(40, bad=2))
    return tmp_path


def cli(project: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--project", str(project), *args], catch_exceptions=False)


def statuses(project: Path) -> list[dict[str, StepStatus]]:
    with MetadataStore(f"sqlite:///{project / '.conveyor' / 'conveyor.db'}") as store:
        return [{s.name: s.status for s in store.list_step_runs(r.id)} for r in store.list_runs()]


def test_pipeline_ingests_validates_and_caches(project: Path) -> None:
    first = cli(project, "run")
    assert first.exit_code == 0, first.output
    assert statuses(project)[0] == dict.fromkeys(
        ("ingest", "validate", "revenue"), StepStatus.SUCCEEDED
    )
    reports = list((project / "reports").glob("validation-*.html"))
    assert len(reports) == 1 and "country" in reports[0].read_text()

    again = cli(project, "run")
    assert again.exit_code == 0, again.output
    assert set(statuses(project)[0].values()) == {StepStatus.CACHED}

    listing = cli(project, "data", "versions")
    assert listing.exit_code == 0, listing.output
    assert "raw" in listing.stdout and "validated" in listing.stdout
    assert "40" in listing.stdout and "38" in listing.stdout  # 2 rows quarantined
    raw_id, validated_id = (
        re.search(rf"(\w{{16}}) +│ {stage}", listing.stdout).group(1)  # type: ignore[union-attr]
        for stage in ("raw", "validated")
    )
    shown = cli(project, "data", "show", validated_id[:6])
    assert shown.exit_code == 0, shown.output
    assert raw_id in shown.stdout  # lineage to its parent
    assert "quarantine" in shown.stdout and "report_html" in shown.stdout


def test_validation_failure_stops_the_run_then_resume_after_the_fix(project: Path) -> None:
    (project / "data" / "orders.csv").write_text(orders(40, bad=20))  # 50% > 25% allowed
    failed = cli(project, "run")
    assert failed.exit_code == 1
    assert "the data broke the schema" in failed.stderr
    assert "country.allowed" in failed.stderr
    assert "report:" in failed.stderr
    assert statuses(project)[0]["revenue"] is StepStatus.SKIPPED
    with MetadataStore(f"sqlite:///{project / '.conveyor' / 'conveyor.db'}") as store:
        assert [v.name for v in store.list_dataset_versions()] == ["shop/raw"]  # no validated one

    (project / "data" / "orders.csv").write_text(orders(40, bad=1))
    resumed = cli(project, "run", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert statuses(project)[0]["revenue"] is StepStatus.SUCCEEDED


def test_data_commands(project: Path) -> None:
    ingested = cli(project, "data", "ingest")
    assert ingested.exit_code == 0, ingested.output
    assert "40 rows, 4 columns" in ingested.stdout

    validated = cli(project, "data", "validate", "--report", str(project / "v.html"))
    assert validated.exit_code == 0, validated.output
    assert "38 clean rows, 2 quarantined" in validated.stdout
    assert (project / "v.html").read_text().lstrip().lower().startswith("<!doctype html")

    (project / "data" / "orders.csv").write_text(orders(60, bad=0))
    cli(project, "data", "ingest")
    with MetadataStore(f"sqlite:///{project / '.conveyor' / 'conveyor.db'}") as store:
        newer, older = store.list_dataset_versions(name="shop/raw")
    compared = cli(project, "data", "diff", older.id, newer.id)
    assert compared.exit_code == 0, compared.output
    assert "40" in compared.stdout and "60" in compared.stdout

    profiled = cli(project, "data", "profile", "orders")
    assert profiled.exit_code == 0, profiled.output
    assert "schema:" in profiled.stdout and "country" in profiled.stdout

    typo = cli(project, "data", "profile", "ordres")
    assert typo.exit_code == 1
    assert "did you mean 'orders'" in typo.stderr


def test_schema_change_between_runs_is_explained(project: Path) -> None:
    assert cli(project, "run").exit_code == 0
    text = orders(40).replace("amount", "total_amount")
    (project / "data" / "orders.csv").write_text(text)
    result = cli(project, "run")
    assert result.exit_code == 1
    assert "columns changed since dataset version" in result.stderr
    assert "removed amount (renamed to total_amount?)" in result.stderr


def test_report_json_is_machine_readable(project: Path) -> None:
    assert cli(project, "run").exit_code == 0
    with MetadataStore(f"sqlite:///{project / '.conveyor' / 'conveyor.db'}") as store:
        validated = store.list_dataset_versions(name="shop/validated")[0]
    from conveyor.artifacts import ArtifactStore

    artifacts = ArtifactStore(str(project / ".conveyor" / "artifacts"))
    report = json.loads(artifacts.get_bytes(validated.artifacts["report_json"]))
    assert report["quarantined_rows"] == 2
    assert validated.stats["quarantined_rows"] == 2


def test_schema_change_allowed_by_the_spec(project: Path) -> None:
    assert cli(project, "run").exit_code == 0
    spec = project / "conveyor.yaml"
    spec.write_text(
        spec.read_text().replace(
            "  time_column: ordered_at\n", "  time_column: ordered_at\n  on_schema_change: allow\n"
        )
    )
    (project / "data" / "orders.csv").write_text(orders(40, bad=2).replace(",ordered_at", ",ts"))
    result = cli(project, "run")
    assert result.exit_code == 0, result.output


def test_missing_source_file_names_the_source_and_resumes_after_the_fix(project: Path) -> None:
    data = project / "data" / "orders.csv"
    content = data.read_text()
    data.unlink()
    failed = cli(project, "run")
    assert failed.exit_code == 1
    assert "source 'orders'" in failed.stderr and "data/orders.csv" in failed.stderr
    data.write_text(content)
    resumed = cli(project, "run", "--resume")
    assert resumed.exit_code == 0, resumed.output
