"""The steps every protocol shares: find the model, validate, predict, shape the answer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.types import Scope

from conveyor.serving.app._http import HttpError
from conveyor.serving.app._middleware import context, request_id
from conveyor.serving.app._state import ServedModel, ServingState

if TYPE_CHECKING:
    import numpy as np

    from conveyor.serving.runtimes import Prediction

__all__ = ["ModelFailedError", "find_model", "predict", "probability_rows", "validated"]

logger = logging.getLogger("conveyor.serving")

Columns = Mapping[str, "np.ndarray[Any, Any]"]


class ModelFailedError(Exception):
    """The model raised on a valid request (answered with 500 and the request id)."""

    def __init__(self, request_id: str) -> None:
        super().__init__(
            f"the model failed to predict (request id {request_id}); the server log has details"
        )
        self.request_id = request_id


def find_model(
    state: ServingState,
    scope: Scope,
    name: str | None = None,
    version: str | None = None,
    *,
    route: bool = True,
) -> ServedModel:
    """The version that answers a request (503 while loading, 404 for no such model/version).

    Without ``version`` the model's router picks one (by the sticky header when the rollout
    declares one) and maybe a shadow version, kept in the request's context for
    :func:`predict`; an explicit ``version`` (V2's ``/versions/{v}``) pins that version.
    ``route=False`` (metadata) gives the version with the most traffic instead.
    """
    if not state.ready:
        detail = f": {state.error}" if state.error else ""
        raise HttpError(503, f"the server is not ready ({state.status}{detail}); retry shortly")
    group = state.group(name)
    if group is None:
        known = ", ".join(sorted(state.models)) or "none"
        raise HttpError(404, f"unknown model {name!r}; served models: {known}", "model")
    ctx = context(scope)
    if version is None and not route:
        served = group.primary
    elif version is None:
        served, shadow = group.route(scope["headers"])
        if shadow is not None:
            ctx["shadow"] = shadow
    else:
        found = group.versions.get(int(version)) if version.isdigit() else None
        if found is None:
            have = ", ".join(str(v) for v in sorted(group.versions))
            raise HttpError(
                404, f"model {group.name!r} has no version {version!r} here (serving {have})",
                "version",
            )  # fmt: skip
        served = found
    ctx["model_version"] = served.version
    return served


def validated(build: Callable[[], dict[str, Any]], *, status: int = 422) -> dict[str, Any]:
    """Run an ``_inputs`` conversion, turning its ``InputError`` into an :class:`HttpError`."""
    from conveyor.serving._inputs import InputError

    try:
        columns = build()
    except InputError as err:
        raise HttpError(status, str(err), err.field) from None
    if not columns:
        raise HttpError(400, "the request holds no feature columns")
    return columns


def n_rows(columns: Columns) -> int:
    """Rows in validated columns (all columns have the same length)."""
    return len(next(iter(columns.values())))


async def predict(
    state: ServingState, served: ServedModel, columns: Columns, scope: Scope
) -> Prediction:
    """The model's answer; a model error is logged with its traceback and request id."""
    rid = request_id(scope)
    try:
        shadow = context(scope).get("shadow")
        return await state.predict(served, columns, n_rows(columns), rid, shadow)
    except Exception:
        logger.exception(
            "model %s version %s failed on request %s", served.name, served.version, rid
        )
        raise ModelFailedError(rid) from None


def probability_rows(
    prediction: Prediction, classes: tuple[Any, ...] | None, prefix: str = ""
) -> list[dict[str, float]] | None:
    """Per-row ``{prefix + class: probability}`` dicts, or None for a regressor."""
    if prediction.probabilities is None or classes is None:
        return None
    keys = [f"{prefix}{label}" for label in classes]
    return [dict(zip(keys, row, strict=True)) for row in prediction.probabilities.tolist()]
