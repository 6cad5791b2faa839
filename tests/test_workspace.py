"""Finding the project and merging settings: environment, then the spec, then defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli import app
from conveyor.errors import ProjectError
from conveyor.scaffold import init_project
from conveyor.spec import SettingsSpec
from conveyor.store import MetadataStore, StepStatus
from conveyor.workspace import Project

ENV = ("CONVEYOR_DB_URL", "CONVEYOR_ARTIFACTS_URL", "MLFLOW_TRACKING_URI", "CONVEYOR_REDIS_URL")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def test_find_walks_up_and_at_is_exact(tmp_path: Path) -> None:
    root = init_project(tmp_path / "proj").root
    assert Project.find(root / "data") == Project(root)
    with pytest.raises(ProjectError, match=r"no conveyor.yaml found in .* or any parent"):
        Project.find(tmp_path)
    with pytest.raises(ProjectError, match="does not exist"):
        Project.at(tmp_path / "nowhere")


def test_defaults_live_in_the_state_folder(tmp_path: Path) -> None:
    project = Project(tmp_path)
    settings = project.settings()
    assert settings.db_url == f"sqlite:///{tmp_path / '.conveyor' / 'conveyor.db'}"
    assert settings.artifacts_url == str(tmp_path / ".conveyor" / "artifacts")
    assert settings.mlflow_tracking_uri == f"sqlite:///{tmp_path / '.conveyor' / 'mlflow.db'}"
    assert settings.redis_url is None


def test_environment_beats_spec_beats_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = Project(tmp_path)
    spec = SettingsSpec(
        db_url="postgresql+psycopg://spec@db/x",
        artifacts_url="shared/artifacts",
        redis_url="redis://spec:6379/0",
    )
    from_spec = project.settings(spec)
    assert from_spec.db_url == "postgresql+psycopg://spec@db/x"
    assert from_spec.artifacts_url == str(tmp_path / "shared" / "artifacts")  # project-relative
    assert from_spec.redis_url == "redis://spec:6379/0"

    monkeypatch.setenv("CONVEYOR_DB_URL", "postgresql+psycopg://env@db/y")
    monkeypatch.setenv("CONVEYOR_ARTIFACTS_URL", "s3://bucket/prefix")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("CONVEYOR_REDIS_URL", "redis://env:6379/1")
    from_env = project.settings(spec)
    assert from_env.db_url == "postgresql+psycopg://env@db/y"
    assert from_env.artifacts_url == "s3://bucket/prefix"
    assert from_env.mlflow_tracking_uri == "http://mlflow:5000"
    assert from_env.redis_url == "redis://env:6379/1"


@pytest.mark.integration
def test_run_against_postgresql_and_memory_artifacts_by_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend_url: object
) -> None:
    assert callable(backend_url)
    db_url = backend_url("postgresql", fresh=True)
    root = init_project(tmp_path / "proj").root
    monkeypatch.setenv("CONVEYOR_DB_URL", db_url)
    monkeypatch.setenv("CONVEYOR_ARTIFACTS_URL", f"memory://conveyor-{tmp_path.name}")
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(app, ["-p", str(root), "run"], catch_exceptions=False)
        assert result.exit_code == 0, result.output

    assert not (root / ".conveyor" / "conveyor.db").exists()  # nothing went to SQLite
    with MetadataStore(db_url) as store:
        latest, first = store.list_runs(project="proj")
        assert {s.status for s in store.list_step_runs(first.id)} == {StepStatus.SUCCEEDED}
        assert {s.status for s in store.list_step_runs(latest.id)} == {StepStatus.CACHED}
