"""The closed loop on real data: champion, live traffic, delayed labels, drift, retrain, rollout.

:class:`ClosedLoopDemo` plays it in order:

1. The project gets the flights of the plan's first months (January to June) and its pipeline
   runs in this process: ingest, validate, train, evaluate, gate, register the champion.
2. ``conveyor serve`` (2 workers) and ``conveyor controller`` start as real processes, exactly
   as a user starts them; the controller monitors drift window by window, runs the retraining
   triggers and the rollouts; alerts go to a local webhook receiver.
3. The later months are replayed through the HTTP server in time order, day by day, at a
   steady rate. A flight's label (late or not) is fed back (``labels ingest``) once a day of
   flight time has passed; a month's flights join the project's data when it has been
   replayed, so a retraining run started afterwards trains on them.
4. When the traffic ends the demo waits (bounded) for a retraining run or rollout still
   going, then stops the processes. :mod:`conveyor.demo._summary` tells what happened.

Every decision is the product's own: the demo only sends traffic, labels and data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from conveyor.demo._months import TIME_COLUMN, append_month, input_columns, replay_rows
from conveyor.demo._services import AlertSink, Service, free_port, wait_ready
from conveyor.demo._watch import StoreWatcher

if TYPE_CHECKING:
    import pyarrow as pa

    from conveyor.demo._traffic import ReplayProgress
    from conveyor.pipeline import RunReporter, RunResult
    from conveyor.session import Session

__all__ = ["FAST", "FULL", "ClosedLoopDemo", "DemoPlan"]

_MONTH_NAMES: Final = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


@dataclass(frozen=True)
class DemoPlan:
    """How much of the year the demo plays, and how fast.

    Attributes:
        train_months: Months the champion is trained on.
        replay_months: Months replayed as traffic, in order.
        sample: Keep one flight in ``sample`` (in the data and the traffic); None: all.
        rows_per_second: Pace of the traffic.
        label_delay: Flight time after which a flight's label is fed back.
        spec_changes: Text replacements in the demo spec (smaller windows for a short run).
        settle_timeout_s: How long to wait after the traffic for a retrain or rollout to end.
    """

    train_months: tuple[int, ...]
    replay_months: tuple[int, ...]
    sample: int | None
    rows_per_second: float
    label_delay: timedelta
    spec_changes: tuple[tuple[str, str], ...] = ()
    settle_timeout_s: float = 120.0


FULL: Final = DemoPlan(
    train_months=(1, 2, 3, 4, 5, 6),
    replay_months=(7, 8, 9, 10, 11, 12),
    sample=None,
    rows_per_second=750.0,
    label_delay=timedelta(days=1),
)
"""The whole demo: every flight of July to December (about 167,000 requests' worth)."""

FAST: Final = DemoPlan(
    train_months=(1, 2, 3, 4, 5, 6),
    replay_months=(7, 8, 9, 10),
    sample=4,
    rows_per_second=400.0,
    label_delay=timedelta(days=1),
    spec_changes=(
        ("window: 10000", "window: 2000"),
        ("debounce_windows: 3", "debounce_windows: 4"),
        ("cooldown: 3m", "cooldown: 10m"),
        ("steps: [10, 50, 100]", "steps: [50, 100]"),
        ("min_requests_per_step: 300", "min_requests_per_step: 40"),
        ("min_seconds_per_step: 15", "min_seconds_per_step: 3"),
    ),
    settle_timeout_s=150.0,
)
"""A short run for the test suite: July to October, one flight in four."""


Say = Callable[[str], None]
Progress = Callable[[int, int, str], None]


class ClosedLoopDemo:
    """Plays the closed loop in ``root`` (a new demo project).

    Args:
        root: The project folder (created).
        plan: What to play.
        say: Called with one line per stage or event.
        progress: Called with (rows sent, rows to send, what is being sent) as traffic flows.
        reporter: Shows the champion pipeline's steps.
    """

    def __init__(
        self,
        root: Path,
        plan: DemoPlan,
        *,
        say: Say,
        progress: Progress,
        reporter: RunReporter | None = None,
    ) -> None:
        self.root = root
        self.plan = plan
        self.say = say
        self.progress = progress
        self.reporter = reporter
        self.alerts = AlertSink()
        self.started = time.monotonic()
        self.champion_run: RunResult | None = None
        self.replayed = 0
        self.errors = 0

    # -- stages ------------------------------------------------------------------------

    def create(self) -> None:
        """Lay the project out with the first months' flights and the demo's spec."""
        from conveyor.demo import create_flights_project

        project = create_flights_project(self.root, months=self.plan.train_months)
        spec = project.spec_path
        text = spec.read_text("utf-8")
        for old, new in self.plan.spec_changes:
            if old not in text:
                raise ValueError(f"the demo spec has no {old!r} to change")
            text = text.replace(old, new)
        spec.write_text(text, "utf-8")
        if self.plan.sample is not None:
            _keep_one_in(project.root / "data" / "flights.csv", self.plan.sample)
        months = ", ".join(_MONTH_NAMES[m - 1] for m in self.plan.train_months)
        self.say(f"project {project.root}: flights of {months} 2013")

    def train_champion(self, session: Session) -> RunResult:
        """Run the pipeline once: the champion."""
        from conveyor.pipeline import Runner, pipeline_from_spec

        loaded = session.require_spec()
        runner = Runner(
            pipeline_from_spec(loaded, self.root),
            store=session.store,
            artifacts=session.artifacts,
            project=loaded.spec.name,
            project_root=self.root,
            spec_hash=loaded.sha256,
            reporter=self.reporter,
        )
        self.champion_run = runner.run()
        return self.champion_run

    def play(self, session: Session) -> None:
        """Serve, control, replay the later months with their labels, then wind down."""
        state = self.root / ".conveyor" / "demo"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {"ALERT_WEBHOOK_URL": self.alerts.url}
        server_args = ["serve", "--port", str(port), "--workers", "2"]
        with (
            Service("server", self.root, server_args, state / "server.log", env) as server,
            Service("controller", self.root, ["controller"], state / "controller.log", env) as ctl,
        ):
            wait_ready(f"{url}/readyz", server)
            self.say(f"serving on {url} (2 workers); controller running; logs in {state}")
            project = session.require_spec().spec.name
            with StoreWatcher(session.store, project, self.say):
                last_day = self._replay(session, url, state / "labels", (server, ctl))
                self._settle(session, url, last_day, (server, ctl))
        self.alerts.close()

    # -- the traffic -------------------------------------------------------------------

    def _replay(
        self, session: Session, url: str, labels: Path, services: tuple[Service, ...]
    ) -> pa.Table:
        """Send the months' flights day by day; return the last day's flights."""
        import pyarrow.compute as pc

        from conveyor.demo._labels_feed import LabelFeed
        from conveyor.demo._traffic import Replayer

        feed = LabelFeed(labels, delay=self.plan.label_delay)
        months = [replay_rows([m], sample=self.plan.sample) for m in self.plan.replay_months]
        total = sum(table.num_rows for table in months)
        with Replayer(
            url, batch_rows=10, concurrency=2, max_rows_per_second=self.plan.rows_per_second
        ) as replayer:
            for month, flights in zip(self.plan.replay_months, months, strict=True):
                days = pc.day(flights[TIME_COLUMN])
                for day in sorted(set(days.to_pylist())):
                    for service in services:
                        service.check()
                    chunk = flights.filter(pc.equal(days, day))
                    label = f"{_MONTH_NAMES[month - 1]} {day:2d}"
                    sent = replayer.send(
                        chunk.select(input_columns(chunk)),
                        chunk["flight_id"],
                        on_progress=self._on_progress(total, label),
                    )
                    self.replayed += sent.rows
                    self.errors += sent.errors
                    feed.add(chunk, sent)
                    self._labels(session, feed.write_due(_end_of(chunk)))
                self._add_month(month)
                self.say(
                    f"{_MONTH_NAMES[month - 1]} replayed; its flights joined the project's data"
                )
        self._labels(session, feed.write_due(datetime.max.replace(tzinfo=UTC)))
        return chunk

    def _labels(self, session: Session, path: Path | None) -> None:
        """Ingest a file of labels as `conveyor labels ingest` does, audit entry included."""
        if path is None:
            return
        from conveyor.monitor import ingest_labels

        batch = ingest_labels(session.settings.artifacts_url, path)
        session.store.append_audit(
            actor="conveyor-demo",
            action="labels.ingest",
            target=f"project:{session.require_spec().spec.name}",
            details={"source": str(path), "file": batch.path, "rows": batch.rows},
        )

    def _add_month(self, month: int) -> None:
        """The month's flights join the project's data (one in ``sample`` of them)."""
        data = self.root / "data" / "flights.csv"
        before = len(data.read_bytes().splitlines())
        append_month(self.root, month)
        if self.plan.sample is not None:
            _keep_one_in(data, self.plan.sample, after=before)

    def _on_progress(self, total: int, label: str) -> Callable[[ReplayProgress], None]:
        done = self.replayed

        def report(progress: ReplayProgress) -> None:
            self.progress(done + progress.rows_done, total, label)

        return report

    def _settle(
        self, session: Session, url: str, last_day: pa.Table, services: tuple[Service, ...]
    ) -> None:
        """Wait (bounded) for a retraining run or rollout still going.

        A rollout advances only on traffic, so while one is active the last day's flights are
        sent again (under new request ids, so they are new predictions, without labels).
        """
        from conveyor.demo._traffic import Replayer

        project = session.require_spec().spec.name
        deadline = time.monotonic() + self.plan.settle_timeout_s
        said = False
        rounds = 0
        while time.monotonic() < deadline:
            running = [
                t
                for t in session.store.list_retrain_triggers(project, limit=5)
                if t.status in ("pending", "running")
            ]
            active = session.store.active_deployment(project)
            if not running and active is None:
                return
            if not said:
                self.say("traffic done; waiting for the retraining run or rollout in progress")
                said = True
            for service in services:
                service.check()
            if active is None:
                time.sleep(1.0)
                continue
            rounds += 1
            with Replayer(
                url,
                batch_rows=10,
                concurrency=2,
                max_rows_per_second=self.plan.rows_per_second,
                request_prefix=f"again{rounds}-",
            ) as replayer:
                sent = replayer.send(
                    last_day.select(input_columns(last_day)), last_day["flight_id"]
                )
            self.errors += sent.errors
        self.say(f"gave up waiting after {self.plan.settle_timeout_s:.0f} s")


def _end_of(chunk: pa.Table) -> datetime:
    import pyarrow.compute as pc

    latest: datetime = pc.max(chunk[TIME_COLUMN]).as_py()
    return latest


def _keep_one_in(path: Path, sample: int, *, after: int = 1) -> None:
    """Keep one line in ``sample`` of a CSV after its first ``after`` lines (in place)."""
    lines = path.read_bytes().splitlines(keepends=True)
    kept = [*lines[:after], *lines[after::sample]]
    tmp = path.with_suffix(".csv.part")
    tmp.write_bytes(b"".join(kept))
    tmp.replace(path)
