"""Carrying out ``monitor.retrain``: record the trigger, run the pipeline, roll the challenger out.

The project's controller calls :meth:`Retrainer.tick` on every tick while it holds the
project's lease. A tick either follows the retrain in progress or, when none is, asks
:func:`~conveyor.monitor._retrain.decide_retrain` whether one is due. A new retrain is:

1. a :class:`~conveyor.store.RetrainTriggerRecord` (kind, reason, evidence) and an audit
   entry ``retrain.trigger`` (actor ``controller``, target the project);
2. ``conveyor --project ROOT run --trigger ID`` in a child process of its own session (so a
   Ctrl-C of the controller does not interrupt it), its output in
   ``.conveyor/retrain/<trigger id>.log``; the run tags itself with the trigger
   (:data:`TRIGGER_TAG`, ...) and writes its run id into the trigger when it starts;
3. when the run ends: the version it registered (MLflow tag ``conveyor.pipeline_run``) and, if
   that version became the challenger and ``auto_deploy`` is on, a rollout with the spec's
   ``rollout:`` policy; a failed gate is a retrain that *succeeded* with the message
   ``gate failed: ...`` (the pipeline did its job; the model was not good enough), anything
   else that stops the run is ``failed``. An audit entry ``retrain.succeeded`` or
   ``retrain.failed`` closes the story.

Everything lives in the metadata store, so a controller restarted (or taking over the lease)
while a retrain runs does not start a second one: it follows the trigger through its pipeline
run, alive while the run is ``running`` and its process exists (or its heartbeat is fresh,
seen from another host), and finishes it when the run does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

from conveyor.errors import ConflictError
from conveyor.monitor._retrain import MONITOR_KINDS, covers_schedule, decide_retrain

if TYPE_CHECKING:
    from conveyor.deploy import RolloutPolicy
    from conveyor.monitor._retrain import RetrainDecision
    from conveyor.registry import ModelRegistry
    from conveyor.spec import RetrainSpec
    from conveyor.store import MetadataStore, MonitorRunRecord, RetrainTriggerRecord, RunRecord

__all__ = [
    "ACTOR",
    "TRIGGER_KIND_TAG",
    "TRIGGER_REASON_TAG",
    "TRIGGER_TAG",
    "Launch",
    "Process",
    "Retrainer",
    "launch_run",
    "trigger_tags",
]

ACTOR: Final = "controller"
TRIGGER_TAG: Final = "conveyor.trigger"
TRIGGER_KIND_TAG: Final = "conveyor.trigger_kind"
TRIGGER_REASON_TAG: Final = "conveyor.trigger_reason"
_ACTIVE: Final = ("pending", "running")
_HISTORY: Final = 50  # triggers read per tick: the active ones and the anchors are the newest
_GATE_ERROR: Final = "GateFailedError: "


class Process(Protocol):
    """A launched pipeline run, as :class:`subprocess.Popen` is one."""

    pid: int

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""


Launch = Callable[[Path, str, Path, Mapping[str, str]], Process]
"""``launch(project_root, trigger_id, log_path, env) -> Process`` starts the pipeline run."""


def launch_run(
    project_root: Path, trigger_id: str, log_path: Path, env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    """Start ``python -m conveyor --project ROOT run --trigger ID``, its output in ``log_path``.

    The child runs in its own session: signals sent to the controller's terminal do not reach
    it, and it outlives the controller (whose successor follows it through the store).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "conveyor", "--project", str(project_root)]
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [*command, "run", "--trigger", trigger_id],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=project_root,
            env={**os.environ, **env},
            start_new_session=True,
        )


def trigger_tags(trigger: RetrainTriggerRecord) -> dict[str, str]:
    """The tags linking a pipeline run to the trigger that started it."""
    return {
        TRIGGER_TAG: trigger.id,
        TRIGGER_KIND_TAG: trigger.kind,
        TRIGGER_REASON_TAG: trigger.reason[:1000],
    }


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Retrainer:
    """Starts retraining runs when ``monitor.retrain`` says so, and sees them through.

    Meant to be ticked by one thread of the controller holding the project's lease; all its
    state is in the metadata store, except the handles of the processes it launched itself.

    Args:
        store: The metadata store (the child run gets its URL).
        project: The project's name.
        project_root: The project's folder (holding ``conveyor.yaml``).
        spec: The spec's ``monitor.retrain``.
        rollout: The spec's ``rollout:`` policy, used to roll a retrained challenger out.
        tracking_uri: MLflow's tracking URI (the child run gets it too).
        clock: Returns the current time (aware); tests pass a fake one.
        launch: Starts the pipeline run (default: :func:`launch_run`).
        start_timeout: How long a trigger whose process is not ours may go without a pipeline
            run before it counts as failed (its launcher died before the run started).
    """

    def __init__(
        self,
        store: MetadataStore,
        project: str,
        project_root: Path,
        spec: RetrainSpec,
        *,
        rollout: RolloutPolicy,
        tracking_uri: str,
        clock: Callable[[], datetime] = _utcnow,
        launch: Launch = launch_run,
        start_timeout: timedelta = timedelta(minutes=5),
    ) -> None:
        self.store = store
        self.project = project
        self.project_root = project_root
        self.spec = spec
        self.rollout = rollout
        self.tracking_uri = tracking_uri
        self.clock = clock
        self.launch = launch
        self.start_timeout = start_timeout
        self.started_at = clock()
        self._processes: dict[str, Process] = {}
        self._registry: ModelRegistry | None = None

    def __repr__(self) -> str:
        return f"Retrainer({self.project!r})"

    def log_path(self, trigger_id: str) -> Path:
        """Where the output of the trigger's pipeline run goes."""
        return self.project_root / ".conveyor" / "retrain" / f"{trigger_id}.log"

    def tick(self) -> list[str]:
        """Follow the retrain in progress, or start one if due; return a line per change."""
        now = self.clock()
        triggers = self.store.list_retrain_triggers(self.project, limit=_HISTORY)
        lines: list[str] = []
        busy = False
        for trigger in triggers:
            if trigger.status in _ACTIVE:
                running, line = self._follow(trigger, now)
                busy = busy or running
                lines += [line] if line else []
        if busy:
            return lines
        decision = decide_retrain(
            self.spec,
            now=now,
            drift_runs=self._windows("drift"),
            quality_runs=self._windows("quality_drop"),
            last_trigger=next((t for t in triggers if t.status != "skipped"), None),
            schedule_anchor=next(
                (t.created_at for t in triggers if covers_schedule(t)), self.started_at
            ),
        )
        if decision is not None:
            lines.append(self._fire(decision, now))
        return lines

    # -- starting ------------------------------------------------------------------------

    def _windows(self, event: str) -> list[MonitorRunRecord]:
        if event not in self.spec.on:
            return []
        kind = MONITOR_KINDS[event]
        return self.store.list_monitor_runs(
            self.project, kind=kind, limit=self.spec.debounce_windows
        )

    def _fire(self, decision: RetrainDecision, now: datetime) -> str:
        if decision.skipped:
            trigger = self.store.add_retrain_trigger(
                self.project,
                decision.kind,
                decision.reason,
                decision.details,
                status="skipped",
                created_at=now,
            )
            self._audit("retrain.skip", trigger, decision.reason)
            return f"retrain skipped: {decision.reason}"
        trigger = self.store.add_retrain_trigger(
            self.project, decision.kind, decision.reason, decision.details, created_at=now
        )
        self._audit("retrain.trigger", trigger, decision.reason)
        log = self.log_path(trigger.id)
        env = {"CONVEYOR_DB_URL": self.store.url, "MLFLOW_TRACKING_URI": self.tracking_uri}
        try:
            process = self.launch(self.project_root, trigger.id, log, env)
        except OSError as err:
            self._close(trigger, "failed", message=f"could not start the pipeline run: {err}")
            return f"retrain {trigger.id[:8]} ({decision.kind}) could not start: {err}"
        self._processes[trigger.id] = process
        self.store.update_retrain_trigger(
            trigger.id, status="running", message=f"pipeline running (pid {process.pid}, log {log})"
        )
        return f"retrain {trigger.id[:8]} started ({decision.kind}): {decision.reason}"

    # -- following -----------------------------------------------------------------------

    def _follow(self, trigger: RetrainTriggerRecord, now: datetime) -> tuple[bool, str | None]:
        """``(still running, line)`` for an active trigger."""
        from conveyor.pipeline._liveness import is_alive
        from conveyor.store import RunStatus

        process = self._processes.get(trigger.id)
        if process is not None:
            code = process.poll()
            if code is None:
                return True, None
            del self._processes[trigger.id]
            return False, self._finish(trigger, self._run_of(trigger), code)
        run = self._run_of(trigger)
        if run is None:
            if now - trigger.created_at < self.start_timeout:
                return True, None  # launched by a predecessor; its run may not be created yet
            return False, self._finish(trigger, None, None)
        if run.status is RunStatus.RUNNING and is_alive(run):
            return True, None
        return False, self._finish(trigger, run, None)

    def _run_of(self, trigger: RetrainTriggerRecord) -> RunRecord | None:
        """The trigger's pipeline run: the id the run wrote into it, else the run's tag."""
        fresh = self.store.get_retrain_trigger(trigger.id)
        if fresh.run_id is not None:
            return self.store.get_run(fresh.run_id)
        for run in self.store.list_runs(project=self.project, limit=20):
            if run.tags.get(TRIGGER_TAG) == trigger.id:
                return run
        return None

    def _finish(
        self, trigger: RetrainTriggerRecord, run: RunRecord | None, code: int | None
    ) -> str:
        from conveyor.store import RunStatus

        log = self.log_path(trigger.id)
        label = f"retrain {trigger.id[:8]}"
        if run is None:
            exited = "" if code is None else f" (exit code {code})"
            message = f"the pipeline run did not start{exited}; see {log}"
            self._close(trigger, "failed", message=message)
            return f"{label} failed: {message}"
        if run.status is RunStatus.SUCCEEDED:
            return self._succeeded(trigger, run)
        gate = self._gate_failure(run)
        if gate is not None:
            message = f"gate failed: {gate}"
            self._close(trigger, "succeeded", run=run, message=message)
            return f"{label} finished: {message}"
        if run.status is RunStatus.RUNNING:
            message = f"the pipeline process died while its run was running; see {log}"
        else:
            message = f"pipeline run {run.status.value}: {run.error or 'no error recorded'}"
        self._close(trigger, "failed", run=run, message=message)
        return f"{label} failed: {message}"

    def _succeeded(self, trigger: RetrainTriggerRecord, run: RunRecord) -> str:
        from conveyor.deploy import CONTROLLER_ACTOR, RolloutError, start_deployment
        from conveyor.registry import CHALLENGER, CHAMPION

        registry = self._registry_now()
        version = next(
            (v for v in registry.versions() if v.tags.get("conveyor.pipeline_run") == run.id),
            None,
        )
        label = f"retrain {trigger.id[:8]}"
        if version is None:
            message = "no new model version: the retrained model equals a registered one"
            self._close(trigger, "succeeded", run=run, message=message)
            return f"{label} finished: {message}"
        number = version.version
        deployment = None
        if CHAMPION in version.aliases:
            message = f"v{number} registered as the first champion"
        elif CHALLENGER not in version.aliases:
            message = f"v{number} registered but is no longer the challenger; not rolled out"
        elif not self.spec.auto_deploy:
            message = (
                f"v{number} is the challenger; auto_deploy is off: roll it out with "
                f"`conveyor deploy {number} --reason TEXT`"
            )
        else:
            try:
                deployment = start_deployment(
                    self.store,
                    registry,
                    self.project,
                    self.rollout,
                    version=number,
                    actor=CONTROLLER_ACTOR,
                    reason=f"retrain {trigger.id[:8]} ({trigger.kind}): {trigger.reason}",
                )
            except (RolloutError, ConflictError) as err:
                # Not retried: a rollout in progress, or the version went live meanwhile.
                # MLflow or the store being away raises instead, and the next tick retries.
                message = f"v{number} is the challenger; not rolled out: {err}"
            else:
                message = f"v{number} is rolling out ({deployment.policy}, {deployment.id[:8]})"
        self._close(
            trigger,
            "succeeded",
            run=run,
            message=message,
            model_version=number,
            deployment_id=None if deployment is None else deployment.id,
        )
        return f"{label} finished: {message}"

    def _gate_failure(self, run: RunRecord) -> str | None:
        """The gate's message when the run failed because the model failed its gate."""
        for step in self.store.list_step_runs(run.id):
            error = step.error or ""
            if _GATE_ERROR in error:
                tail = error[error.rindex(_GATE_ERROR) + len(_GATE_ERROR) :]
                return tail.strip().splitlines()[0] if tail.strip() else "the model failed it"
        return None

    def _close(
        self,
        trigger: RetrainTriggerRecord,
        status: str,
        *,
        message: str,
        run: RunRecord | None = None,
        model_version: int | None = None,
        deployment_id: str | None = None,
    ) -> None:
        from conveyor.store import UNSET

        done = self.store.update_retrain_trigger(
            trigger.id,
            status=status,
            run_id=UNSET if run is None else run.id,
            model_version=model_version,
            deployment_id=deployment_id,
            message=message,
            finished_at=self.clock(),
        )
        self._audit(f"retrain.{status}", done, message)

    def _audit(self, action: str, trigger: RetrainTriggerRecord, reason: str) -> None:
        self.store.append_audit(
            actor=ACTOR,
            action=action,
            target=self.project,
            reason=reason,
            details={
                "trigger": trigger.id,
                "kind": trigger.kind,
                "reason": trigger.reason,
                "monitor_runs": trigger.details.get("monitor_runs", []),
                "run_id": trigger.run_id,
                "model_version": trigger.model_version,
                "deployment_id": trigger.deployment_id,
            },
        )

    def _registry_now(self) -> ModelRegistry:
        if self._registry is None:
            from conveyor.registry import ModelRegistry, connect

            self._registry = ModelRegistry(connect(self.tracking_uri), self.project)
        return self._registry
