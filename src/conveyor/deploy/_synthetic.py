"""Blue-green's synthetic requests: load the new version as a server would and make it answer.

The version is loaded with :func:`conveyor.serving.load_model` (resolved in the registry,
downloaded once into the cache, checksums verified, warmed up), then asked ``requests``
one-row predictions. The rows are its MLflow input example (rows of the training data logged
with the model), cycled; a version logged without one gets rows of missing values, which every
Conveyor model imputes. Each answer must be one label, and probabilities (if any) finite. A
registry that cannot be reached proves nothing about the version: the check is then inconclusive
(None) and the controller tries again at its next tick.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConveyorError, TrackingError

if TYPE_CHECKING:
    import numpy as np

    from conveyor.registry import ModelRegistry
    from conveyor.serving import BaseRuntime

__all__ = ["SyntheticCheck", "SyntheticResult", "run_synthetic_requests"]

logger = logging.getLogger(__name__)

Columns = dict[str, "np.ndarray[Any, Any]"]


@dataclass(frozen=True)
class SyntheticResult:
    """How a version answered its synthetic requests.

    Attributes:
        ok: Whether every request got a well-formed answer.
        requests: Requests sent (0 when the version did not even load).
        failures: Requests that failed or got a malformed answer.
        detail: One sentence for the event history.
    """

    ok: bool
    requests: int
    failures: int
    detail: str


SyntheticCheck = Callable[["ModelRegistry", int, int], "SyntheticResult | None"]
"""``check(registry, version, requests)``: a :class:`SyntheticResult`, or None if inconclusive."""


def run_synthetic_requests(
    registry: ModelRegistry, version: int, requests: int, *, cache_dir: Path
) -> SyntheticResult | None:
    """Load ``version`` of ``registry``'s model and send it ``requests`` one-row predictions.

    Args:
        registry: The registered model (its client's tracking URI is used to load).
        version: The version to check.
        requests: How many one-row predictions to make.
        cache_dir: Where downloaded versions are kept (a server's cache may be shared).

    Returns:
        The result, or None when MLflow could not be reached (try again later).
    """
    from conveyor.serving import load_model

    uri = f"models:/{registry.name}/{version}"
    try:
        loaded = load_model(uri, tracking_uri=registry.client.tracking_uri, cache_dir=cache_dir)
    except TrackingError as err:
        logger.warning("synthetic requests to %s postponed: %s", uri, err)
        return None
    except ConveyorError as err:
        return SyntheticResult(False, 0, 0, f"v{version} failed to load: {err}")
    rows = _example_rows(cache_dir / registry.name / str(version), loaded.runtime)
    failures, first = 0, ""
    for index in range(requests):
        try:
            problem = _answer_problem(loaded.runtime, rows[index % len(rows)])
        except Exception as err:  # a model may raise anything; each failure is counted
            problem = f"{type(err).__name__}: {err}"
        if problem:
            failures += 1
            first = first or problem
    if failures:
        detail = f"v{version} failed {failures} of {requests} synthetic requests (first: {first})"
        return SyntheticResult(False, requests, failures, detail)
    return SyntheticResult(True, requests, 0, f"v{version} answered {requests} synthetic requests")


def _answer_problem(runtime: BaseRuntime, columns: Columns) -> str:
    import numpy as np

    prediction = runtime.predict(columns)
    if len(prediction.labels) != 1:
        return f"{len(prediction.labels)} labels for 1 row"
    probabilities = prediction.probabilities
    if probabilities is not None and not np.isfinite(probabilities).all():
        return "probabilities that are not finite"
    label = prediction.labels[0]
    if isinstance(label, float) and not math.isfinite(label):
        return f"prediction {label}"
    return ""


def _example_rows(mlflow_dir: Path, runtime: BaseRuntime) -> list[Columns]:
    """One-row inputs from the version's MLflow input example, or a row of missing values."""
    from conveyor.serving import columns_from_split

    schema = runtime.feature_schema
    try:
        example = json.loads((mlflow_dir / "input_example.json").read_text(encoding="utf-8"))
        columns, data = example["columns"], example["data"]
        rows = [columns_from_split(columns, [row], schema) for row in data]
    except (OSError, ValueError, KeyError, TypeError) as err:  # InputError is a ValueError
        logger.info("no usable input example in %s (%s); using missing values", mlflow_dir, err)
        rows = []
    return rows or [runtime.example_columns(1)]
