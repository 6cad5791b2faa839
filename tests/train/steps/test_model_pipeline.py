"""`conveyor run` trains, tunes, evaluates, gates and registers real models, with lineage."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from conveyor.artifacts import ArtifactStore
from conveyor.store import MetadataStore, RunStatus
from conveyor.train._archive import unpack_model
from conveyor.train.algorithms import BaseAlgorithm

from .conftest import Invoke, WriteSpec

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning"),
]


def _client(root: Path) -> MlflowClient:
    uri = f"sqlite:///{root / '.conveyor' / 'mlflow.db'}"
    return MlflowClient(uri, registry_uri=uri)


def _store(root: Path) -> MetadataStore:
    return MetadataStore(f"sqlite:///{root / '.conveyor' / 'conveyor.db'}")


def test_first_run_registers_a_champion_with_complete_lineage(
    project: WriteSpec, invoke: Invoke
) -> None:
    root = project(tune=True)
    result = invoke("-p", str(root), "run")
    assert result.exit_code == 0, result.output

    client = _client(root)
    versions = client.search_model_versions("name='delays'")
    assert [int(v.version) for v in versions] == [1]
    champion = client.get_model_version_by_alias("delays", "champion")
    assert int(champion.version) == 1
    tags = champion.tags
    with _store(root) as store:
        run = store.list_runs(limit=1)[0]
        validated = store.get_dataset_version(tags["conveyor.dataset_version"])
        assert tags["conveyor.raw_dataset_version"] in validated.parents
        assert tags["conveyor.validation_report"] == validated.artifacts["report_html"]
        promote = [e for e in store.list_audit() if e.action == "promote"]
    assert tags["conveyor.pipeline_run"] == run.id
    assert float(tags["conveyor.metric.roc_auc"]) > 0.55
    assert json.loads(tags["conveyor.gate"])["passed"] is True
    assert promote and promote[0].target.endswith("/1")

    # The MLflow run: params, per-iteration metrics, dataset input, environment, card, model.
    mlrun = client.get_run(champion.run_id)
    assert mlrun.data.params["param.n_estimators"] == "40"
    assert "param.num_leaves" in mlrun.data.params  # tuned, then used for the final model
    history = client.get_metric_history(champion.run_id, "validation_binary_logloss")
    assert len(history) >= 10 and history[0].step == 0
    assert "test_roc_auc_ci_low" in mlrun.data.metrics
    assert mlrun.inputs.dataset_inputs[0].dataset.name == "delays/validated"
    files = {f.path for f in client.list_artifacts(champion.run_id, "environment")}
    assert files == {"environment/requirements.txt", "environment/system.json"}
    card = {f.path for f in client.list_artifacts(champion.run_id, "model_card")}
    assert {"model_card/model_card.html", "model_card/confusion_matrix.png"} <= card
    assert (root / "reports").glob("model-card-*.html")

    # Each trial is a child run of the tune run.
    children = client.search_runs(
        [mlrun.info.experiment_id], "tags.mlflow.parentRunId != ''", max_results=50
    )
    assert len(children) == 4

    # The registered model loads through MLflow and through Conveyor's archive, same answers.
    artifacts = ArtifactStore(str(root / ".conveyor" / "artifacts"))
    folder = unpack_model(artifacts.get_bytes(tags["conveyor.model_sha256"]), root / "m")
    native = BaseAlgorithm.load(folder)
    uri = f"sqlite:///{root / '.conveyor' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    pyfunc = mlflow.pyfunc.load_model(f"models:/delays/{champion.version}")
    sample = pyfunc.input_example
    assert sample is not None
    assert len(pyfunc.predict(sample)) == len(sample)
    assert native.predict(sample).shape[0] == len(sample)

    lineage = invoke("-p", str(root), "lineage", "champion", "--json")
    assert lineage.exit_code == 0, lineage.output
    assert tags["conveyor.dataset_version"] in lineage.output
    assert run.id in lineage.output


def test_changed_params_give_a_challenger_compared_with_the_champion(
    project: WriteSpec, invoke: Invoke
) -> None:
    root = project()
    assert invoke("-p", str(root), "run").exit_code == 0
    project(params="{n_estimators: 60, num_leaves: 7}")
    result = invoke("-p", str(root), "run")
    assert result.exit_code == 0, result.output
    client = _client(root)
    assert int(client.get_model_version_by_alias("delays", "champion").version) == 1
    challenger = client.get_model_version_by_alias("delays", "challenger")
    assert int(challenger.version) == 2
    gate = json.loads(challenger.tags["conveyor.gate"])
    names = {check["name"] for check in gate["checks"]}
    assert any("champion" in name for name in names), gate

    # Nothing changed: training is cached, the same model is not registered twice.
    again = invoke("-p", str(root), "run")
    assert again.exit_code == 0, again.output
    assert len(client.search_model_versions("name='delays'")) == 2


def test_retraining_reproduces_the_same_model_bytes(project: WriteSpec, invoke: Invoke) -> None:
    root = project(algorithm="sklearn:sklearn.linear_model.LogisticRegression", params="{}")
    assert invoke("-p", str(root), "run").exit_code == 0
    assert invoke("-p", str(root), "run", "--force").exit_code == 0
    client = _client(root)
    runs = client.search_runs(
        [client.get_experiment_by_name("delays").experiment_id],
        "attributes.run_name LIKE 'train-%'",
    )
    assert len(runs) == 2
    digests = {r.data.tags["conveyor.model_sha256"] for r in runs}
    assert len(digests) == 1  # byte-identical model archives
    assert len(client.search_model_versions("name='delays'")) == 1


def test_failed_gate_registers_nothing_and_names_the_check(
    project: WriteSpec, invoke: Invoke
) -> None:
    root = project(min_auc=0.99)
    result = invoke("-p", str(root), "run")
    assert result.exit_code == 1
    assert "gate" in result.output and "roc_auc" in result.output and "0.99" in result.output
    assert _client(root).search_model_versions("name='delays'") == []


def test_unreachable_mlflow_fails_the_run_which_resumes_later(
    project: WriteSpec, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    result = invoke("-p", str(root), "run")
    assert result.exit_code == 1
    assert "MLflow" in result.output and str(port) in result.output
    with _store(root) as store:
        assert store.list_runs(limit=1)[0].status is RunStatus.FAILED
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    resumed = invoke("-p", str(root), "run", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert int(_client(root).get_model_version_by_alias("delays", "champion").version) == 1


def test_unknown_hyperparameter_fails_before_training(project: WriteSpec, invoke: Invoke) -> None:
    root = project(params="{n_estimators: 40, num_leafs: 15}")
    result = invoke("-p", str(root), "run")
    assert result.exit_code == 1
    assert "model.params.num_leafs" in result.output and "did you mean" in result.output
    assert not (root / ".conveyor" / "mlflow.db").exists()  # nothing reached MLflow
