"""Checkpoint stores: the in-memory double and the durable store behind pipeline runs."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conveyor.artifacts import ArtifactStore
from conveyor.errors import TrainingError
from conveyor.spec._metrics import Task
from conveyor.store import MetadataStore
from conveyor.train._checkpoints import Checkpoints, MemoryCheckpoints, StoreCheckpoints
from conveyor.train.algorithms import TorchMLPAlgorithm


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    with MetadataStore(store_url) as opened:
        yield opened


@pytest.fixture
def run_id(store: MetadataStore) -> str:
    run = store.create_run(
        project="checkpoints",
        spec_hash="0" * 8,
        actor="test",
        hostname=socket.gethostname(),
        pid=os.getpid(),
        tags={"owner": "me"},
    )
    return run.id


def test_memory_checkpoints_keep_the_latest() -> None:
    checkpoints: Checkpoints = MemoryCheckpoints()
    assert checkpoints.load() is None
    checkpoints.save(b"one", 1)
    checkpoints.save(b"two", 2)
    assert checkpoints.load() == b"two"


def test_store_checkpoints_round_trip_through_a_reopened_store(
    store: MetadataStore, store_url: str, run_id: str, tmp_path: Path
) -> None:
    artifacts = ArtifactStore(str(tmp_path / "artifacts"))
    checkpoints = StoreCheckpoints(store=store, artifacts=artifacts, run_id=run_id, step="train")
    assert checkpoints.load() is None
    checkpoints.save(b"epoch one", 1)
    checkpoints.save(b"epoch two", 2)

    tags = store.get_run(run_id).tags
    assert tags["owner"] == "me"
    pointer = json.loads(tags["checkpoint:train"])
    assert pointer == {"digest": hashlib.sha256(b"epoch two").hexdigest(), "epoch": 2}
    assert artifacts.get_bytes(pointer["digest"]) == b"epoch two"

    # A restarted process opens the store and artifacts anew.
    with MetadataStore(store_url) as reopened:
        again = StoreCheckpoints(
            store=reopened,
            artifacts=ArtifactStore(str(tmp_path / "artifacts")),
            run_id=run_id,
            step="train",
        )
        assert again.load() == b"epoch two"
        other_step = StoreCheckpoints(
            store=reopened, artifacts=artifacts, run_id=run_id, step="train_small"
        )
        assert other_step.load() is None


def test_a_damaged_pointer_is_explained(store: MetadataStore, run_id: str, tmp_path: Path) -> None:
    store.merge_run_tags(run_id, {"checkpoint:train": "not json"})
    checkpoints = StoreCheckpoints(
        store=store, artifacts=ArtifactStore(str(tmp_path)), run_id=run_id, step="train"
    )
    with pytest.raises(TrainingError, match="is not a checkpoint pointer"):
        checkpoints.load()


class Interrupted(Exception):
    """Stands for the process dying."""


def test_torch_training_resumes_from_the_store(
    store: MetadataStore, run_id: str, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=300), "c": rng.choice(["a", "b"], size=300)})
    y = (X["x"] + (X["c"] == "a") > 0.5).to_numpy()
    params = {"hidden_layers": [8], "batch_size": 32, "epochs": 4}

    def model() -> TorchMLPAlgorithm:
        return TorchMLPAlgorithm(
            task=Task.binary_classification,
            feature_schema={"x": "numeric", "c": "categorical"},
            params=params,
            checkpoints=StoreCheckpoints(
                store=store,
                artifacts=ArtifactStore(str(tmp_path / "artifacts")),
                run_id=run_id,
                step="train",
            ),
        )

    def stop_at_1(epoch: int, metrics: dict[str, float]) -> None:
        if epoch == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        model().fit(X, y, on_iteration=stop_at_1)
    assert json.loads(store.get_run(run_id).tags["checkpoint:train"])["epoch"] == 1
    epochs: list[int] = []
    model().fit(X, y, on_iteration=lambda i, m: epochs.append(i)).save(tmp_path / "resumed")
    assert epochs == [1, 2, 3]

    whole = TorchMLPAlgorithm(
        task=Task.binary_classification,
        feature_schema={"x": "numeric", "c": "categorical"},
        params=params,
    )
    whole.fit(X, y).save(tmp_path / "whole")
    for name in ("weights.safetensors", "preprocess.pkl", "manifest.json"):
        assert (tmp_path / "whole" / name).read_bytes() == (
            tmp_path / "resumed" / name
        ).read_bytes()
