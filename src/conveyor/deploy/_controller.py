"""The rollout controller: a loop that judges the active rollout and applies the decision.

Every tick it takes (or renews) the lease ``controller:<project>``; a controller that does not
hold it does nothing, so any number may run and only one acts, and a standby takes over when
the holder stops (it releases the lease) or dies (the lease expires). The holder reads the
project's active deployment, sums the serving statistics of its current step, asks
:func:`~conveyor.deploy.decide` what to do and applies it with a compare-and-set: when someone
changed the deployment meanwhile (a person paused it, say), nothing is applied and the next tick
reads it again. All state lives in the metadata store, so a restarted controller resumes every
rollout where it stood.

A controller may also carry a :class:`~conveyor.monitor.Retrainer` (``monitor.retrain`` in the
spec): while it holds the lease, every tick first lets it follow or start a retraining run,
then judges the rollout. A failing retrainer is logged and never stops the rollout's judging.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from conveyor.deploy._alerts import post_alerts, rollback_alert, rollback_webhooks
from conveyor.deploy._apply import (
    CONTROLLER_ACTOR,
    apply_decision,
    controller_lease,
    with_synthetic,
)
from conveyor.deploy._label_sources import QUALITY_EVERY_S, Cached, label_sources
from conveyor.deploy._observe import (
    OutcomeSource,
    QualitySource,
    observe,
    recorded_policy,
)
from conveyor.deploy._policy import decide
from conveyor.deploy._state import Decision, RolloutPolicy
from conveyor.deploy._synthetic import SyntheticCheck, SyntheticResult, run_synthetic_requests
from conveyor.deploy._transitions import event, utcnow
from conveyor.errors import ConflictError, ConveyorError
from conveyor.spec import BlueGreenRollout

if TYPE_CHECKING:
    from conveyor.monitor import MonitorLoop
    from conveyor.monitor._retrainer import Retrainer
    from conveyor.registry import ModelRegistry
    from conveyor.spec import Spec
    from conveyor.store import DeploymentRecord, MetadataStore

__all__ = ["CONTROLLER_ACTOR", "Controller", "TickResult"]

logger = logging.getLogger(__name__)

_ERROR_REPEAT_S: Final = 60.0
MONITOR_INTERVAL_S: Final = 2.0
"""Seconds between two looks of the monitoring loop at the prediction log."""


@dataclass(frozen=True)
class TickResult:
    """What one tick did.

    Attributes:
        leader: Whether this controller held the lease (and so was allowed to act).
        deployment: The active deployment after the tick (the one it ended, if it did), or None.
        decision: What :func:`~conveyor.deploy.decide` said, if a rollout was judged.
        applied: Whether the tick changed the deployment.
        message: One line on what happened.
    """

    leader: bool
    deployment: DeploymentRecord | None
    decision: Decision | None
    applied: bool
    message: str


class Controller:
    """Drives a project's rollouts: one :meth:`tick` judges and acts, :meth:`run` loops.

    A controller is meant for one thread (``conveyor controller``, or a thread of ``conveyor
    serve --controller``); several controllers, in any processes, coordinate through the lease.

    Args:
        store: The metadata store shared with the serving replicas.
        registry_factory: Returns the project's :class:`~conveyor.registry.ModelRegistry`;
            called on first need (promotion, synthetic requests), so MLflow is not touched
            while nothing is rolling out.
        project: The project's name.
        rollout: The spec's ``rollout:`` policy; used only for deployments whose recorded
            policy cannot be read back.
        holder: This controller's identity in the lease (default: host, pid and a random tag).
        interval_s: Seconds between ticks in :meth:`run`.
        lease_ttl_s: Seconds the lease lasts unless renewed (every tick renews it); a standby
            takes over this long after the holder died.
        alert_webhooks: URLs that get a JSON POST when the controller rolls back.
        clock: Returns the current time (aware); tests pass a fake one.
        synthetic_check: Sends blue-green's synthetic requests (default:
            :func:`run_synthetic_requests` with ``cache_dir``).
        cache_dir: Where versions loaded for synthetic requests are kept (default: a folder in
            the system's temporary directory).
        quality_higher_is_better: Direction of the live quality metric (``quality_drop``).
        report: Called with one line for each change the controller makes or sees
            (leadership, applied decisions, retraining); the CLI prints them.
        retrainer: Starts and follows retraining runs, ticked while the lease is held.
        monitor: The monitoring loop (drift windows, live quality, alerts); :meth:`run` runs
            it on a thread of its own, under its own lease (``monitor:<project>``), so a slow
            drift computation never delays a rollout decision.
        quality: Each version's live quality from the labels (``quality_drop`` guardrail).
        outcomes: Each version's A/B outcomes from the labels, used instead of the counts
            clients report with ``POST /outcomes`` (see :func:`~conveyor.deploy.observe`).

    Raises:
        ValueError: ``interval_s`` is not positive, or the lease would expire between ticks.
    """

    def __init__(
        self,
        store: MetadataStore,
        registry_factory: Callable[[], ModelRegistry],
        project: str,
        rollout: RolloutPolicy | None = None,
        *,
        holder: str | None = None,
        interval_s: float = 1.0,
        lease_ttl_s: float = 15.0,
        alert_webhooks: Sequence[str] = (),
        clock: Callable[[], datetime] = utcnow,
        synthetic_check: SyntheticCheck | None = None,
        cache_dir: Path | None = None,
        quality_higher_is_better: bool = True,
        report: Callable[[str], None] | None = None,
        retrainer: Retrainer | None = None,
        monitor: MonitorLoop | None = None,
        quality: QualitySource | None = None,
        outcomes: OutcomeSource | None = None,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be a positive number of seconds, got {interval_s}")
        if not lease_ttl_s > interval_s:
            raise ValueError(
                f"lease_ttl_s ({lease_ttl_s}) must exceed interval_s ({interval_s}), or the "
                "lease would expire between two ticks"
            )
        self.store = store
        self.project = project
        self.rollout = rollout
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.interval_s = interval_s
        self.lease_ttl_s = lease_ttl_s
        self.alert_webhooks = tuple(alert_webhooks)
        self.clock = clock
        self.quality_higher_is_better = quality_higher_is_better
        if synthetic_check is None:
            import tempfile

            folder = cache_dir or Path(tempfile.gettempdir()) / "conveyor-controller-models"
            synthetic_check = partial(run_synthetic_requests, cache_dir=folder)
        self.synthetic_check = synthetic_check
        self._registry_factory = registry_factory
        self._registry: ModelRegistry | None = None
        self._report = report
        self.retrainer = retrainer
        self.monitor = monitor
        self.quality = None if quality is None else Cached(quality, QUALITY_EVERY_S)
        self.outcomes = (
            None if outcomes is None else Cached(outcomes, QUALITY_EVERY_S, "A/B outcomes")
        )
        self._leader = False
        self._synthetic: dict[tuple[str, int], SyntheticResult] = {}
        self._noted: dict[str, str] = {}
        self._last_error: tuple[str, float] = ("", 0.0)

    @classmethod
    def from_spec(
        cls,
        store: MetadataStore,
        spec: Spec,
        *,
        tracking_uri: str,
        cache_dir: Path | None = None,
        project_root: Path | None = None,
        artifacts_url: str | None = None,
        **options: Any,
    ) -> Controller:
        """A controller for the project of ``spec``: its model, rollout policy and alerts.

        Args:
            store: The metadata store.
            spec: The project's spec.
            tracking_uri: MLflow's tracking (and registry) URI.
            cache_dir: Where versions loaded for synthetic requests are kept.
            project_root: The project's folder; with it, a spec with ``monitor.retrain`` gets
                a :class:`~conveyor.monitor.Retrainer` (retraining runs start there).
            artifacts_url: The artifact store (with the prediction log); with it and
                ``project_root``, the controller also runs the monitoring loop, its reports
                in ``<project_root>/reports``, and judges A/B rollouts on a built-in metric
                on the outcomes the labels give.
            **options: Any other keyword argument of :class:`Controller`.
        """

        def registry() -> ModelRegistry:
            from conveyor.registry import ModelRegistry, connect

            return ModelRegistry(connect(tracking_uri), spec.name)

        webhooks = rollback_webhooks(spec.monitor.alerts)
        if project_root is not None and spec.monitor.retrain is not None:
            from conveyor.monitor import Retrainer

            clock = options.get("clock")
            options["retrainer"] = Retrainer(
                store,
                spec.name,
                project_root,
                spec.monitor.retrain,
                rollout=spec.rollout,
                tracking_uri=tracking_uri,
                **({} if clock is None else {"clock": clock}),
            )
        if project_root is not None and artifacts_url is not None:
            from conveyor.monitor import MonitorLoop

            for name, value in label_sources(spec, artifacts_url).items():
                options.setdefault(name, value)
            options["monitor"] = MonitorLoop.for_project(
                store,
                spec,
                artifacts_url=artifacts_url,
                tracking_uri=tracking_uri,
                reports_dir=project_root / "reports",
                clock=options.get("clock"),
            )
        return cls(
            store,
            registry,
            spec.name,
            spec.rollout,
            alert_webhooks=webhooks,
            cache_dir=cache_dir,
            **options,
        )

    @property
    def lease_name(self) -> str:
        """``controller:<project>``."""
        return controller_lease(self.project)

    def __repr__(self) -> str:
        return f"Controller({self.project!r}, holder={self.holder!r})"

    # -- the loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Tick every ``interval_s`` seconds until ``stop`` is set; then release the lease.

        Errors of a tick (database or MLflow unreachable, ...) are logged and the loop goes on.
        The monitoring loop, if any, runs on its own thread until ``stop`` is set.
        """
        monitoring = None
        if self.monitor is not None:
            monitoring = threading.Thread(
                target=self.monitor.run,
                args=(stop,),
                kwargs={"holder": self.holder, "interval_s": MONITOR_INTERVAL_S},
                name=f"monitor-{self.project}",
                daemon=True,
            )
            monitoring.start()
        try:
            while not stop.is_set():
                began = time.monotonic()
                self._safe_tick()
                stop.wait(max(0.0, self.interval_s - (time.monotonic() - began)))
        finally:
            self.release()
            if monitoring is not None:
                monitoring.join(60)

    def release(self) -> bool:
        """Give the lease up now, so a standby takes over without waiting for it to expire."""
        try:
            released = self.store.release_lease(self.lease_name, self.holder)
        except ConveyorError as err:
            logger.warning("could not release the lease %s: %s", self.lease_name, err)
            return False
        if released:
            self._say(f"released the lease {self.lease_name}")
        self._leader = False
        return released

    def _safe_tick(self) -> None:
        try:
            self.tick()
        except Exception as err:  # the loop must outlive any one tick
            self._log_error("controller tick", err)

    def _log_error(self, what: str, err: Exception) -> None:
        """Log ``err`` (``what`` failed), but the same error at most once a minute."""
        text = f"{what}: {type(err).__name__}: {err}"
        last, when = self._last_error
        if text != last or time.monotonic() - when > _ERROR_REPEAT_S:
            self._last_error = (text, time.monotonic())
            if isinstance(err, ConveyorError):
                logger.warning("%s failed: %s: %s", what, type(err).__name__, err)
            else:
                logger.exception("%s failed", what)

    # -- one tick ------------------------------------------------------------------------

    def tick(self) -> TickResult:
        """Take or renew the lease; if held, judge the active rollout and apply the decision.

        Raises:
            ConveyorError: The store or MLflow failed (:meth:`run` logs it and goes on).
        """
        began = time.monotonic()
        if not self._hold_lease():
            holder = self.store.lease_holder(self.lease_name)
            return TickResult(False, None, None, False, f"standing by: {holder} holds the lease")
        self._retrain()
        record = self.store.active_deployment(self.project)
        if record is None:
            return TickResult(True, None, None, False, "no rollout in progress")
        synthetic = self._synthetic_result(record)
        # Loading a model may take a while: make sure the lease still is ours before acting.
        if time.monotonic() - began > self.lease_ttl_s / 3 and not self._hold_lease():
            return TickResult(False, None, None, False, "lost the lease while checking")
        now = self.clock()
        seen = observe(
            self.store,
            record,
            now=now,
            fallback=self.rollout,
            synthetic_ok=None if synthetic is None else synthetic.ok,
            quality_higher_is_better=self.quality_higher_is_better,
            quality=self.quality,
            outcomes=self.outcomes,
        )
        decision = with_synthetic(decide(seen.state, seen.champion, seen.challenger), synthetic)
        try:
            if decision.action in ("none", "hold"):
                after = self._note(record, decision)
            else:
                after = apply_decision(
                    self.store, seen, decision, now=now, registry=self._registry_now
                )
        except ConflictError:
            return TickResult(
                True, record, decision, False, "the deployment changed meanwhile; reading it again"
            )
        applied = after is not record
        if applied:
            self._say(f"{decision.action}: {decision.reason}")
        if applied and decision.action == "rollback":
            self._alert(after, decision, now)
        return TickResult(True, after, decision, applied, f"{decision.action}: {decision.reason}")

    def _retrain(self) -> None:
        """Let the retrainer follow or start a retraining run; its failure is only logged."""
        if self.retrainer is None:
            return
        try:
            lines = self.retrainer.tick()
        except Exception as err:  # retraining must never stop rollouts from being judged
            self._log_error("retraining", err)
            return
        for line in lines:
            self._say(line)

    def _hold_lease(self) -> bool:
        """Take or renew the lease; say so when leadership changes."""
        held = self.store.acquire_lease(self.lease_name, self.holder, self.lease_ttl_s)
        if held and not self._leader:
            self._say(f"holds the lease {self.lease_name} as {self.holder}")
        elif self._leader and not held:
            self._say(f"lost the lease {self.lease_name}; standing by")
        self._leader = held
        return held

    def _registry_now(self) -> ModelRegistry:
        if self._registry is None:
            self._registry = self._registry_factory()
        return self._registry

    def _synthetic_result(self, record: DeploymentRecord) -> SyntheticResult | None:
        """Blue-green warm-up: the challenger's synthetic requests, sent once per deployment."""
        if record.state != "rolling" or record.step != 0 or record.challenger_version is None:
            return None
        policy = recorded_policy(record, self.rollout)
        if not isinstance(policy, BlueGreenRollout) or not policy.synthetic_requests:
            return None
        key = (record.id, record.challenger_version)
        if key not in self._synthetic:
            result = self.synthetic_check(
                self._registry_now(), record.challenger_version, policy.synthetic_requests
            )
            if result is None:
                return None
            self._synthetic[key] = result
        return self._synthetic[key]

    def _note(self, record: DeploymentRecord, decision: Decision) -> DeploymentRecord:
        """Record a held breach once (auto_rollback off); ordinary waiting is not an event."""
        if decision.guardrail is None or decision.action != "hold":
            self._noted.pop(record.id, None)
            return record
        if self._noted.get(record.id) == decision.guardrail:
            return record
        after = self.store.update_deployment(
            record.id,
            expected_version=record.version,
            event=event("guardrail", CONTROLLER_ACTOR, decision.reason, decision.metrics),
        )
        self._noted[record.id] = decision.guardrail
        return after

    def _alert(self, record: DeploymentRecord, decision: Decision, now: datetime) -> None:
        if not self.alert_webhooks:
            return
        payload = rollback_alert(record, decision, at=now.isoformat())
        try:
            failed = post_alerts(self.alert_webhooks, payload)
        except Exception:  # the rollback is done; a broken alert must not look like its failure
            logger.exception("rollback alerts of %s failed", self.project)
            return
        if failed:
            self._say(f"rollback alert failed for {', '.join(failed)}")

    def _say(self, line: str) -> None:
        logger.info("%s: %s", self.project, line)
        if self._report is not None:
            self._report(line)
