"""The runner's promises: caching, invalidation, retries, failure, resume, interruption."""

from __future__ import annotations

import json
import os
import socket
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.artifacts import ArtifactStore
from conveyor.errors import NothingToResumeError, RunInterruptedError, StepFailedError
from conveyor.pipeline import Runner, RunReporter, Step, StepContext
from conveyor.store import MetadataStore, RunStatus, StepStatus

calls: Counter[str] = Counter()
behaviour: dict[str, object] = {}


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    behaviour.clear()


def load(ctx: StepContext) -> None:
    calls["load"] += 1
    numbers = [int(line) for p in ctx.files for line in p.read_text().split()]
    ctx.output_path("numbers").write_text(json.dumps(numbers))


def scale(ctx: StepContext) -> dict[str, bytes]:
    calls["scale"] += 1
    failures = behaviour.get("scale_failures", 0)
    assert isinstance(failures, int)
    if calls["scale"] <= failures:
        raise RuntimeError(f"flaky failure {calls['scale']}")
    if behaviour.get("interrupt"):
        raise KeyboardInterrupt
    numbers = json.loads(ctx.inputs["numbers"].read_text())
    return {"scaled": json.dumps([n * ctx.config["factor"] for n in numbers]).encode()}


def total(ctx: StepContext) -> dict[str, str]:
    calls["total"] += 1
    return {"sum": str(sum(json.loads(ctx.inputs["values"].read_text())))}


def pipeline(factor: int = 2, *, retries: int = 0, cache: bool = True) -> list[Step]:
    return [
        Step("load", load, files=("data/*.txt",), outputs=("numbers",)),
        Step(
            "scale",
            scale,
            inputs={"numbers": "load.numbers"},
            outputs=("scaled",),
            config={"factor": factor},
            retries=retries,
            retry_backoff_s=0.01,
            cache=cache,
        ),
        Step("total", total, inputs={"values": "scale.scaled"}, outputs=("sum",)),
    ]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "a.txt"
    path.write_text("1 2 3\n")
    return path


def statuses(store: MetadataStore, run_id: str) -> dict[str, StepStatus]:
    return {s.name: s.status for s in store.list_step_runs(run_id)}


def result_sum(artifacts: ArtifactStore, store: MetadataStore, run_id: str) -> int:
    step = next(s for s in store.list_step_runs(run_id) if s.name == "total")
    return int(artifacts.get_bytes(step.output_hashes["sum"]))


def test_second_run_is_fully_cached(
    make_runner: Callable[..., Runner], data: Path, store: MetadataStore, artifacts: ArtifactStore
) -> None:
    first = make_runner(pipeline()).run()
    assert first.run.status is RunStatus.SUCCEEDED
    assert set(statuses(store, first.run.id).values()) == {StepStatus.SUCCEEDED}
    assert result_sum(artifacts, store, first.run.id) == 12

    second = make_runner(pipeline()).run()
    assert second.run.id != first.run.id
    assert set(statuses(store, second.run.id).values()) == {StepStatus.CACHED}
    assert calls == Counter(load=1, scale=1, total=1)
    assert result_sum(artifacts, store, second.run.id) == 12


def test_config_change_reruns_the_step_and_downstream_only(
    make_runner: Callable[..., Runner], data: Path, store: MetadataStore, artifacts: ArtifactStore
) -> None:
    make_runner(pipeline(factor=2)).run()
    result = make_runner(pipeline(factor=3)).run()
    assert statuses(store, result.run.id) == {
        "load": StepStatus.CACHED,
        "scale": StepStatus.SUCCEEDED,
        "total": StepStatus.SUCCEEDED,
    }
    assert result_sum(artifacts, store, result.run.id) == 18


def test_changed_input_file_invalidates(
    make_runner: Callable[..., Runner], data: Path, store: MetadataStore, artifacts: ArtifactStore
) -> None:
    make_runner(pipeline()).run()
    data.write_text("10 20\n")
    result = make_runner(pipeline()).run()
    assert set(statuses(store, result.run.id).values()) == {StepStatus.SUCCEEDED}
    assert result_sum(artifacts, store, result.run.id) == 60


def test_same_output_downstream_stays_cached(
    make_runner: Callable[..., Runner], data: Path, store: MetadataStore
) -> None:
    make_runner(pipeline()).run()
    data.write_text("1  2\n3\n")  # different bytes, same parsed numbers
    result = make_runner(pipeline()).run()
    assert statuses(store, result.run.id) == {
        "load": StepStatus.SUCCEEDED,
        "scale": StepStatus.CACHED,
        "total": StepStatus.CACHED,
    }


def test_force_and_uncached_steps_run_again(
    make_runner: Callable[..., Runner], data: Path, store: MetadataStore
) -> None:
    make_runner(pipeline()).run()
    forced = make_runner(pipeline()).run(force=True)
    assert set(statuses(store, forced.run.id).values()) == {StepStatus.SUCCEEDED}
    uncached = make_runner(pipeline(cache=False)).run()
    assert statuses(store, uncached.run.id)["scale"] is StepStatus.SUCCEEDED
    assert calls["scale"] == 3


def test_missing_artifact_is_rebuilt_not_trusted(
    make_runner: Callable[..., Runner], data: Path, store: MetadataStore, artifacts: ArtifactStore
) -> None:
    first = make_runner(pipeline()).run()
    scaled = statuses_outputs = {s.name: s.output_hashes for s in first.steps}
    path = artifacts.local_path(statuses_outputs["scale"]["scaled"])
    assert path is not None and scaled
    path.chmod(0o644)
    path.unlink()
    result = make_runner(pipeline()).run()
    assert statuses(store, result.run.id)["scale"] is StepStatus.SUCCEEDED
    assert artifacts.exists(statuses_outputs["scale"]["scaled"])


def test_retries_with_backoff_then_success(
    make_runner: Callable[..., Runner], data: Path, store: MetadataStore
) -> None:
    behaviour["scale_failures"] = 2
    seen: list[tuple[str, int]] = []

    class Spy(RunReporter):
        def step_retrying(self, name: str, attempt: int, delay_s: float, error: str) -> None:
            seen.append((name, attempt))
            assert "flaky failure" in error

    result = make_runner(pipeline(retries=2), reporter=Spy()).run()
    step = next(s for s in result.steps if s.name == "scale")
    assert step.status is StepStatus.SUCCEEDED
    assert step.attempts == 3
    assert seen == [("scale", 1), ("scale", 2)]


def test_failure_marks_run_and_resume_reuses_finished_steps(
    make_runner: Callable[..., Runner], data: Path, store: MetadataStore, artifacts: ArtifactStore
) -> None:
    behaviour["scale_failures"] = 5
    with pytest.raises(StepFailedError, match=r"step 'scale' failed after 2 attempt.*--resume"):
        make_runner(pipeline(retries=1)).run()
    failed = store.list_runs(project="demo")[0]
    assert failed.status is RunStatus.FAILED
    assert "flaky failure" in (failed.error or "")
    steps = {s.name: s for s in store.list_step_runs(failed.id)}
    assert steps["load"].status is StepStatus.SUCCEEDED
    assert steps["scale"].status is StepStatus.FAILED
    assert "RuntimeError: flaky failure" in (steps["scale"].error or "")
    assert steps["total"].status is StepStatus.SKIPPED

    behaviour["scale_failures"] = 0
    resumed = make_runner(pipeline(retries=1)).run(resume=True)
    assert resumed.run.id == failed.id
    assert resumed.run.attempt == 2
    assert resumed.run.status is RunStatus.SUCCEEDED
    assert statuses(store, failed.id) == {
        "load": StepStatus.REUSED,
        "scale": StepStatus.SUCCEEDED,
        "total": StepStatus.SUCCEEDED,
    }
    assert calls["load"] == 1
    assert result_sum(artifacts, store, failed.id) == 12
    actions = [e.action for e in store.list_audit(target=f"run:{failed.id}")]
    assert actions == ["run.succeeded", "run.resume", "run.failed", "run.start"]


def test_interrupt_marks_run_interrupted_and_resumes(
    make_runner: Callable[..., Runner], data: Path, store: MetadataStore
) -> None:
    behaviour["interrupt"] = True
    with pytest.raises(RunInterruptedError, match="--resume"):
        make_runner(pipeline()).run()
    run = store.list_runs(project="demo")[0]
    assert run.status is RunStatus.INTERRUPTED
    assert run.finished_at is not None
    assert statuses(store, run.id)["scale"] is StepStatus.INTERRUPTED

    behaviour["interrupt"] = False
    resumed = make_runner(pipeline()).run(resume=True)
    assert resumed.run.status is RunStatus.SUCCEEDED
    assert calls["load"] == 1


def test_nothing_to_resume(make_runner: Callable[..., Runner], data: Path) -> None:
    with pytest.raises(NothingToResumeError, match="no runs"):
        make_runner(pipeline()).run(resume=True)
    make_runner(pipeline()).run()
    with pytest.raises(NothingToResumeError, match="succeeded"):
        make_runner(pipeline()).run(resume=True)


def test_dead_running_run_is_reaped_and_resumable(
    make_runner: Callable[..., Runner], data: Path, store: MetadataStore
) -> None:
    # A run whose process was SIGKILLed stays "running"; a pid that cannot exist stands for it.
    ghost = store.create_run(
        project="demo", spec_hash="x", actor="t", hostname=socket.gethostname(), pid=2**22 + 7
    )
    result = make_runner(pipeline()).run(resume=True)
    assert result.run.id == ghost.id
    assert result.run.status is RunStatus.SUCCEEDED


def test_live_running_run_is_not_resumed(
    make_runner: Callable[..., Runner], data: Path, store: MetadataStore
) -> None:
    store.create_run(
        project="demo", spec_hash="x", actor="t", hostname=socket.gethostname(), pid=os.getpid()
    )
    with pytest.raises(Exception, match="still running"):
        make_runner(pipeline()).run(resume=True)


def test_missing_output_and_unmatched_files_fail_clearly(
    make_runner: Callable[..., Runner], tmp_path: Path
) -> None:
    with pytest.raises(StepFailedError, match=r"data/\*\.txt` matches no file"):
        make_runner(pipeline()).run()

    def lazy(ctx: StepContext) -> None:
        pass

    with pytest.raises(StepFailedError, match="did not produce its declared output 'out'"):
        make_runner([Step("lazy", lazy, outputs=("out",))]).run()

    def stray(ctx: StepContext) -> dict[str, str]:
        return {"other": "x"}

    with pytest.raises(StepFailedError, match="does not declare"):
        make_runner([Step("stray", stray, outputs=("out",))]).run()
