"""`conveyor tune --workers 2` runs one study in two processes, in PostgreSQL, then `conveyor
run` trains the final model with its best parameters without searching again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from conveyor.store import MetadataStore, StepStatus

from .conftest import WriteSpec

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning"),
]


def conveyor(root: Path, *args: str, db_url: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "MLFLOW_"))}
    return subprocess.run(
        [sys.executable, "-m", "conveyor", "--project", str(root), *args],
        env=environ | {"CONVEYOR_DB_URL": db_url},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_tune_workers_share_one_study_in_postgres(project: WriteSpec, backend_url: object) -> None:
    url = backend_url("postgresql", fresh=True)  # type: ignore[operator]
    root = project(tune=True)
    tuned = conveyor(root, "tune", "--workers", "2", db_url=url)
    assert tuned.returncode == 0, tuned.stdout + tuned.stderr
    assert "tune" in tuned.stdout and "train" not in tuned.stdout

    [summary] = optuna.study.get_all_study_summaries(url)
    study = optuna.load_study(study_name=summary.study_name, storage=url)
    finished = [
        t for t in study.trials if t.state.is_finished() and "conveyor_surplus" not in t.user_attrs
    ]
    assert len(finished) == 4  # n_trials counts over both workers
    assert len({t.user_attrs.get("pid") for t in finished}) == 2

    trained = conveyor(root, "run", db_url=url)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    with MetadataStore(url) as store:
        run = store.list_runs(limit=1)[0]
        steps = {s.name: s for s in store.list_step_runs(run.id)}
    assert steps["tune"].status is StepStatus.CACHED
    assert steps["train"].status is StepStatus.SUCCEEDED
    uri = f"sqlite:///{root / '.conveyor' / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    champion = client.get_model_version_by_alias("delays", "champion")
    params = client.get_run(champion.run_id).data.params
    assert params["param.num_leaves"] == str(study.best_params["num_leaves"])
