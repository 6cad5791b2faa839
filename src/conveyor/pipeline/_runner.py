"""Runs a pipeline: caching, retries with backoff, resume, interruption, progress events."""

from __future__ import annotations

import getpass
import glob
import os
import shutil
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from conveyor.artifacts import ArtifactStore
from conveyor.digests import digest_file, digest_json
from conveyor.errors import (
    ConflictError,
    ConveyorError,
    NothingToResumeError,
    PipelineError,
    RunInterruptedError,
    StepFailedError,
)
from conveyor.pipeline._events import RunReporter
from conveyor.pipeline._graph import Pipeline
from conveyor.pipeline._hashing import cache_key, code_version
from conveyor.pipeline._interrupts import ignore_signals, interrupt_requested, signals_as_interrupt
from conveyor.pipeline._liveness import HEARTBEAT_S, is_alive, reap_stale_runs
from conveyor.pipeline._step import Step, StepContext
from conveyor.store import MetadataStore, RunRecord, RunStatus, StepRunRecord, StepStatus

__all__ = ["RunResult", "Runner"]

_DONE = {StepStatus.SUCCEEDED, StepStatus.CACHED, StepStatus.REUSED}


@dataclass(frozen=True)
class RunResult:
    """A finished run and its steps, in execution order."""

    run: RunRecord
    steps: list[StepRunRecord]


@dataclass(frozen=True)
class _Planned:
    key: str
    code: str
    config_hash: str
    inputs: dict[str, str]
    files: dict[str, str]


class Runner:
    """Executes a :class:`Pipeline` against a metadata store and an artifact store.

    Each step's outputs are stored as content-addressed artifacts and its result is cached under
    (code version, config slice, input digests): a re-run skips unchanged steps. A failed or
    interrupted run can be resumed; steps that finished in it are reused. Ctrl-C and SIGTERM
    mark the run ``interrupted`` before the error propagates, so the store stays consistent.

    ``trigger`` (``manual``, ``retrain``, ...) and ``tags`` are recorded on a new run; the
    ``run.start`` audit entry gives the trigger as its reason.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        store: MetadataStore,
        artifacts: ArtifactStore,
        project: str,
        project_root: Path,
        spec_hash: str,
        reporter: RunReporter | None = None,
        actor: str | None = None,
        heartbeat_s: float = HEARTBEAT_S,
        trigger: str = "manual",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        self.artifacts = artifacts
        self.project = project
        self.project_root = project_root
        self.spec_hash = spec_hash
        self.reporter = reporter or RunReporter()
        self.actor = actor or _current_user()
        self.heartbeat_s = heartbeat_s
        self.trigger = trigger
        self.tags = dict(tags or {})
        self._current: str | None = None  # the step being executed, for the interrupt watchdog

    def run(self, *, resume: bool = False, force: bool = False) -> RunResult:
        """Run the pipeline, or resume the latest failed or interrupted run.

        Args:
            resume: Continue the latest unfinished run, reusing the steps that finished in it.
            force: Ignore the step cache (steps reused by ``resume`` are still reused).

        Raises:
            StepFailedError: a step failed after its retries; the run is marked failed.
            RunInterruptedError: Ctrl-C or SIGTERM; the run is marked interrupted.
            NothingToResumeError: ``resume`` found no unfinished run.
        """
        reap_stale_runs(self.store, self.project)
        if resume:
            run, previous = self._resume()
        else:
            run = self.store.create_run(
                project=self.project,
                spec_hash=self.spec_hash,
                actor=self.actor,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                trigger=self.trigger,
                tags=self.tags,
            )
            previous = {}
            self.store.append_audit(
                actor=self.actor, action="run.start", target=f"run:{run.id}", reason=self.trigger
            )
        self.reporter.run_started(run, self.pipeline.order, resumed=resume)
        stuck = partial(self._record_stuck, run.id)
        with _heartbeat(self.store, run.id, self.heartbeat_s), signals_as_interrupt(stuck):
            try:
                self._execute(run, previous, force=force)
            except KeyboardInterrupt:
                with ignore_signals():
                    run = self._finish(run.id, RunStatus.INTERRUPTED, "interrupted by the user")
                raise RunInterruptedError(
                    f"run {run.id[:8]} was interrupted; continue it with `conveyor run --resume`"
                ) from None
            except StepFailedError as err:
                with ignore_signals():
                    run = self._finish(run.id, RunStatus.FAILED, str(err))
                raise
        run = self._finish(run.id, RunStatus.SUCCEEDED, None)
        return RunResult(run, self.store.list_step_runs(run.id))

    def _resume(self) -> tuple[RunRecord, dict[str, StepRunRecord]]:
        latest = self.store.latest_run(project=self.project)
        if latest is None:
            raise NothingToResumeError(
                f"project {self.project!r} has no runs to resume; start one with `conveyor run`"
            )
        if latest.status is RunStatus.SUCCEEDED:
            raise NothingToResumeError(
                f"the latest run {latest.id[:8]} succeeded, so there is nothing to resume; "
                "start a new run with `conveyor run`"
            )
        if is_alive(latest):
            raise PipelineError(
                f"run {latest.id[:8]} is still running (pid {latest.pid} on {latest.hostname}); "
                "wait for it or stop it before resuming"
            )
        try:
            run = self.store.update_run(
                latest.id,
                expected_version=latest.version,
                status=RunStatus.RUNNING,
                attempt=latest.attempt + 1,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                heartbeat_at=datetime.now(UTC),
                error=None,
                finished_at=None,
            )
        except ConflictError as err:
            raise PipelineError(
                f"run {latest.id[:8]} was resumed by another process at the same time"
            ) from err
        self.store.append_audit(
            actor=self.actor,
            action="run.resume",
            target=f"run:{run.id}",
            reason=f"attempt {run.attempt} after {latest.status.value}",
        )
        steps = {s.name: s for s in self.store.list_step_runs(run.id) if s.status in _DONE}
        return run, steps

    def _execute(
        self, run: RunRecord, previous: Mapping[str, StepRunRecord], *, force: bool
    ) -> None:
        outputs: dict[str, dict[str, str]] = {}  # step -> output name -> digest
        error: StepFailedError | None = None
        for step in self.pipeline:
            if error is not None:
                self._record(
                    run.id,
                    step.name,
                    status=StepStatus.SKIPPED,
                    error="not run: an earlier step failed",
                )
                continue
            try:
                outputs[step.name] = self._visit(
                    run, step, previous.get(step.name), outputs, force=force
                )
            except StepFailedError as err:
                error = err
        if error is not None:
            raise error

    def _visit(
        self,
        run: RunRecord,
        step: Step,
        done: StepRunRecord | None,
        outputs: Mapping[str, Mapping[str, str]],
        *,
        force: bool,
    ) -> dict[str, str]:
        """Reuse, take from cache, or run one step; return its output digests."""
        try:
            planned = self._plan(step, outputs)
        except StepFailedError as err:
            self._record(run.id, step.name, status=StepStatus.FAILED, error=str(err))
            raise
        if done is not None and done.cache_key == planned.key and self._present(done.output_hashes):
            self._record(
                run.id,
                step.name,
                status=StepStatus.REUSED,
                planned=planned,
                outputs=done.output_hashes,
            )
            return dict(done.output_hashes)
        entry = None if force or not step.cache else self.store.get_cache(planned.key)
        if entry is not None and self._present(entry.outputs):
            self._record(
                run.id, step.name, status=StepStatus.CACHED, planned=planned, outputs=entry.outputs
            )
            return dict(entry.outputs)
        return self._run_step(run, step, planned)

    def _plan(self, step: Step, outputs: Mapping[str, Mapping[str, str]]) -> _Planned:
        inputs = {}
        for local, ref in step.inputs.items():
            upstream, _, name = ref.partition(".")
            inputs[local] = outputs[upstream][name]
        files = {_relative(p, self.project_root): digest_file(p) for p in self._files(step)}
        code = code_version(step.fn, step.version)
        key = cache_key(
            step=step.name,
            code=code,
            config=step.config,
            inputs=inputs,
            files=files,
            outputs=list(step.outputs),
        )
        return _Planned(key, code, digest_json(step.config), inputs, files)

    def _files(self, step: Step) -> list[Path]:
        found: list[Path] = []
        for pattern in step.files:
            if Path(pattern).is_absolute():
                matches = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())
            else:
                matches = sorted(p for p in self.project_root.glob(pattern) if p.is_file())
            if not matches:
                raise StepFailedError(
                    f"step {step.name!r}: `files: {pattern}` matches no file under "
                    f"{self.project_root}; fix the path or add the data"
                )
            found.extend(matches)
        return found

    def _present(self, digests: Mapping[str, str]) -> bool:
        return all(self.artifacts.exists(d) for d in digests.values())

    def _run_step(self, run: RunRecord, step: Step, planned: _Planned) -> dict[str, str]:
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            self._record(
                run.id,
                step.name,
                status=StepStatus.RUNNING,
                planned=planned,
                attempts=attempt,
                started_at=datetime.now(UTC),
            )
            self._current = step.name
            self.reporter.step_started(step.name, attempt)
            try:
                try:
                    produced = self._attempt(run.id, step, planned, attempt)
                except Exception as err:
                    # Native code (DuckDB, ...) turns a signal into its own error, e.g.
                    # RuntimeError('Query interrupted'): it is still an interruption.
                    if interrupt_requested():
                        raise KeyboardInterrupt from err
                    raise
            except KeyboardInterrupt:
                with ignore_signals():
                    self._record(
                        run.id,
                        step.name,
                        status=StepStatus.INTERRUPTED,
                        duration_s=time.monotonic() - started,
                        error="interrupted",
                    )
                raise
            except Exception as err:  # a step may raise anything; we record it and decide
                message = _describe(err)
                if attempt <= step.retries:
                    delay = step.retry_backoff_s * 2 ** (attempt - 1)
                    self.reporter.step_retrying(step.name, attempt, delay, message)
                    time.sleep(delay)
                    continue
                self._record(
                    run.id,
                    step.name,
                    status=StepStatus.FAILED,
                    duration_s=time.monotonic() - started,
                    error=_error_detail(err),
                )
                raise StepFailedError(
                    f"step {step.name!r} failed after {attempt} attempt(s): {message}; "
                    "fix it and continue with `conveyor run --resume`"
                ) from err
            if step.cache:
                self.store.put_cache(
                    cache_key=planned.key, step=step.name, outputs=produced, run_id=run.id
                )
            self._record(
                run.id,
                step.name,
                status=StepStatus.SUCCEEDED,
                outputs=produced,
                duration_s=time.monotonic() - started,
            )
            return produced

    def _attempt(self, run_id: str, step: Step, planned: _Planned, attempt: int) -> dict[str, str]:
        with tempfile.TemporaryDirectory(prefix=f"conveyor-{step.name}-") as tmp:
            workdir = Path(tmp)
            (workdir / "outputs").mkdir()
            inputs = {
                local: self.artifacts.get_file(digest, workdir / "inputs" / local)
                for local, digest in planned.inputs.items()
            }
            ctx = StepContext(
                name=step.name,
                config=step.config,
                inputs=inputs,
                files=tuple(self.project_root / f for f in planned.files),  # absolute stay absolute
                project_root=self.project_root,
                workdir=workdir,
                attempt=attempt,
                outputs=step.outputs,
                run_id=run_id,
                store=self.store,
                artifacts=self.artifacts,
                _on_progress=lambda done, total, text: self.reporter.step_progress(
                    step.name, done, total, text
                ),
            )
            returned = step.fn(ctx) or {}
            for name, value in returned.items():
                target = ctx.output_path(name)
                if isinstance(value, bytes):
                    target.write_bytes(value)
                elif isinstance(value, str):
                    target.write_text(value, encoding="utf-8")
                elif Path(value).resolve() != target.resolve():
                    shutil.copyfile(value, target)
            produced = {}
            for name in step.outputs:
                path = ctx.output_path(name)
                if not path.is_file():
                    raise PipelineError(
                        f"step {step.name!r} did not produce its declared output {name!r}; write "
                        f"it to ctx.output_path({name!r}) or return it"
                    )
                produced[name] = self.artifacts.put_file(path).digest
            return produced

    def _record(
        self,
        run_id: str,
        name: str,
        *,
        status: StepStatus,
        planned: _Planned | None = None,
        outputs: Mapping[str, str] | None = None,
        **fields: object,
    ) -> None:
        if planned is not None:
            fields.update(
                cache_key=planned.key,
                code_version=planned.code,
                config_hash=planned.config_hash,
                input_hashes={**planned.inputs, **planned.files},
            )
        if outputs is not None:
            fields["output_hashes"] = dict(outputs)
        if status is not StepStatus.RUNNING:
            fields["finished_at"] = datetime.now(UTC)
        record = self.store.upsert_step_run(run_id, name, status=status, **fields)  # type: ignore[arg-type]
        if status is not StepStatus.RUNNING:
            self.reporter.step_finished(record)

    def _record_stuck(self, run_id: str) -> None:
        """Mark the step and the run interrupted from the watchdog thread (main thread stuck)."""
        if self._current is not None:
            self.store.upsert_step_run(
                run_id,
                self._current,
                status=StepStatus.INTERRUPTED,
                error="interrupted",
                finished_at=datetime.now(UTC),
            )
        self._finish(run_id, RunStatus.INTERRUPTED, "interrupted by the user")

    def _finish(self, run_id: str, status: RunStatus, error: str | None) -> RunRecord:
        run = self.store.update_run(
            run_id, status=status, error=error, finished_at=datetime.now(UTC)
        )
        self.store.append_audit(
            actor=self.actor,
            action=f"run.{status.value}",
            target=f"run:{run_id}",
            reason=error or "",
        )
        self.reporter.run_finished(run)
        return run


def _relative(path: Path, root: Path) -> str:
    """A file input's name in cache keys: relative to the project, so a moved project still hits."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _describe(err: BaseException) -> str:
    if isinstance(err, ConveyorError):
        return str(err)
    return f"{type(err).__name__}: {err}"


def _error_detail(err: BaseException) -> str:
    return "".join(traceback.format_exception(err)).strip()[-4000:]


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@contextmanager
def _heartbeat(store: MetadataStore, run_id: str, every_s: float) -> Iterator[None]:
    """Touch the run's heartbeat from a background thread so other hosts see it is alive."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            try:
                store.heartbeat(run_id)
            except ConveyorError:
                pass  # a missed beat is harmless; the next one or the run's end catches up

    thread = threading.Thread(target=beat, name=f"conveyor-heartbeat-{run_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
