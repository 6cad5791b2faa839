"""The ``serve:`` section of the spec becomes the server's and each app's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.cli.serve import server_config
from conveyor.scaffold import init_project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONVEYOR_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    root = tmp_path / "proj"
    init_project(root, name="shop")
    return root


def test_defaults(project: Path) -> None:
    config = server_config(project)
    assert config.model_uris == ()
    assert config.follows_deployment and config.project == "shop"
    assert config.store_url is not None and config.store_url.startswith("sqlite:///")
    assert config.app.max_body_bytes == 10 * 1024 * 1024
    assert config.app.cache_size == 0


def test_spec_settings_and_command_line_overrides(project: Path) -> None:
    with (project / "conveyor.yaml").open("a", encoding="utf-8") as spec:
        spec.write(
            "\nserve:\n  workers: 3\n  max_body_mb: 0.5\n"
            "  cache: {enabled: true, max_entries: 100, ttl_seconds: 5}\n"
            "  batching: {max_batch_size: 8, max_wait_ms: 1}\n"
        )
    config = server_config(project, workers=1, port=9001)
    assert (config.workers, config.port) == (1, 9001)
    assert config.app.max_body_bytes == 512 * 1024
    assert (config.app.cache_size, config.app.cache_ttl_seconds) == (100, 5.0)
    assert (config.app.max_batch_size, config.app.max_wait_ms) == (8, 1.0)
