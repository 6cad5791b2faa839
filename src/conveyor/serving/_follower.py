"""The server's parent follows the project's deployment record and reports serving statistics.

One :class:`DeploymentFollower` per ``conveyor serve`` (per replica): a thread that polls the
metadata store's :meth:`~conveyor.store.MetadataStore.deployment_stamp` every ``poll_seconds``
(one indexed query) and, when the deployment changed, resolves (downloads) the versions it
names and sends every worker a new :class:`ServingPlan`; the workers load what they lack and
switch between two requests, without a restart. The same thread adds what the workers counted
(:class:`~conveyor.serving._rollout_stats.StatsDelta`) to the store's ``serving_stats``, where
the rollout controller reads the sums of every replica.

Which versions a deployment serves:

* active (``pending``, ``rolling``, ``paused``): the champion and the challenger (and the shadow
  version), with the record's weights; a version at 0 % stays loaded (warm, for blue-green);
* ``promoted``: the challenger alone; ``rolled_back`` / ``failed``: the champion alone;
* no deployment yet: the registry's ``champion`` alias.

A version new to the follower is first loaded once in the parent (checksums, runtime, warm-up)
before any worker is told about it: one that cannot be loaded marks the deployment ``failed``,
with the reason, so it never gets traffic and the controller and ``rollout status`` say why.

Every ``monitor_seconds`` the thread also reads the newest monitoring runs and hands the
workers a :class:`~conveyor.serving._monitor_gauges.MonitorSnapshot` for ``/metrics`` when the
values changed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.deploy._routing import TrafficPlan
    from conveyor.serving._loading import ResolvedModel
    from conveyor.serving._monitor_gauges import MonitorSnapshot
    from conveyor.serving._rollout_stats import StatsDelta
    from conveyor.store import DeploymentRecord, MetadataStore

__all__ = ["DeploymentFollower", "ServingPlan", "replica_name"]

logger = logging.getLogger("conveyor.serving")


@dataclass(frozen=True)
class ServingPlan:
    """What every worker serves: model versions and, per model name, the traffic split.

    Picklable (sent to spawned workers). ``traffic`` holds, per model name, the weights
    (version → percent), the shadow version, the shadow rate and the routing salt; a name
    without an entry sends everything to its highest version.
    """

    models: tuple[ResolvedModel, ...]
    traffic: tuple[tuple[str, dict[int, float], int | None, float, str], ...] = ()
    sticky_header: str | None = None
    revision: str = ""

    def traffic_plans(self) -> dict[str, TrafficPlan]:
        """The traffic as :class:`~conveyor.deploy.TrafficPlan` objects, by model name."""
        from conveyor.deploy._routing import TrafficPlan

        return {
            name: TrafficPlan(weights, shadow, rate, salt)
            for name, weights, shadow, rate, salt in self.traffic
        }

    def describe(self) -> str:
        """One line for the server's output: versions and weights."""
        parts = []
        for name, weights, shadow, rate, _ in self.traffic:
            split = ", ".join(f"v{v} {w:g}%" for v, w in sorted(weights.items()))
            mirror = f", shadow v{shadow} ({rate:.0%})" if shadow is not None else ""
            parts.append(f"{name}: {split}{mirror}")
        if not parts:
            parts = [f"{m.name} v{m.version}" for m in self.models]
        return "; ".join(parts)


@dataclass
class DeploymentFollower:
    """Polls the deployment of ``project`` and writes the workers' statistics to the store.

    Args:
        store_url: The metadata store.
        project: The project (its registered model has the same name).
        resolve: Resolves (and downloads) ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``.
        replica: This server's name in the statistics (host and port).
        check: Loads a version once (raising when it cannot be loaded) before it gets traffic.
        poll_seconds: Time between two looks at the deployment.
        stats_seconds: Time between two writes of the statistics.
        grace_seconds: How long the store may stay unreachable before the replica reports
            not-ready (it keeps serving its last known deployment meanwhile, and after).
        monitor_seconds: Time between two reads of the monitoring gauges.
    """

    store_url: str
    project: str
    resolve: Callable[[str], ResolvedModel]
    replica: str
    check: Callable[[ResolvedModel], None] | None = None
    poll_seconds: float = 1.0
    stats_seconds: float = 2.0
    grace_seconds: float = 60.0
    monitor_seconds: float = 10.0
    _store: MetadataStore | None = None
    _monitor: MonitorSnapshot | None = None
    _stamp: Any = None
    _resolved: dict[int, ResolvedModel] = field(default_factory=dict)
    _checked: dict[int, str | None] = field(default_factory=dict)
    _pending: list[StatsDelta] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _open(self) -> MetadataStore:
        if self._store is None:
            from conveyor.store import MetadataStore

            self._store = MetadataStore(self.store_url)
        return self._store

    def initial_plan(self) -> ServingPlan:
        """The plan to start with: the current deployment, or the champion alias."""
        store = self._open()
        self._stamp = store.deployment_stamp(self.project)
        record = store.get_deployment(self._stamp.id) if self._stamp is not None else None
        if record is None:
            return ServingPlan((self.resolve(f"models:/{self.project}@champion"),))
        record = self._refuse_unloadable(record)
        self._stamp = store.deployment_stamp(self.project)
        return self._plan(record)

    def poll(self) -> ServingPlan | None:
        """A new plan when the deployment changed since the last look, else None."""
        store = self._open()
        stamp = store.deployment_stamp(self.project)
        if stamp is None or stamp == self._stamp:
            return None
        record = self._refuse_unloadable(store.get_deployment(stamp.id))
        plan = self._plan(record)
        self._stamp = store.deployment_stamp(self.project)
        return plan

    def _refuse_unloadable(self, record: DeploymentRecord) -> DeploymentRecord:
        """Mark an active deployment ``failed`` when a version it adds cannot be loaded."""
        if not record.state.active or self.check is None:
            return record
        from conveyor.errors import ConflictError
        from conveyor.store import DeploymentEventInput

        for version in (record.challenger_version, record.shadow_version):
            if version is None or version == record.champion_version:
                continue
            if version not in self._checked:
                try:
                    self.check(self.resolve(f"models:/{self.project}/{version}"))
                    self._checked[version] = None
                except Exception as err:
                    self._checked[version] = f"{type(err).__name__}: {err}"
            problem = self._checked[version]
            if problem is None:
                continue
            logger.error("version %s cannot be loaded, so it gets no traffic: %s", version, problem)
            try:
                return self._open().update_deployment(
                    record.id,
                    expected_version=record.version,
                    state="failed",
                    event=DeploymentEventInput(
                        kind="failed",
                        actor=f"replica {self.replica}",
                        reason=f"version {version} cannot be loaded, so it got no traffic: "
                        f"{problem}",
                    ),
                )
            except ConflictError:  # changed meanwhile: judged again from the new record
                return self._refuse_unloadable(self._open().get_deployment(record.id))
        return record

    def _plan(self, record: DeploymentRecord) -> ServingPlan:
        weights = _served_weights(record)
        versions = sorted(
            {*weights, *([record.shadow_version] if record.shadow_version is not None else [])}
        )
        for version in versions:
            if version not in self._resolved:
                self._resolved[version] = self.resolve(f"models:/{self.project}/{version}")
        self._resolved = {v: self._resolved[v] for v in versions}
        shadow = record.shadow_version if record.state.active else None
        traffic = (
            self.project,
            {v: float(w) for v, w in weights.items()},
            shadow,
            record.shadow_rate if shadow is not None else 0.0,
            record.id,
        )
        sticky = record.config.get("sticky_header") if record.state.active else None
        return ServingPlan(
            tuple(self._resolved[v] for v in versions),
            (traffic,),
            sticky_header=sticky if isinstance(sticky, str) and sticky else None,
            revision=f"{record.id[:8]}.{record.version} ({record.policy}, {record.state})",
        )

    def add_stats(self, deltas: list[StatsDelta]) -> None:
        """Queue what a worker counted; written by the next :meth:`write_stats`."""
        with self._lock:
            self._pending.extend(deltas)

    def write_stats(self) -> int:
        """Add the queued counts to the store (one window per call); returns the requests."""
        with self._lock:
            deltas, self._pending = self._pending, []
        if not deltas:
            return 0
        from datetime import UTC, datetime

        from conveyor.store import ServingStatsInput

        now = datetime.now(UTC)
        inputs = [
            ServingStatsInput(
                model_version=d.version,
                window=now,
                requests=d.requests,
                errors=d.errors,
                latency_counts=_latency_counts(d),
                latency_ms_sum=float(d.latencies_ms.sum(dtype="float64")),
                score_counts=_score_counts(d),
                shadow=d.shadow,
                compared=d.compared,
                agreed=d.agreed,
                abs_diff_sum=d.abs_diff_sum,
                outcome_n=d.outcome_n,
                outcome_sum=d.outcome_sum,
                outcome_sum_sq=d.outcome_sum_sq,
            )
            for d in deltas
        ]
        try:
            self._open().add_serving_stats(project=self.project, replica=self.replica, stats=inputs)
        except Exception:
            logger.exception("writing the serving statistics failed; they are dropped")
            return 0
        return sum(d.requests for d in deltas)

    def read_monitor(self) -> MonitorSnapshot | None:
        """The monitoring gauges' values when they changed since the last call, else None."""
        from conveyor.serving._monitor_gauges import read_monitor_snapshot

        snapshot = read_monitor_snapshot(self._open(), self.project)
        if snapshot == self._monitor:
            return None
        self._monitor = snapshot
        return snapshot

    def run(
        self,
        stop: threading.Event,
        broadcast: Callable[[ServingPlan], None],
        readiness: Callable[[str | None], None],
        monitor: Callable[[MonitorSnapshot], None] | None = None,
    ) -> None:
        """Poll and write statistics until ``stop`` is set (the server's follower thread).

        ``readiness`` receives why the replica should report not-ready (the store has been
        unreachable for longer than ``grace_seconds``), then None once it is back;
        ``monitor`` receives the monitoring gauges' values when they change.
        """
        import time

        next_stats = time.monotonic() + self.stats_seconds
        next_monitor = time.monotonic()
        last_ok = time.monotonic()
        degraded = False
        while not stop.wait(self.poll_seconds):
            try:
                plan = self.poll()
            except Exception as err:
                logger.warning("cannot read the deployment of %s: %s", self.project, err)
                self._drop_store()
                if not degraded and time.monotonic() - last_ok > self.grace_seconds:
                    degraded = True
                    readiness(
                        f"the metadata store has been unreachable for over "
                        f"{self.grace_seconds:g}s ({err}); serving the last known deployment"
                    )
            else:
                last_ok = time.monotonic()
                if degraded:
                    degraded = False
                    readiness(None)
                if plan is not None:
                    broadcast(plan)
                if monitor is not None and time.monotonic() >= next_monitor:
                    next_monitor = time.monotonic() + self.monitor_seconds
                    self._publish_monitor(monitor)
            if time.monotonic() >= next_stats:
                self.write_stats()
                next_stats = time.monotonic() + self.stats_seconds
        self.write_stats()
        self._drop_store()

    def _publish_monitor(self, monitor: Callable[[MonitorSnapshot], None]) -> None:
        try:
            snapshot = self.read_monitor()
        except Exception as err:  # gauges are best effort: never stop following
            logger.warning("cannot read the monitoring runs of %s: %s", self.project, err)
            return
        if snapshot is not None:
            monitor(snapshot)

    def _drop_store(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            try:
                store.close()
            except Exception:  # already broken: nothing more to release
                logger.debug("closing the metadata store failed", exc_info=True)


def _served_weights(record: DeploymentRecord) -> dict[int, float]:
    if record.state.active:
        weights = dict(record.weights)
        if record.challenger_version is not None:
            weights.setdefault(record.challenger_version, 0.0)  # warm while the rollout runs
        return weights
    if record.state == "promoted" and record.challenger_version is not None:
        return {record.challenger_version: 100.0}
    return {record.champion_version: 100.0}


def _latency_counts(delta: StatsDelta) -> list[int]:
    import numpy as np

    from conveyor.store import LATENCY_BUCKETS_MS

    if not len(delta.latencies_ms):
        return []
    index = np.searchsorted(np.asarray(LATENCY_BUCKETS_MS), delta.latencies_ms, side="left")
    return [int(c) for c in np.bincount(index, minlength=len(LATENCY_BUCKETS_MS) + 1)]


def _score_counts(delta: StatsDelta) -> list[int]:
    import numpy as np

    from conveyor.store import SCORE_BINS

    scores = delta.scores[np.isfinite(delta.scores)]
    if not len(scores):
        return []
    bins = np.minimum((np.clip(scores, 0.0, 1.0) * SCORE_BINS).astype(np.int64), SCORE_BINS - 1)
    return [int(c) for c in np.bincount(bins, minlength=SCORE_BINS)]


def replica_name(port: int) -> str:
    """This server's name in the statistics: ``hostname:port``."""
    import socket

    return f"{socket.gethostname()}:{port}"
