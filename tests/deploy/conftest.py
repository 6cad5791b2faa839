"""Real MLflow, a real metadata store on every backend, a fake clock, traffic and a webhook.

* ``tracking`` (tests/conftest.py) is one SQLite MLflow database for the session with one logged
  Conveyor model; ``registry`` is a registered model unique to the test, and ``versions(n)``
  registers ``n`` versions of that logged model (cheap: no new run).
* ``store`` is a metadata store on each backend (PostgreSQL's database is shared, so every
  test uses its own project name, which is also the registered model's name).
* ``clock`` is a settable clock, so tests never sleep through ``min_seconds_per_step``.
* ``write_stats(store, project, version, requests, at=...)`` (tests/conftest.py) adds what a
  replica counted.
* ``webhook`` is a real HTTP server on 127.0.0.1 that records the JSON it receives.
* ``live`` is a registered model whose v1 is the champion and v2 is ready to roll out;
  ``artifacts`` an artifact store folder; ``write_log``/``log_predictions`` write prediction log
  files as the server does and ``ingest`` ingests labels for them (``conveyor labels ingest``).
* ``rollout`` starts rolling ``live``'s v2 out under a spec (``classifier_spec`` writes one) and
  builds the controller watching it as ``conveyor controller`` does (project folder
  ``tmp_path``, artifact store ``artifacts``).
"""

from __future__ import annotations

import csv
import json
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.conftest import Tracking
from tests.conftest import write_stats as write_stats  # for the tests here: `from .conftest`

from conveyor.deploy import Controller, start_deployment
from conveyor.monitor import ingest_labels
from conveyor.spec import Rollout as RolloutPolicy
from conveyor.spec import Spec
from conveyor.store import DeploymentRecord, MetadataStore


@pytest.fixture
def project() -> str:
    """A project name unique to the test (also its registered model's name)."""
    return f"deploy-{secrets.token_hex(4)}"


@pytest.fixture
def registry(tracking: Tracking, project: str) -> Any:
    from conveyor.registry import ModelRegistry

    return ModelRegistry(tracking.client, project)


Versions = Callable[..., list[int]]


@pytest.fixture
def versions(registry: Any, tracking: Tracking) -> Versions:
    """``versions(n, **tags) -> [numbers]``: register ``n`` versions of the logged model."""

    def register(n: int, **tags: str) -> list[int]:
        return [
            registry.register(
                model_uri=tracking.model_uri, run_id=tracking.run_id, tags=tags
            ).version
            for _ in range(n)
        ]

    return register


@pytest.fixture
def live(registry: Any, versions: Versions, store: MetadataStore) -> Any:
    """v1 is the champion, v2 the version to roll out."""
    versions(2)
    registry.promote(1, reason="first", actor="me", store=store)
    return registry


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    return tmp_path / "artifacts"


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    with MetadataStore(store_url) as opened:
        yield opened


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[MetadataStore]:
    """A store for tests where the backend does not matter (MLflow-heavy ones)."""
    with MetadataStore(f"sqlite:///{tmp_path / 'store' / 'conveyor.db'}") as opened:
        yield opened


class Clock:
    """A clock that moves only when told to; starts at a statistics window boundary."""

    def __init__(self) -> None:
        real = datetime.now(UTC)
        self.now = real.replace(second=real.second // 10 * 10, microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def classifier_spec(project: str, rollout: dict[str, Any], **sections: Any) -> Spec:
    """A binary classifier (target ``label``) rolled out by ``rollout``, plus ``sections``.

    Every step of the rollout lasts at least 100 requests and 60 seconds unless ``rollout`` says
    otherwise.
    """
    return Spec.model_validate(
        {
            "name": project,
            "model": {
                "task": "binary_classification",
                "target": "label",
                "algorithm": "sklearn:sklearn.linear_model.LogisticRegression",
            },
            "rollout": {"min_requests_per_step": 100, "min_seconds_per_step": 60, **rollout},
            **sections,
        }
    )


@dataclass(frozen=True)
class Rollout:
    """Rolls ``live``'s v2 out under a spec, watched as ``conveyor controller`` watches it."""

    store: MetadataStore
    live: Any
    project: str
    clock: Clock
    artifacts: Path
    tracking: Tracking

    def start(self, spec: Spec) -> DeploymentRecord:
        """Start rolling v2 out against the champion v1 under ``spec``'s rollout policy."""
        return start_deployment(
            self.store,
            self.live,
            self.project,
            spec.rollout,
            version=2,
            actor="a",
            reason="r",
            now=self.clock(),
        )

    def controller(self, spec: Spec) -> Controller:
        """A new controller for ``spec``, reading the prediction log and labels in ``artifacts``."""
        root = self.artifacts.parent
        return Controller.from_spec(
            self.store,
            spec,
            tracking_uri=self.tracking.uri,
            project_root=root,
            artifacts_url=str(self.artifacts),
            cache_dir=root / "models",
            holder="c1",
            clock=self.clock,
        )

    def begin(self, spec: Spec) -> tuple[DeploymentRecord, Controller]:
        """:meth:`start` the rollout, and the :meth:`controller` that will judge it."""
        return self.start(spec), self.controller(spec)


@pytest.fixture
def rollout(
    store: MetadataStore,
    live: Any,
    project: str,
    clock: Clock,
    artifacts: Path,
    tracking: Tracking,
) -> Rollout:
    return Rollout(store, live, project, clock, artifacts, tracking)


def observed_deployment(
    store: MetadataStore, rollout: RolloutPolicy, began: datetime, **fields: Any
) -> DeploymentRecord:
    """v4 rolling out against v3 under ``rollout``, in a step that began at ``began``.

    The deployment is a new project's (``record.project``); ``fields`` are more arguments of
    :meth:`MetadataStore.create_deployment` (``weights``, ``shadow_version``...).
    """
    return store.create_deployment(
        project=f"observe-{secrets.token_hex(4)}",
        champion_version=3,
        challenger_version=4,
        policy=rollout.policy,
        config=rollout.model_dump(mode="json"),
        state="rolling",
        step_started_at=began,
        actor="a",
        **fields,
    )


def write_log(
    artifacts: Path,
    version: int,
    start: datetime,
    prefix: str,
    columns: dict[str, Any],
    *,
    shadow: bool = False,
) -> list[str]:
    """Write one Parquet file of the prediction log as the server does (a row every 0.25 s).

    ``columns`` holds the ``in_*``/``out_*`` columns; returns the request ids.
    """
    n = len(next(iter(columns.values())))
    ids = [f"{prefix}-{i}" for i in range(n)]
    folder = artifacts / "predictions" / f"date={start:%Y-%m-%d}" / f"model_version={version}"
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "request_id": ids,
            "row": pa.array(np.zeros(n, dtype=np.int32)),
            "timestamp": pa.array(
                [start + timedelta(seconds=0.25 * i) for i in range(n)],
                pa.timestamp("us", tz="UTC"),
            ),
            "model_name": ["m"] * n,
            "model_version": pa.array(np.full(n, version, dtype=np.int64)),
            "latency_ms": np.full(n, 3.0),
            "shadow": pa.array(np.full(n, shadow, dtype=bool)),
            **columns,
        }
    )
    pq.write_table(table, folder / f"part-w0-{prefix}.parquet")
    return ids


def log_predictions(
    artifacts: Path, version: int, scores: np.ndarray, start: datetime, prefix: str
) -> list[str]:
    """Log a binary classifier's answers (class 1 when the score is above 0.5)."""
    proba = np.column_stack([1 - scores, scores])
    columns = {
        "in_x": scores,
        "out_prediction": (scores > 0.5).astype(np.int64),
        "out_proba": pa.FixedSizeListArray.from_arrays(pa.array(proba.ravel()), 2),
    }
    return write_log(artifacts, version, start, prefix, columns)


def ingest(
    artifacts: Path,
    ids: list[str],
    labels: Any,
    name: str,
    *,
    task: str = "binary_classification",
) -> None:
    """Labels for ``ids`` arrive as a CSV file (``request_id,row,label``)."""
    path = artifacts.parent / f"{name}.csv"
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["request_id", "row", "label"])
        writer.writerows([rid, 0, y] for rid, y in zip(ids, labels, strict=True))
    ingest_labels(str(artifacts), path, task=task)


@dataclass
class Webhook:
    """A local HTTP server that records every JSON body POSTed to it."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/rollback"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield hook
    server.shutdown()
    server.server_close()
    thread.join()
