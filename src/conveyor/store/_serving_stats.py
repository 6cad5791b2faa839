"""Serving statistics: what every replica counted, summed for the controller's guardrails."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from . import _convert as cv
from . import _deploy_convert as dc
from ._base import StoreBase
from ._deploy_records import ServingStatsInput, ServingStatsSummary
from ._histograms import (
    LATENCY_BUCKETS_MS,
    SCORE_BINS,
    add_counts,
    latency_quantile,
    stats_window,
)
from ._tables import ServingStatsRow

__all__ = ["ServingStatsStore"]

_LATENCY_SIZE = len(LATENCY_BUCKETS_MS) + 1
_KEY = ("project", "window_start", "model_version", "shadow", "replica")
# (window start, model version, shadow)
_Key = tuple[datetime, int, bool]


@dataclass(slots=True)
class _Counts:
    requests: int
    errors: int
    latency_counts: list[int]
    latency_ms_sum: float
    score_counts: list[int]
    compared: int
    agreed: int
    abs_diff_sum: float
    outcome_n: int
    outcome_sum: float
    outcome_sum_sq: float

    def add_to(self, target: _Counts | ServingStatsRow) -> None:
        """Add these counts to ``target`` (more counts, or a locked stored row)."""
        target.requests += self.requests
        target.errors += self.errors
        target.latency_counts = add_counts(target.latency_counts, self.latency_counts)
        target.latency_ms_sum += self.latency_ms_sum
        target.score_counts = add_counts(target.score_counts, self.score_counts)
        target.compared += self.compared
        target.agreed += self.agreed
        target.abs_diff_sum += self.abs_diff_sum
        target.outcome_n += self.outcome_n
        target.outcome_sum += self.outcome_sum
        target.outcome_sum_sq += self.outcome_sum_sq


class ServingStatsStore(StoreBase):
    """Per-replica, per-version counts in fixed windows of ``STATS_WINDOW_S`` seconds.

    Each replica adds what it counted since its last flush; adding is atomic, so flushes of
    any number of replicas and processes, to the same window and even the same row, lose
    nothing. Shadow predictions are counted apart from answered ones. Outcomes that clients
    report for a version's answers (an A/B test's metric) are summed the same way: their
    count, sum and sum of squares give the test its means and variances.
    """

    def add_serving_stats(
        self, *, project: str, replica: str, stats: Iterable[ServingStatsInput]
    ) -> None:
        """Add counts to the project's statistics, in one transaction.

        Entries for the same window, version and shadow flag are summed first; each sum is
        then added to the stored row (created on first use) while the row is locked.

        Args:
            project: Name of the project.
            replica: Identity of the reporting replica, stable across its flushes (e.g.
                ``{hostname}-{worker}``).
            stats: What was counted, per version and window.

        Raises:
            ValueError, TypeError: An entry is invalid (the message says which and why).
        """
        dc.text(project, "project")
        dc.text(replica, "replica")
        merged: dict[_Key, _Counts] = {}
        for entry in stats:
            key, counts = _checked(entry)
            if key in merged:
                counts.add_to(merged[key])
            else:
                merged[key] = counts
        if not merged:
            return
        with self._write() as session:
            # One order for every writer, so two transactions never wait for each other's rows.
            for key in sorted(merged):
                self._add_row(session, project, replica, key, merged[key])

    def _add_row(
        self, session: Session, project: str, replica: str, key: _Key, counts: _Counts
    ) -> None:
        window, version, shadow = key
        ident = dict(zip(_KEY, (project, window, version, shadow, replica), strict=True))
        values = {
            **ident,
            "requests": counts.requests,
            "errors": counts.errors,
            "latency_counts": counts.latency_counts,
            "latency_ms_sum": counts.latency_ms_sum,
            "score_counts": counts.score_counts,
            "n_scores": sum(counts.score_counts),
            "compared": counts.compared,
            "agreed": counts.agreed,
            "abs_diff_sum": counts.abs_diff_sum,
            "outcome_n": counts.outcome_n,
            "outcome_sum": counts.outcome_sum,
            "outcome_sum_sq": counts.outcome_sum_sq,
        }
        insert = (
            self._insert()(ServingStatsRow)
            .values(values)
            .on_conflict_do_nothing(index_elements=list(_KEY))
            .returning(ServingStatsRow.requests)
        )
        if session.execute(insert).first() is not None:
            return
        # The row exists: lock it, then add element by element (JSON arrays have no "+=").
        where = [getattr(ServingStatsRow, name) == value for name, value in ident.items()]
        row = session.scalars(select(ServingStatsRow).where(*where).with_for_update()).one()
        counts.add_to(row)
        row.n_scores += sum(counts.score_counts)

    def serving_stats_summary(
        self,
        project: str,
        *,
        since: datetime,
        until: datetime | None = None,
        versions: Collection[int] | None = None,
    ) -> dict[tuple[int, bool], ServingStatsSummary]:
        """Sum the project's statistics over replicas and windows, per version and shadow flag.

        Args:
            project: Name of the project.
            since: Count the windows starting at or after this instant (aware). A window
                that started earlier is left out whole, so nothing from before ``since``
                (e.g. before a canary step began) is counted.
            until: Count only windows starting before this instant (aware); default: all.
            versions: Only these model versions; default: all.

        Returns:
            ``{(model_version, shadow): summary}`` for every pair that reported in the range.
        """
        cv.aware(since, "since")
        cv.aware(until, "until")
        query = select(ServingStatsRow).where(
            ServingStatsRow.project == project, ServingStatsRow.window_start >= since
        )
        if until is not None:
            query = query.where(ServingStatsRow.window_start < until)
        if versions is not None:
            query = query.where(ServingStatsRow.model_version.in_(sorted(set(versions))))
        groups: dict[tuple[int, bool], list[ServingStatsRow]] = {}
        with self._read() as session:
            for row in session.scalars(query):
                groups.setdefault((row.model_version, row.shadow), []).append(row)
            return {key: _summary(key, rows) for key, rows in sorted(groups.items())}

    def prune_serving_stats(self, *, before: datetime) -> int:
        """Delete the statistics of windows starting before ``before`` (aware); return how many.

        Rows are small but many (one per replica, version and window), so run this now and
        then with a cut-off older than any rollout still to be judged.
        """
        cv.aware(before, "before")
        with self._write() as session:
            result: Any = session.execute(
                delete(ServingStatsRow).where(ServingStatsRow.window_start < before)
            )
            return int(result.rowcount)


def _checked(entry: ServingStatsInput) -> tuple[_Key, _Counts]:
    if not isinstance(entry, ServingStatsInput):
        raise TypeError(f"serving stats must be ServingStatsInput, got {type(entry).__name__}")
    version = dc.model_version(entry.model_version, "model_version")
    requests = dc.count(entry.requests, "requests")
    errors = dc.count(entry.errors, "errors")
    if errors > requests:
        raise ValueError(f"errors ({errors}) cannot exceed requests ({requests})")
    compared = dc.count(entry.compared, "compared")
    agreed = dc.count(entry.agreed, "agreed")
    if agreed > compared:
        raise ValueError(f"agreed ({agreed}) cannot exceed compared ({compared})")
    if not isinstance(entry.shadow, bool):
        raise TypeError(f"shadow must be True or False, got {entry.shadow!r}")
    outcome_n = dc.count(entry.outcome_n, "outcome_n")
    outcome_sum = _sum(entry.outcome_sum, "outcome_sum", signed=True)
    outcome_sum_sq = _sum(entry.outcome_sum_sq, "outcome_sum_sq")
    if outcome_n == 0 and (outcome_sum or outcome_sum_sq):
        raise ValueError(
            f"outcome_sum ({outcome_sum!r}) and outcome_sum_sq ({outcome_sum_sq!r}) must be 0 "
            "when outcome_n is 0"
        )
    counts = _Counts(
        requests=requests,
        errors=errors,
        latency_counts=dc.counts(entry.latency_counts, _LATENCY_SIZE, "latency_counts"),
        latency_ms_sum=_sum(entry.latency_ms_sum, "latency_ms_sum"),
        score_counts=dc.counts(entry.score_counts, SCORE_BINS, "score_counts"),
        compared=compared,
        agreed=agreed,
        abs_diff_sum=_sum(entry.abs_diff_sum, "abs_diff_sum"),
        outcome_n=outcome_n,
        outcome_sum=outcome_sum,
        outcome_sum_sq=outcome_sum_sq,
    )
    return (stats_window(entry.window), version, entry.shadow), counts


def _sum(value: object, what: str, *, signed: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    if value < 0 and not signed:
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
    return float(value)


def _summary(key: tuple[int, bool], rows: list[ServingStatsRow]) -> ServingStatsSummary:
    requests = sum(row.requests for row in rows)
    errors = sum(row.errors for row in rows)
    latency = [0] * _LATENCY_SIZE
    scores = [0] * SCORE_BINS
    for row in rows:
        latency = add_counts(latency, row.latency_counts)
        scores = add_counts(scores, row.score_counts)
    observed = sum(latency)
    latency_sum = math.fsum(row.latency_ms_sum for row in rows)
    compared = sum(row.compared for row in rows)
    agreed = sum(row.agreed for row in rows)
    outcome_n = sum(row.outcome_n for row in rows)
    outcome_sum = math.fsum(row.outcome_sum for row in rows)
    windows = [row.window_start for row in rows]
    return ServingStatsSummary(
        model_version=key[0],
        shadow=key[1],
        requests=requests,
        errors=errors,
        error_rate=errors / requests if requests else None,
        latency_p50_ms=latency_quantile(latency, 0.50),
        latency_p95_ms=latency_quantile(latency, 0.95),
        latency_p99_ms=latency_quantile(latency, 0.99),
        latency_mean_ms=latency_sum / observed if observed else None,
        latency_counts=latency,
        score_counts=scores,
        n_scores=sum(row.n_scores for row in rows),
        compared=compared,
        agreed=agreed,
        agreement_rate=agreed / compared if compared else None,
        abs_diff_sum=math.fsum(row.abs_diff_sum for row in rows),
        outcome_n=outcome_n,
        outcome_sum=outcome_sum,
        outcome_sum_sq=math.fsum(row.outcome_sum_sq for row in rows),
        outcome_mean=outcome_sum / outcome_n if outcome_n else None,
        replicas=len({row.replica for row in rows}),
        first_window=min(windows),
        last_window=max(windows),
    )
