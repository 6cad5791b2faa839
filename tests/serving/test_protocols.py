"""The three protocols over real HTTP, with the clients people use: tritonclient, KServe's and
MLflow's."""

from __future__ import annotations

import socket
import struct
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from conveyor.serving import LoadedModel, load_model
from conveyor.serving.app import create_app

RUNTIME = "native"


@pytest.fixture(scope="module")
def loaded(registered_model: Any, tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return load_model(
        registered_model.uri,
        tracking_uri=registered_model.tracking_uri,
        cache_dir=tmp_path_factory.mktemp("model-cache"),
        runtime=RUNTIME,
    )


@pytest.fixture(scope="module")
def server(loaded: LoadedModel) -> Iterator[str]:
    """``host:port`` of a real uvicorn server (uvloop, httptools) running the app in a thread."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    config = uvicorn.Config(
        create_app([loaded]), loop="uvloop", http="httptools", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    yield f"{host}:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{server}") as client:
        yield client


def reference(loaded: LoadedModel, rows: list[dict[str, Any]]) -> Any:
    from conveyor.serving import columns_from_records

    return loaded.runtime.predict(columns_from_records(rows, loaded.runtime.feature_schema))


# -- Open Inference Protocol V2 ---------------------------------------------------------------


def triton_client(server: str) -> Any:
    with warnings.catch_warnings():
        # tritonclient imports gevent's monkey patching helpers, which warn about the
        # already-imported ssl module: about the test process, not the server.
        warnings.simplefilter("ignore")
        import tritonclient.http as triton

    return triton, triton.InferenceServerClient(url=server)


def triton_inputs(triton: Any, rows: list[dict[str, Any]], schema: Any, binary: bool) -> list[Any]:
    inputs = []
    for name, kind in schema.items():
        values = [row[name] for row in rows]
        if kind == "categorical":
            array = np.array([b"" if v is None else str(v).encode() for v in values], dtype=object)
            datatype = "BYTES"
        else:
            array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            datatype = "FP64"
        tensor = triton.InferInput(name, [len(rows)], datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    return inputs


def test_tritonclient_health_and_metadata(server: str, registered_model: Any) -> None:
    triton, client = triton_client(server)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(registered_model.name)
    assert client.is_model_ready(registered_model.name, str(registered_model.version))
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    metadata = client.get_model_metadata(registered_model.name)
    assert metadata["versions"] == [str(registered_model.version)]
    assert {t["name"] for t in metadata["inputs"]} == set(registered_model.feature_schema)
    assert {t["name"] for t in metadata["outputs"]} == {"predict", "probabilities"}
    with pytest.raises(triton.InferenceServerException, match="unknown model"):
        client.get_model_metadata("no-such-model")
    client.close()


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_tritonclient_infer(
    server: str, registered_model: Any, loaded: LoadedModel, binary: bool
) -> None:
    triton, client = triton_client(server)
    rows = [r for r in registered_model.rows if all(v is not None for v in r.values())][:8]
    inputs = triton_inputs(triton, rows, registered_model.feature_schema, binary)
    outputs = [
        triton.InferRequestedOutput("predict", binary_data=binary),
        triton.InferRequestedOutput("probabilities", binary_data=binary),
    ]
    result = client.infer(registered_model.name, inputs, outputs=outputs, request_id="t-1")
    expected = reference(loaded, rows)
    assert result.get_response()["id"] == "t-1"
    assert result.as_numpy("predict").tolist() == expected.labels.tolist()
    assert np.allclose(result.as_numpy("probabilities"), expected.probabilities)
    # no outputs asked for: every output comes back, in binary (tritonclient's default)
    result = client.infer(registered_model.name, inputs)
    assert result.as_numpy("predict").tolist() == expected.labels.tolist()
    client.close()


def test_v2_json_without_content_type_and_with_model_name(
    http: httpx.Client, registered_model: Any, loaded: LoadedModel
) -> None:
    row = registered_model.rows[0]
    inputs = [
        {
            "name": name,
            "shape": [1, 1],
            "datatype": "BYTES" if kind == "categorical" else "FP64",
            "data": [[row[name]]],
        }
        for name, kind in registered_model.feature_schema.items()
    ]
    body = {"model_name": registered_model.name, "id": "x", "inputs": inputs}
    import orjson

    response = http.post(f"/v2/models/{registered_model.name}/infer", content=orjson.dumps(body))
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["predict"]["data"] == reference(loaded, [row]).labels.tolist()
    assert outputs["probabilities"]["shape"] == [1, 2]


def test_v2_binary_bytes_tensor_by_hand(
    http: httpx.Client, registered_model: Any, loaded: LoadedModel
) -> None:
    row = registered_model.rows[1]
    inputs, blobs = [], []
    for name, kind in registered_model.feature_schema.items():
        if kind == "categorical":
            raw = str(row[name] or "").encode()
            blob = struct.pack("<I", len(raw)) + raw
            inputs.append({"name": name, "shape": [1], "datatype": "BYTES"})
        else:
            blob = np.array([np.nan if row[name] is None else row[name]], "<f8").tobytes()
            inputs.append({"name": name, "shape": [1], "datatype": "FP64"})
        inputs[-1]["parameters"] = {"binary_data_size": len(blob)}
        blobs.append(blob)
    import orjson

    header = orjson.dumps({"inputs": inputs, "outputs": [{"name": "predict"}]})
    response = http.post(
        f"/v2/models/{registered_model.name}/versions/{registered_model.version}/infer",
        content=header + b"".join(blobs),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == reference(loaded, [row]).labels.tolist()


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/v2/models/nope/infer", b'{"inputs": []}', 404, "unknown model"),
        ("/v2/models/{name}/versions/999/infer", b'{"inputs": []}', 404, "no version"),
        ("/v2/models/{name}/infer", b"{oops", 400, "not valid JSON"),
        ("/v2/models/{name}/infer", b'{"inputs": 3}', 400, "inputs"),
        (
            "/v2/models/{name}/infer",
            b'{"inputs": [{"name": "distance", "shape": [1], "datatype": "FP99", "data": [1]}]}',
            400,
            "FP99",
        ),
        (
            "/v2/models/{name}/infer",
            b'{"inputs": [{"name": "distance", "shape": [2], "datatype": "FP64", "data": [1]}]}',
            400,
            "shape",
        ),
    ],
)
def test_v2_errors(
    http: httpx.Client, registered_model: Any, path: str, body: bytes, status: int, needle: str
) -> None:
    response = http.post(path.format(name=registered_model.name), content=body)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}
    assert needle in response.json()["error"]


def test_v2_missing_feature_is_400_naming_it(http: httpx.Client, registered_model: Any) -> None:
    body = b'{"inputs": [{"name": "distance", "shape": [1], "datatype": "FP64", "data": [1.0]}]}'
    response = http.post(f"/v2/models/{registered_model.name}/infer", content=body)
    assert response.status_code == 400
    assert "carrier" in response.json()["error"]


KSERVE = "kserve==0.21.0"


@pytest.fixture(scope="session")
def kserve_python() -> str:
    """The interpreter of a virtual environment holding KServe's client (built once, kept).

    KServe pins ``pandas<3`` and ``protobuf<7``, which Conveyor's own environment does not
    satisfy, so its client lives in ``.venv/peers/kserve`` (pip, from the package index).
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    venv = Path(sys.prefix) / "peers" / "kserve"
    python = venv / "bin" / "python"
    marker = venv / f".installed-{KSERVE}"
    if not marker.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", KSERVE],
                check=True,
                capture_output=True,
                timeout=600,
            )
        except (subprocess.SubprocessError, OSError) as err:
            reason = f"cannot install {KSERVE} into {venv}: {err}"
            if os.environ.get("CI", "").lower() in {"true", "1"}:
                pytest.fail(reason)
            pytest.skip(reason)
        marker.touch()
    return str(python)


def test_kserve_client(
    server: str,
    registered_model: Any,
    loaded: LoadedModel,
    kserve_python: str,
    tmp_path: Any,
) -> None:
    import json
    import subprocess
    from pathlib import Path

    rows = [r for r in registered_model.rows if all(v is not None for v in r.values())][:5]
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps(
            {
                "model": registered_model.name,
                "version": registered_model.version,
                "schema": dict(registered_model.feature_schema),
                "rows": rows,
            }
        )
    )
    script = Path(__file__).with_name("_kserve_client.py")
    done = subprocess.run(
        [kserve_python, str(script), f"http://{server}", str(request)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    expected = reference(loaded, rows)
    assert (result["live"], result["ready"], result["model_ready"]) == (True, True, True)
    for encoding in ("json", "binary"):
        answer = result[encoding]
        assert answer["id"] == f"kserve-{encoding == 'binary'}"
        assert answer["model_name"] == registered_model.name
        # (KServe's InferResponse.from_bytes drops the response's model_version field.)
        assert answer["outputs"]["predict"] == expected.labels.tolist()
        assert np.allclose(answer["outputs"]["probabilities"], expected.probabilities)
    assert "404" in result["unknown_model_error"]
    assert "unknown model" in result["unknown_model_error"]


# -- MLflow scoring protocol ------------------------------------------------------------------


def test_mlflow_scoring_client(server: str, registered_model: Any, loaded: LoadedModel) -> None:
    import pandas as pd
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    host, port = server.split(":")
    client = ScoringServerClient(host, int(port))
    client.wait_server_ready(timeout=10)
    assert client.get_version()
    frame = pd.DataFrame(registered_model.rows[:6])
    result = client.invoke(frame)
    predictions = result.get_predictions()
    expected = reference(loaded, registered_model.rows[:6])
    assert predictions["prediction"].tolist() == expected.labels.tolist()
    classes = registered_model.classes
    assert np.allclose(predictions[[f"proba_{c}" for c in classes]], expected.probabilities)


@pytest.mark.parametrize("key", ["dataframe_records", "instances", "inputs"])
def test_mlflow_record_formats(
    http: httpx.Client, registered_model: Any, loaded: LoadedModel, key: str
) -> None:
    rows = registered_model.rows[:3]
    response = http.post("/invocations", json={key: rows})
    assert response.status_code == 200, response.text
    labels = [p["prediction"] for p in response.json()["predictions"]]
    assert labels == reference(loaded, rows).labels.tolist()


def test_mlflow_inputs_as_columns_and_csv(
    http: httpx.Client, registered_model: Any, loaded: LoadedModel
) -> None:
    rows = registered_model.rows[:4]
    names = list(registered_model.feature_schema)
    expected = reference(loaded, rows).labels.tolist()
    as_columns = http.post(
        "/invocations", json={"inputs": {n: [r[n] for r in rows] for n in names}}
    )
    assert [p["prediction"] for p in as_columns.json()["predictions"]] == expected
    lines = [",".join(names)] + [
        ",".join("" if r[n] is None else str(r[n]) for n in names) for r in rows
    ]
    csv = http.post("/invocations", content="\n".join(lines), headers={"Content-Type": "text/csv"})
    assert csv.status_code == 200, csv.text
    assert [p["prediction"] for p in csv.json()["predictions"]] == expected


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{oops", "application/json", 400),
        (b'{"data": []}', "application/json", 400),
        (b'{"dataframe_records": [{"carrier": "UA"}]}', "application/json", 400),
        (b"a,b\n1,2", "application/xml", 415),
    ],
)
def test_mlflow_errors(http: httpx.Client, body: bytes, content_type: str, status: int) -> None:
    response = http.post("/invocations", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    error = response.json()
    assert error["error_code"] == "BAD_REQUEST"
    assert error["message"]


def test_mlflow_ping_health_version(http: httpx.Client) -> None:
    assert http.get("/ping").status_code == 200
    assert http.get("/health").status_code == 200
    from importlib import metadata

    assert http.get("/version").text == metadata.version("mlflow")
