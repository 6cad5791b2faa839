"""Fixtures of the monitoring tests: a project folder, its prediction log, a registered model.

* ``project`` is a project folder, the working directory, with no Conveyor or MLflow setting
  from the environment (and a console wide enough for whole lines).
* ``log_predictions(project, x, start, version=1)`` writes rows of feature ``x`` to its log.
* ``monitored`` is that project tracking to the session's MLflow database (``tracking``, from
  tests/conftest.py): it logs predictions, registers a champion, builds the monitoring loop.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.conftest import Tracking

from conveyor.cli._console import console, err_console
from conveyor.monitor import MonitorLoop
from conveyor.registry import ModelRegistry, connect
from conveyor.session import Session


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CONVEYOR_DB_URL", "CONVEYOR_ARTIFACTS_URL", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    for each in (console, err_console):
        monkeypatch.setattr(each, "width", 200)
    name = f"drift-{secrets.token_hex(3)}"
    (tmp_path / "conveyor.yaml").write_text(f"name: {name}\n", encoding="utf-8")
    return tmp_path


def _log_predictions(project: Path, x: np.ndarray, start: datetime, version: int = 1) -> None:
    """Write rows to the project's prediction log as the server does (shadow rows too)."""
    n = len(x)
    day = start.strftime("%Y-%m-%d")
    folder = project / ".conveyor" / "artifacts" / "predictions" / f"date={day}"
    folder = folder / f"model_version={version}"
    folder.mkdir(parents=True, exist_ok=True)
    times = [start + timedelta(seconds=i) for i in range(n)]
    table = pa.table(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "row": pa.array(np.zeros(n, dtype=np.int32)),
            "timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
            "model_name": ["m"] * n,
            "model_version": pa.array(np.full(n, version, dtype=np.int64)),
            "latency_ms": np.ones(n),
            "shadow": pa.array(np.zeros(n, dtype=bool)),
            "in_x": x,
            "in_colour": np.where(x > 0, "warm", "cold").tolist(),
            "out_prediction": (x > 0.5).astype(np.int64),
        }
    )
    shadow = table.set_column(6, "shadow", pa.array(np.ones(n, dtype=bool)))
    shadow = shadow.set_column(7, "in_x", pa.array(np.full(n, 1e6)))
    pq.write_table(table, folder / f"part-w0-{start:%H%M%S}.parquet")
    pq.write_table(shadow, folder / f"part-w1-{start:%H%M%S}.parquet")


LogPredictions = Callable[..., None]


@pytest.fixture
def log_predictions() -> LogPredictions:
    """``log(project, x, start, version=1)``: rows of feature ``x`` in the prediction log."""
    return _log_predictions


@dataclass(frozen=True)
class Monitored:
    """The project folder ``root``, tracking to the session's MLflow database."""

    root: Path
    tracking: Tracking

    def log(self, x: np.ndarray, start: datetime, version: int = 1) -> None:
        """Rows of feature ``x`` in the prediction log, a second apart from ``start``."""
        _log_predictions(self.root, x, start, version)

    def register_champion(self, training: pa.Table) -> int:
        """Store ``training`` as dataset version ``v-train`` and register the champion on it."""
        pq.write_table(training, self.root / "train.parquet")
        schema = training.schema
        with Session.open(self.root) as session:
            ref = session.artifacts.put_file(self.root / "train.parquet")
            session.store.add_dataset_version(
                id="v-train",
                name="p/validated",
                sha256=ref.digest,
                row_count=training.num_rows,
                schema={name: str(schema.field(name).type) for name in schema.names},
                source={},
            )
            registry = ModelRegistry(self.tracking.client, session.require_spec().spec.name)
            version = registry.register(
                model_uri=self.tracking.model_uri,
                run_id=self.tracking.run_id,
                tags={"conveyor.dataset_version": "v-train"},
            ).version
            registry.promote(version, reason="first", actor="test", store=session.store)
        return version

    def loop(self, session: Session, now: datetime | None = None) -> MonitorLoop:
        """The monitoring loop of the project open in ``session``, as the controller runs it.

        Its clock is real time, or stays at ``now``.
        """
        spec = session.require_spec().spec
        uri = self.tracking.uri
        return MonitorLoop(
            session.store,
            session.artifacts,
            session.settings.artifacts_url,
            spec,
            lambda: ModelRegistry(connect(uri), spec.name),
            session.project.root / "reports",
            clock=(lambda: datetime.now(UTC)) if now is None else (lambda: now),
        )


@pytest.fixture
def monitored(project: Path, tracking: Tracking, monkeypatch: pytest.MonkeyPatch) -> Monitored:
    """The ``project`` folder, tracking to the session's MLflow database (``tracking``)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.uri)
    return Monitored(project, tracking)
