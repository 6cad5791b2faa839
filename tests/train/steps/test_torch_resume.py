"""A torch training killed with SIGKILL resumes from its last checkpoint with `run --resume`,
and ends with the very model an uninterrupted run trains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from conveyor.store import MetadataStore, RunStatus

from .conftest import WriteSpec

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning"),
]

PARAMS = "{epochs: 40, batch_size: 64, hidden_layers: [32], checkpoint_every: 1}"


def conveyor(root: Path, *args: str) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "MLFLOW_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "conveyor", "--project", str(root), *args],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _checkpoint_epoch(root: Path) -> int:
    db = root / ".conveyor" / "conveyor.db"
    if not db.exists():
        return -1
    with MetadataStore(f"sqlite:///{db}") as store:
        runs = store.list_runs(limit=1)
        if not runs or "checkpoint:train" not in runs[0].tags:
            return -1
        return int(json.loads(runs[0].tags["checkpoint:train"])["epoch"])


def _model_sha(root: Path) -> tuple[str, list[int]]:
    uri = f"sqlite:///{root / '.conveyor' / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    champion = client.get_model_version_by_alias("delays", "champion")
    history = client.get_metric_history(champion.run_id, "validation_loss")
    return champion.tags["conveyor.model_sha256"], sorted(m.step for m in history)


def test_killed_torch_training_resumes_from_its_checkpoint(
    project: WriteSpec, tmp_path: Path
) -> None:
    root = project(algorithm="torch_mlp", params=PARAMS)
    run = conveyor(root, "run")
    deadline = time.monotonic() + 240
    while _checkpoint_epoch(root) < 3:
        assert run.poll() is None, run.communicate()[0]
        assert time.monotonic() < deadline, "no checkpoint within 4 minutes"
        time.sleep(0.2)
    run.send_signal(signal.SIGKILL)
    run.wait()
    killed_at = _checkpoint_epoch(root)
    assert 3 <= killed_at < 39

    resumed = conveyor(root, "run", "--resume")
    output = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, output
    with MetadataStore(f"sqlite:///{root / '.conveyor' / 'conveyor.db'}") as store:
        [record] = store.list_runs(limit=5)
        assert record.status is RunStatus.SUCCEEDED and record.attempt == 2
    sha, steps = _model_sha(root)
    # The resumed attempt trained only the epochs after the checkpoint.
    assert steps[0] > killed_at - 1 and steps[-1] == 39

    # An uninterrupted run on the same data and spec trains byte-identical weights.
    other = tmp_path / "again"
    other.mkdir()
    for name in ("conveyor.yaml", "data"):
        os.symlink(root / name, other / name)
    fresh = conveyor(other, "run")
    assert fresh.wait(timeout=600) == 0, fresh.communicate()[0]
    assert _model_sha(other)[0] == sha
