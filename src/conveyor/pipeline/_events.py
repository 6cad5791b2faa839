"""How a run tells the outside world what it is doing (the CLI renders it with rich)."""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.store import RunRecord, StepRunRecord

__all__ = ["RunReporter"]


class RunReporter:
    """Receives run events. The base class ignores them all; subclasses override what they show.

    Methods are called from the thread running the pipeline and must return quickly.
    """

    def run_started(self, run: RunRecord, steps: Sequence[str], *, resumed: bool) -> None:
        """The run began (or resumed) and will visit ``steps`` in this order."""

    def step_started(self, name: str, attempt: int) -> None:
        """Step ``name`` began its ``attempt``-th try."""

    def step_progress(
        self, name: str, completed: float, total: float | None, description: str | None
    ) -> None:
        """A running step reported progress."""

    def step_retrying(self, name: str, attempt: int, delay_s: float, error: str) -> None:
        """Step ``name`` failed its ``attempt``-th try and will retry after ``delay_s``."""

    def step_finished(self, record: StepRunRecord) -> None:
        """Step finished: succeeded, cached, reused, failed, interrupted or skipped."""

    def run_finished(self, run: RunRecord) -> None:
        """The run ended, whatever its status."""
