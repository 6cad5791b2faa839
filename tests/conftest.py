"""Fixtures shared by every test: database URLs for the backends Conveyor supports.

Any component that stores state in a database (metadata store, Optuna storage, online store)
can run one test suite against every backend:

* ``store_url`` is parametrized over ``BACKENDS`` and gives a URL to use: a fresh SQLite file,
  or the session's PostgreSQL database (shared, so filter by names unique to the test).
* ``backend_url(kind, fresh=False)`` is the factory behind it, for tests that pick the backend
  themselves or need an empty PostgreSQL database (``fresh=True``).
* ``postgres_url`` is the session's PostgreSQL database; ``postgres_server`` creates more.

PostgreSQL is expected at ``127.0.0.1:5432`` as user ``postgres`` without a password
(override with ``CONVEYOR_TEST_POSTGRES_ADMIN_URL``, a libpq URL to a maintenance database).
When it is unreachable the tests that need it are skipped, except when ``CI=true``: there they
fail, so a broken CI service cannot silently turn a suite green.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy.engine import URL

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
