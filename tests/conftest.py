"""Fixtures shared by every test: database URLs for the backends Conveyor supports.

Any component that stores state in a database (metadata store, Optuna storage, online store)
can run one test suite against every backend:

* ``store_url`` is parametrized over ``BACKENDS`` and gives a URL to use: a fresh SQLite file,
  or the session's PostgreSQL database (shared, so filter by names unique to the test).
* ``backend_url(kind, fresh=False)`` is the factory behind it, for tests that pick the backend
  themselves or need an empty PostgreSQL database (``fresh=True``).
* ``postgres_url`` is the session's PostgreSQL database; ``postgres_server`` creates more.

And what several folders need: ``tracking``, one SQLite MLflow database for the session with a
small Conveyor model logged in it (see :class:`Tracking`), and ``write_stats``, which adds the
serving statistics a replica would have counted. Test modules import them from here by this
module's name under ``--import-mode=importlib``: ``from tests.conftest import write_stats``.

PostgreSQL is expected at ``127.0.0.1:5432`` as user ``postgres`` without a password
(override with ``CONVEYOR_TEST_POSTGRES_ADMIN_URL``, a libpq URL to a maintenance database).
When it is unreachable the tests that need it are skipped, except when ``CI=true``: there they
fail, so a broken CI service cannot silently turn a suite green.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest
from sqlalchemy.engine import URL

if TYPE_CHECKING:
    from conveyor.store import MetadataStore

BACKENDS = ("sqlite", "postgresql")
_DEFAULT_ADMIN_URLS = (
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "postgresql://postgres@127.0.0.1:5432/test",
)

BackendUrl = Callable[..., str]


class PostgresServer:
    """A reachable PostgreSQL server on which tests create (and finally drop) databases."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self._created: list[str] = []

    def create_database(self) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        import psycopg

        name = f"conveyor_test_{secrets.token_hex(6)}"
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self._created.append(name)
        info = psycopg.conninfo.conninfo_to_dict(self.admin_url)
        url = URL.create(
            "postgresql+psycopg",
            username=str(info.get("user", "postgres")),
            password=None if info.get("password") is None else str(info["password"]),
            host=str(info.get("host", "127.0.0.1")),
            port=int(info.get("port", 5432)),
            database=name,
        )
        return url.render_as_string(hide_password=False)

    def drop_all(self) -> None:
        """Drop every database this object created, disconnecting whoever still uses it."""
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
            for name in self._created:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        self._created.clear()


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() in {"true", "1"}:
        pytest.fail(f"PostgreSQL is required in CI (CI=true) but {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The PostgreSQL server, or a skip (a failure when ``CI=true``) if there is none."""
    try:
        import psycopg
    except ImportError:
        _unavailable("the psycopg driver is not installed (pip install 'conveyor-ml[postgres]')")
    env_url = os.environ.get("CONVEYOR_TEST_POSTGRES_ADMIN_URL")
    errors = []
    for admin_url in (env_url,) if env_url else _DEFAULT_ADMIN_URLS:
        try:
            psycopg.connect(admin_url, connect_timeout=5).close()
        except psycopg.Error as err:
            errors.append(f"{admin_url}: {str(err).strip()}")
            continue
        server = PostgresServer(admin_url)
        yield server
        server.drop_all()
        return
    _unavailable("; ".join(errors))


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """URL of a database created for this test session (dropped at its end)."""
    return postgres_server.create_database()


@pytest.fixture
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> BackendUrl:
    """Factory ``backend_url(kind, *, fresh=False) -> str`` for ``kind`` in ``BACKENDS``.

    SQLite URLs always point at a new file in a folder that does not exist yet. PostgreSQL
    URLs point at the session's shared database, or at a new empty one with ``fresh=True``.
    """
    counter = iter(range(1_000_000))

    def make(kind: str, *, fresh: bool = False) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / f'db{next(counter)}' / 'conveyor.db'}"
        if kind == "postgresql":
            if fresh:
                server: PostgresServer = request.getfixturevalue("postgres_server")
                return server.create_database()
            url: str = request.getfixturevalue("postgres_url")
            return url
        raise ValueError(f"unknown backend {kind!r}; expected one of {BACKENDS}")

    return make


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgresql", marks=pytest.mark.integration),
    ]
)
def store_url(request: pytest.FixtureRequest, backend_url: BackendUrl) -> str:
    """A database URL, once per backend in ``BACKENDS``."""
    url: str = backend_url(request.param)
    return url


@dataclass(frozen=True)
class Tracking:
    """The session's MLflow database and a small Conveyor model logged in it once.

    The model is a decision tree on iris (numeric features ``a``, ``b``, ``c``, ``d``), saved in
    ``folder``; ``X`` are its features, ``model_uri`` and ``run_id`` where it was logged. Tests
    share the database: each registers models under a name of its own.
    """

    uri: str
    client: Any
    experiment_id: str
    folder: Path
    X: Any
    model_uri: str
    run_id: str

    def log_model(self, **metrics: float) -> tuple[str, str]:
        """Log the model again in a new run with ``metrics``; returns its model URI and run id."""
        import mlflow

        from conveyor.registry import connect, log_conveyor_model

        connect(self.uri)  # MLflow's process-wide URI: another test may have changed it
        with mlflow.start_run(experiment_id=self.experiment_id) as run:
            if metrics:
                mlflow.log_metrics(metrics)
            info = log_conveyor_model(self.folder, X_example=self.X)
        return info.model_uri, run.info.run_id


@pytest.fixture
def tracking(_session_tracking: Tracking) -> Iterator[Tracking]:
    """The session's MLflow database, made MLflow's current one for the test.

    Other tests point MLflow elsewhere; ``models:/m-...`` URIs of the logged model resolve
    only against this database, so it is set for every test that asks for it.
    """
    import mlflow

    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(_session_tracking.uri)
    mlflow.set_registry_uri(_session_tracking.uri)
    yield _session_tracking
    mlflow.set_tracking_uri(before[0])
    mlflow.set_registry_uri(before[1])


@pytest.fixture(scope="session")
def _session_tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracking]:
    """One SQLite MLflow database for the session (a new one migrates slowly), with a model."""
    import mlflow
    from sklearn.datasets import load_iris

    from conveyor.registry import connect, ensure_experiment, log_conveyor_model
    from conveyor.spec._metrics import Task
    from conveyor.train.algorithms import SklearnAlgorithm

    before = mlflow.get_tracking_uri()
    root = tmp_path_factory.mktemp("tracking")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = connect(uri)
    experiment = ensure_experiment(client, "tests", artifact_location=str(root / "artifacts"))
    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = ["a", "b", "c", "d"]
    folder = root / "model"
    SklearnAlgorithm(
        "sklearn.tree.DecisionTreeClassifier",
        task=Task.multiclass_classification,
        feature_schema=dict.fromkeys(X.columns, "numeric"),
    ).fit(X, y).save(folder)
    with mlflow.start_run(experiment_id=experiment) as run:
        info = log_conveyor_model(folder, X_example=X)
    yield Tracking(uri, client, experiment, folder, X, info.model_uri, run.info.run_id)
    mlflow.set_tracking_uri(before)
    mlflow.set_registry_uri(before)


def write_stats(
    store: MetadataStore,
    project: str,
    version: int,
    requests: int,
    *,
    at: datetime,
    errors: int = 0,
    latency_ms: float = 5.0,
    replica: str = "replica-1",
    **extra: Any,
) -> None:
    """Add what a replica would have counted for ``version`` in the window holding ``at``.

    All ``requests`` took ``latency_ms``; ``extra`` sets more fields of
    :class:`~conveyor.store.ServingStatsInput` (``shadow``, ``outcome_n``...).
    """
    from conveyor.store import LATENCY_BUCKETS_MS, ServingStatsInput, latency_bucket

    latency = [0] * (len(LATENCY_BUCKETS_MS) + 1)
    latency[latency_bucket(latency_ms)] = requests
    store.add_serving_stats(
        project=project,
        replica=replica,
        stats=[
            ServingStatsInput(
                model_version=version,
                window=at,
                requests=requests,
                errors=errors,
                latency_counts=latency,
                latency_ms_sum=latency_ms * requests,
                **extra,
            )
        ],
    )
