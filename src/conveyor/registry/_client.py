"""Connecting to MLflow: fail fast when the server is away, keep local artifacts in the project."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit, urlunsplit

from conveyor.errors import RegistryError, TrackingError

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["connect", "ensure_experiment", "is_remote", "mlflow_errors", "redact_uri"]

PROBE_TIMEOUT_S: Final = 3.0
"""How long ``connect`` waits for an http(s) tracking server to answer at all."""

# MLflow retries a refused request 7 times with exponential backoff (minutes in all). Fewer
# retries still ride out a server restart; a user's own setting always wins.
_HTTP_DEFAULTS: Final = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
_UNREACHABLE_HINTS: Final = (
    "Max retries exceeded",
    "Connection refused",
    "Failed to establish a new connection",
    "Read timed out",
    "NameResolutionError",
)


def connect(tracking_uri: str) -> MlflowClient:
    """An MLflow client for ``tracking_uri``, which also serves as the registry URI.

    The URI also becomes MLflow's process-wide tracking and registry URI, so ``mlflow.start_run``
    and ``mlflow.pyfunc.log_model`` write where the client reads. For http(s) servers it is
    probed once, with a short timeout, and MLflow's request retries are lowered (unless set in
    the environment) so a server that goes away fails in seconds, not minutes. For SQLite URIs
    the database's folder is created.

    Raises:
        TrackingError: an http(s) tracking server does not answer.
    """
    scheme = urlsplit(tracking_uri).scheme.lower()
    if scheme in ("http", "https"):
        for name, value in _HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
        _probe(tracking_uri)
    elif scheme.startswith("sqlite"):
        database = _sqlite_path(tracking_uri)
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    # MLflow logs routine INFO lines (database migrations, signature inference) to stderr,
    # which would break into Conveyor's progress display; its warnings and errors still show.
    if logging.getLogger("mlflow").getEffectiveLevel() < logging.WARNING:
        logging.getLogger("mlflow").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def ensure_experiment(client: MlflowClient, name: str, *, artifact_location: str | None) -> str:
    """The id of the experiment ``name``, created (or restored from deletion) if needed.

    Args:
        client: A client from :func:`connect`.
        name: The experiment's name.
        artifact_location: Where a new experiment keeps its artifacts, used only when tracking
            is local (SQLite, files), so they land in the project rather than in ``./mlruns``
            of whatever folder the command ran in. A remote server decides for itself.

    Raises:
        TrackingError: the tracking server is unreachable.
        RegistryError: MLflow refused to create the experiment.
    """
    from mlflow.exceptions import MlflowException

    with mlflow_errors(f"cannot set up the MLflow experiment {name!r}"):
        found = client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                client.restore_experiment(found.experiment_id)
            return str(found.experiment_id)
        location = None
        if artifact_location and not is_remote(client.tracking_uri):
            location = artifact_location
            if "://" not in location:
                location = Path(location).expanduser().resolve().as_uri()
        try:
            return str(client.create_experiment(name, artifact_location=location))
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            # Another process created it between our lookup and our create.
            raced = client.get_experiment_by_name(name)
            if raced is None:
                raise
            return str(raced.experiment_id)


def is_remote(tracking_uri: str) -> bool:
    """Whether MLflow is a server reached over http(s) (so it can be linked to)."""
    return urlsplit(tracking_uri).scheme.lower() in ("http", "https")


def redact_uri(uri: str) -> str:
    """``uri`` without a password, for messages."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@contextmanager
def mlflow_errors(action: str) -> Iterator[None]:
    """Turn MLflow's exceptions into :class:`TrackingError` (unreachable) or RegistryError."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as err:
        message = str(err.message).strip()
        if any(hint in message for hint in _UNREACHABLE_HINTS):
            raise TrackingError(
                f"{action}: the MLflow tracking server does not answer ({_first_line(message)}); "
                "start it or set MLFLOW_TRACKING_URI"
            ) from err
        raise RegistryError(f"{action}: {_first_line(message)}") from err


def _probe(tracking_uri: str) -> None:
    import urllib.error
    import urllib.request

    url = tracking_uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S):
            return
    except urllib.error.HTTPError:
        return  # it answered: an auth proxy or an old server without /health is still there
    except (OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise TrackingError(
            f"cannot reach the MLflow tracking server at {redact_uri(tracking_uri)}: {reason}; "
            "start it or set MLFLOW_TRACKING_URI"
        ) from err


def _sqlite_path(uri: str) -> Path | None:
    # sqlite:///relative.db and sqlite:////absolute.db, as SQLAlchemy reads them.
    _, _, rest = uri.partition(":///")
    path = rest.split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text
