"""The ASGI app through Starlette's TestClient: endpoints, readiness, errors, cache, logging."""

from __future__ import annotations

import dataclasses
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from conveyor.serving import LoadedModel, load_model
from conveyor.serving.app import AppOptions, create_app

with warnings.catch_warnings():
    # Starlette 1.10 asks for the httpx2 fork; httpx works the same for its TestClient.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient


RUNTIME = "native"


@pytest.fixture(scope="module")
def loaded(registered_model: Any, tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return load_model(
        registered_model.uri,
        tracking_uri=registered_model.tracking_uri,
        cache_dir=tmp_path_factory.mktemp("model-cache"),
        runtime=RUNTIME,
    )


@pytest.fixture
def client(loaded: LoadedModel) -> Iterator[TestClient]:
    with TestClient(create_app([loaded]), raise_server_exceptions=False) as client:
        yield client


def test_predict_records_and_split_give_the_same_answer(
    client: TestClient, registered_model: Any, loaded: LoadedModel
) -> None:
    rows = registered_model.rows[:5]
    records = client.post("/predict", json={"instances": rows})
    assert records.status_code == 200, records.text
    body = records.json()
    assert body["model"] == {"name": registered_model.name, "version": str(loaded.version)}
    assert len(body["predictions"]) == 5
    assert set(body["predictions"]) <= set(registered_model.classes)
    for label, probabilities in zip(body["predictions"], body["probabilities"], strict=True):
        assert set(probabilities) == {str(c) for c in registered_model.classes}
        assert probabilities[str(label)] == max(probabilities.values())
    assert records.headers["x-request-id"] == body["request_id"]

    names = list(rows[0])
    split = client.post(
        "/predict", json={"columns": names, "data": [[r[n] for n in names] for r in rows]}
    )
    assert split.json()["predictions"] == body["predictions"]
    assert split.json()["probabilities"] == body["probabilities"]


def test_client_request_id_is_honoured(client: TestClient, registered_model: Any) -> None:
    response = client.post(
        "/predict",
        json={"instances": registered_model.rows[:1]},
        headers={"X-Request-ID": "abc-123"},
    )
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["request_id"] == "abc-123"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, None),
        (b"[1, 2]", 400, None),
        (b'{"rows": []}', 400, None),
        (b'{"instances": []}', 400, "instances"),
    ],
)
def test_client_mistakes_are_4xx_naming_the_field(
    client: TestClient, body: bytes, status: int, field: str | None
) -> None:
    response = client.post("/predict", content=body)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["field"] == field
    assert error["request_id"] == response.headers["x-request-id"]


def test_missing_column_names_the_field(client: TestClient, registered_model: Any) -> None:
    row = {k: v for k, v in registered_model.rows[0].items() if k != "origin"}
    response = client.post("/predict", json={"instances": [registered_model.rows[1], row]})
    assert response.status_code == 422
    assert response.json()["field"] == "origin"


def test_wrong_type_names_the_field(client: TestClient, registered_model: Any) -> None:
    row = dict(registered_model.rows[0], distance="far")
    response = client.post("/predict", json={"instances": [row]})
    assert response.status_code == 422
    assert response.json()["field"] == "distance"
    assert "distance" in response.json()["error"]


def test_oversized_body_is_refused_before_it_is_read(loaded: LoadedModel) -> None:
    app = create_app([loaded], options=AppOptions(max_body_bytes=100))
    with TestClient(app) as client:
        declared = client.post("/predict", content=b"x" * 101)
        assert declared.status_code == 413
        assert "100 bytes" in declared.json()["error"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
            for _ in range(10):
                yield b"x" * 20

        streamed = client.post("/predict", content=chunks())
        assert streamed.status_code == 413


def test_unknown_path_and_wrong_method_are_json(client: TestClient) -> None:
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert "/nope" in missing.json()["error"]
    wrong = client.get("/predict")
    assert wrong.status_code == 405
    assert "POST" in wrong.json()["error"]


class _Broken:
    kind = "broken"

    def __init__(self, runtime: Any) -> None:
        self.task = runtime.task
        self.classes = runtime.classes
        self.feature_schema = runtime.feature_schema

    def predict(self, columns: Any) -> Any:
        raise RuntimeError("the model exploded")


def test_a_failing_model_gives_500_with_the_request_id(
    loaded: LoadedModel, registered_model: Any, caplog: pytest.LogCaptureFixture
) -> None:
    broken = dataclasses.replace(loaded, runtime=_Broken(loaded.runtime))
    with TestClient(create_app([broken])) as client:
        response = client.post(
            "/predict",
            json={"instances": registered_model.rows[:2]},
            headers={"X-Request-ID": "r1"},
        )
    assert response.status_code == 500
    assert response.json()["request_id"] == "r1"
    assert "r1" in response.json()["error"]
    failure = next(r for r in caplog.records if "failed on request r1" in r.getMessage())
    assert failure.exc_info is not None and "exploded" in str(failure.exc_info[1])


def test_readiness_is_503_until_the_models_are_loaded(loaded: LoadedModel) -> None:
    release = threading.Event()

    def loader() -> list[LoadedModel]:
        release.wait(10)
        return [loaded]

    with TestClient(create_app(loader)) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        assert client.get("/v2/health/ready").status_code == 503
        assert client.get("/ping").status_code == 503
        early = client.post("/predict", json={"instances": [{}]})
        assert early.status_code == 503
        release.set()
        deadline = time.monotonic() + 10
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        ready = client.get("/readyz").json()
        assert ready["ready"] is True
        assert ready["models"][0]["version"] == str(loaded.version)


def test_a_failed_load_is_reported(loaded: LoadedModel) -> None:
    errors: list[BaseException] = []

    def loader() -> list[LoadedModel]:
        raise ValueError("no such model")

    with TestClient(create_app(loader, on_load_error=errors.append)) as client:
        deadline = time.monotonic() + 10
        while not errors and time.monotonic() < deadline:
            time.sleep(0.01)
        body = client.get("/readyz").json()
    assert body["status"] == "failed"
    assert "no such model" in body["error"]
    assert isinstance(errors[0], ValueError)


def test_cache_answers_repeated_inputs_without_the_model(
    loaded: LoadedModel, registered_model: Any
) -> None:
    app = create_app([loaded], options=AppOptions(cache_size=8))
    with TestClient(app) as client:
        first = client.post("/predict", json={"instances": registered_model.rows[:3]})
        served = app.state.serving.default.primary
        served.loaded = dataclasses.replace(loaded, runtime=_Broken(loaded.runtime))
        served.batcher._predict = served.loaded.runtime.predict
        again = client.post("/predict", json={"instances": registered_model.rows[:3]})
        other = client.post("/predict", json={"instances": registered_model.rows[3:4]})
    assert again.status_code == 200
    assert again.json()["predictions"] == first.json()["predictions"]
    assert other.status_code == 500  # not cached: the (now broken) model was called


def test_every_prediction_is_logged(
    loaded: LoadedModel, registered_model: Any, tmp_path: Path
) -> None:
    from conveyor.serving._predlog import PredictionLog

    log = PredictionLog(str(tmp_path), worker_id="test", flush_seconds=60)
    with TestClient(create_app([loaded], prediction_log=log)) as client:
        for i in range(5):
            client.post(
                "/predict",
                json={"instances": registered_model.rows[i : i + 2]},
                headers={"X-Request-ID": f"req-{i}"},
            )
    ids = logged_request_ids(tmp_path)
    assert len(ids) == 10
    assert sorted(set(ids)) == [f"req-{i}" for i in range(5)]


def logged_request_ids(base: Path) -> list[str]:
    """The request id of every row in the prediction log under ``base``, read as monitoring does."""
    import duckdb

    files = f"{base}/predictions/**/*.parquet"
    query = (
        f"SELECT request_id FROM read_parquet('{files}', hive_partitioning=true, "
        "union_by_name=true)"
    )
    return [row[0] for row in duckdb.sql(query).fetchall()]


def test_openapi_and_docs_list_the_endpoints(client: TestClient, registered_model: Any) -> None:
    document = client.get("/openapi.json").json()
    assert {"/predict", "/v2/models/{name}/infer", "/invocations", "/readyz"} <= set(
        document["paths"]
    )
    schema = document["paths"]["/predict"]["post"]["requestBody"]["content"]
    features = schema["application/json"]["schema"]["oneOf"][0]["properties"]["instances"]
    assert set(features["items"]["properties"]) == set(registered_model.feature_schema)
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/v2/models/{name}/infer" in page.text and "carrier" in page.text


def test_responses_are_orjson_compatible(client: TestClient, registered_model: Any) -> None:
    response = client.post("/predict", content=orjson.dumps({"instances": registered_model.rows}))
    assert response.status_code == 200
    assert len(orjson.loads(response.content)["predictions"]) == len(registered_model.rows)


def test_degraded_server_leaves_the_balancer_but_keeps_answering(
    client: TestClient, registered_model: Any
) -> None:
    state = client.app.state.serving  # type: ignore[attr-defined]
    state.degraded = "the metadata store has been unreachable for over 60s"
    try:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "unreachable" in ready.json()["error"]
        assert client.get("/v2/health/ready").status_code == 503
        answer = client.post("/predict", json={"instances": registered_model.rows[:1]})
        assert answer.status_code == 200
        assert answer.headers["x-model-version"] == str(registered_model.version)
    finally:
        state.degraded = None
    assert client.get("/readyz").status_code == 200
