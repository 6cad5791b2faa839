"""``POST /outcomes``: clients report A/B outcomes; workers count them, the parent stores them."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conveyor.serving import LoadedModel, load_model
from conveyor.serving._follower import DeploymentFollower
from conveyor.serving._rollout_stats import StatsRecorder
from conveyor.serving.app import create_app
from conveyor.store import MetadataStore

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def loaded(registered_model: Any, tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return load_model(
        registered_model.uri,
        tracking_uri=registered_model.tracking_uri,
        cache_dir=tmp_path_factory.mktemp("model-cache"),
        runtime="native",
    )


@pytest.fixture
def recorder() -> StatsRecorder:
    return StatsRecorder()


@pytest.fixture
def client(loaded: LoadedModel, recorder: StatsRecorder) -> Iterator[TestClient]:
    """A worker that follows a deployment (it has a statistics recorder)."""
    with TestClient(create_app([loaded], stats=recorder), raise_server_exceptions=False) as client:
        yield client


def test_the_recorder_sums_outcomes_per_version_until_drained() -> None:
    recorder = StatsRecorder()
    for value in (1.0, 0.0, 1.0):
        recorder.outcome(2, value)
    recorder.outcome(3, -2.5)
    recorder.request(3, 200, 0.004)
    deltas = {d.version: d for d in recorder.drain()}
    assert (deltas[2].outcome_n, deltas[2].outcome_sum, deltas[2].outcome_sum_sq) == (3, 2.0, 2.0)
    assert (deltas[2].requests, deltas[2].shadow) == (0, False)  # outcomes alone
    assert (deltas[3].outcome_n, deltas[3].outcome_sum, deltas[3].outcome_sum_sq) == (1, -2.5, 6.25)
    assert deltas[3].requests == 1
    assert recorder.drain() == []


def test_a_client_reports_the_outcome_of_the_version_that_answered(
    client: TestClient, recorder: StatsRecorder, registered_model: Any
) -> None:
    answer = client.post("/predict", json={"instances": registered_model.rows[:1]})
    version = int(answer.headers["x-model-version"])
    response = client.post(
        "/outcomes",
        json={
            "outcomes": [
                {"model_version": version, "value": 1, "request_id": answer.json()["request_id"]},
                {"model_version": version, "value": 0},
                {"model_version": version, "value": 0.5, "request_id": None},
            ]
        },
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 3}
    [delta] = recorder.drain()
    assert (delta.version, delta.requests) == (version, 1)  # /outcomes is not a request served
    assert (delta.outcome_n, delta.outcome_sum, delta.outcome_sum_sq) == (3, 1.5, 1.25)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, None),
        (b"[1]", 400, "outcomes"),
        (b'{"outcomes": []}', 400, "outcomes"),
        (b'{"outcomes": [1]}', 400, "outcomes[0]"),
        (b'{"outcomes": [], "extra": 1}', 422, "extra"),
        (b'{"outcomes": [{"value": 1}]}', 422, "outcomes[0].model_version"),
        (b'{"outcomes": [{"model_version": "2", "value": 1}]}', 422, "outcomes[0].model_version"),
        (b'{"outcomes": [{"model_version": 2.0, "value": 1}]}', 422, "outcomes[0].model_version"),
        (b'{"outcomes": [{"model_version": true, "value": 1}]}', 422, "outcomes[0].model_version"),
        (b'{"outcomes": [{"model_version": 0, "value": 1}]}', 422, "outcomes[0].model_version"),
        (b'{"outcomes": [{"model_version": 1}]}', 422, "outcomes[0].value"),
        (b'{"outcomes": [{"model_version": 1, "value": "yes"}]}', 422, "outcomes[0].value"),
        (b'{"outcomes": [{"model_version": 1, "value": true}]}', 422, "outcomes[0].value"),
        (b'{"outcomes": [{"model_version": 1, "value": 1e300}]}', 422, "outcomes[0].value"),
        (b'{"outcomes": [{"model_version": 1, "value": 1, "user": "u"}]}', 422, "outcomes[0]"),
        (
            b'{"outcomes": [{"model_version": 1, "value": 1}, '
            b'{"model_version": 1, "value": 1, "request_id": 7}]}',
            422,
            "outcomes[1].request_id",
        ),
    ],
)
def test_bad_bodies_are_refused_whole_naming_the_field(
    client: TestClient, recorder: StatsRecorder, body: bytes, status: int, field: str | None
) -> None:
    response = client.post("/outcomes", content=body)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["field"] == field and error["error"]
    assert error["request_id"] == response.headers["x-request-id"]
    assert recorder.drain() == []  # nothing of a refused body is counted


def test_non_finite_values_are_refused(client: TestClient, recorder: StatsRecorder) -> None:
    # JSON has no NaN; Python's encoder writes it anyway, and the server refuses the document.
    body = b'{"outcomes": [{"model_version": 1, "value": NaN}]}'
    response = client.post("/outcomes", content=body)
    assert response.status_code == 400
    assert recorder.drain() == []


def test_without_a_deployment_to_follow_outcomes_are_404(loaded: LoadedModel) -> None:
    with TestClient(create_app([loaded])) as client:
        response = client.post("/outcomes", json={"outcomes": [{"model_version": 1, "value": 1}]})
    assert response.status_code == 404
    assert "follows no deployment" in response.json()["error"]


def test_the_endpoint_is_documented(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/outcomes"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["outcomes"]["items"]["required"] == ["model_version", "value"]
    assert "/outcomes" in client.get("/docs").text


def _no_resolve(uri: str) -> Any:
    raise AssertionError(f"nothing to resolve here, asked for {uri}")


def test_the_parent_adds_the_outcomes_to_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store' / 'conveyor.db'}"
    (tmp_path / "store").mkdir()
    follower = DeploymentFollower(url, "ab-project", _no_resolve, "host:1")
    first, second = StatsRecorder(), StatsRecorder()  # two workers
    for value in (1.0, 1.0, 0.0):
        first.outcome(2, value)
    second.outcome(2, 1.0)
    second.outcome(1, 0.0)
    follower.add_stats(first.drain())
    follower.add_stats(second.drain())
    before = datetime.now(UTC) - timedelta(seconds=20)
    assert follower.write_stats() == 0  # no requests, outcomes only
    follower._drop_store()
    with MetadataStore(url) as store:
        summary = store.serving_stats_summary("ab-project", since=before)
    assert (summary[2, False].outcome_n, summary[2, False].outcome_sum) == (4, 3.0)
    assert summary[2, False].outcome_mean == pytest.approx(0.75)
    assert (summary[1, False].outcome_n, summary[1, False].outcome_mean) == (1, 0.0)
