"""``POST /outcomes``: clients report what happened after an answer, for the A/B test.

An A/B rollout compares the versions on an outcome only the client learns (did the user
convert, was the prediction right): the client reads which version answered from the
``X-Model-Version`` response header and later reports the outcome for that version::

    POST /outcomes
    {"outcomes": [{"model_version": 2, "value": 1, "request_id": "optional"}, ...]}

    202 {"accepted": 1}

``value`` is a finite number (0 or 1 for a ``two_proportion`` test) of magnitude at most
:data:`MAX_VALUE` (its square is summed, and one overflow would void a whole flush);
``request_id`` (the answer's ``X-Request-ID``) is checked but not stored yet. The worker adds
the outcomes to its rollout statistics, which the server writes to the metadata store, where the
controller sums every replica's counts and runs the test. A body is taken whole or not at
all: 400 when malformed, 422 naming the first invalid field (``outcomes[3].value``), 413 when
too large, and 404 when the server follows no deployment (it was started with explicit models,
so nothing would read the outcomes).
"""

from __future__ import annotations

import math
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from conveyor.serving.app._http import HttpError, json_response, parse_json, read_body
from conveyor.serving.app._middleware import context, request_id
from conveyor.serving.app._state import ServingState

__all__ = ["MAX_VALUE", "parse_outcomes", "routes"]

MAX_VALUE: Final = 1e12
"""Largest magnitude of an outcome."""

_FIELDS: Final = frozenset({"model_version", "value", "request_id"})
_EXAMPLE: Final = '{"outcomes": [{"model_version": 2, "value": 1}]}'


def routes(state: ServingState) -> list[BaseRoute]:
    """``POST /outcomes``, bound to the worker's state."""

    async def outcomes_endpoint(request: Request) -> Response:
        scope = request.scope
        context(scope)["endpoint"] = "outcomes"
        rid = request_id(scope)
        try:
            if state.stats is None:
                raise HttpError(
                    404,
                    "this server follows no deployment, so no A/B test reads outcomes; serve the "
                    "project's deployment (`conveyor serve` without model URIs) to report them",
                )
            document = parse_json(await read_body(request, state.options.max_body_bytes))
            outcomes = parse_outcomes(document)
        except HttpError as err:
            body = {"error": err.message, "field": err.field, "request_id": rid}
            return json_response(body, err.status)
        for version, value in outcomes:
            state.stats.outcome(version, value)
        return json_response({"accepted": len(outcomes)}, 202)

    return [Route("/outcomes", outcomes_endpoint, methods=["POST"])]


def parse_outcomes(document: Any) -> list[tuple[int, float]]:
    """``(model_version, value)`` pairs of a ``/outcomes`` body.

    Raises:
        HttpError: 400 for a malformed body, 422 naming the first invalid field.
    """
    if not isinstance(document, dict) or "outcomes" not in document:
        raise HttpError(400, f"the body must be a JSON object like {_EXAMPLE}", "outcomes")
    extra = sorted(set(document) - {"outcomes"})
    if extra:
        raise HttpError(422, f'unknown key {extra[0]!r}; the body holds only "outcomes"', extra[0])
    items = document["outcomes"]
    if not isinstance(items, list) or not items:
        raise HttpError(400, '"outcomes" must be a non-empty list of objects', "outcomes")
    return [_outcome(item, f"outcomes[{index}]") for index, item in enumerate(items)]


def _outcome(item: Any, where: str) -> tuple[int, float]:
    if not isinstance(item, dict):
        raise HttpError(
            400, f'{where} must be an object like {{"model_version": 2, "value": 1}}', where
        )
    extra = sorted(set(item) - _FIELDS)
    if extra:
        known = ", ".join(sorted(_FIELDS))
        raise HttpError(422, f"{where} has unknown key {extra[0]!r}; expected {known}", where)
    version = item.get("model_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise HttpError(
            422,
            f"{where}.model_version must be the version that answered (an integer >= 1, as in "
            f"the X-Model-Version response header), got {version!r}",
            f"{where}.model_version",
        )
    value = item.get("value")
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float
            pass
    if not abs(number) <= MAX_VALUE:  # also NaN and infinities
        raise HttpError(
            422,
            f"{where}.value must be a finite number from -{MAX_VALUE:g} to {MAX_VALUE:g} (0 or 1 "
            f"for a success rate), got {value!r}",
            f"{where}.value",
        )
    rid = item.get("request_id")
    if rid is not None and not isinstance(rid, str):
        raise HttpError(
            422, f"{where}.request_id must be a string or null, got {rid!r}", f"{where}.request_id"
        )
    return version, number
