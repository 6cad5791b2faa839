"""What a validation found: one :class:`CheckResult` per check and the overall verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

__all__ = ["CheckResult", "ValidationResult", "json_safe"]

CheckKind = Literal["row", "table"]


def json_safe(value: Any) -> Any:
    """``value`` as something :func:`json.dumps` writes as standard JSON (no NaN, no dates)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if hasattr(value, "item"):  # numpy scalars
        return json_safe(value.item())
    return str(value)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Attributes:
        name: ``<column>.<check>`` for row checks (``carrier.allowed``), ``table.<check>`` for
            whole-table checks (``table.min_rows``) and ``sql.<name>`` for custom SQL checks.
        column: The column checked, or None for checks on the whole table.
        kind: ``"row"`` when failing rows are quarantined, ``"table"`` when the table as a whole
            passes or fails.
        failed: Rows that broke a row check; 0 or 1 for a table check.
        passed: Whether the check passed.
        detail: A sentence saying what was found, with the numbers.
        samples: Up to five examples: bad rows (with their 0-based ``_row`` number in the
            input) or, for table checks, the offending values.
    """

    name: str
    column: str | None
    kind: CheckKind
    failed: int
    passed: bool
    detail: str
    samples: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """This check as JSON-ready data."""
        return {
            "name": self.name,
            "column": self.column,
            "kind": self.kind,
            "failed": self.failed,
            "passed": self.passed,
            "detail": self.detail,
            "samples": json_safe(self.samples),
        }


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of :func:`validate_snapshot`: counts, files, checks and the verdict.

    Attributes:
        rows: Rows in the input.
        clean_rows: Rows that passed every row check (written to ``clean_path``).
        quarantined_rows: Rows that broke at least one row check.
        clean_path: Parquet of the clean rows: the input's columns, types and order.
        quarantine_path: Parquet of the quarantined rows plus ``_quarantine_reasons``, or None
            when no row failed.
        checks: Every check evaluated, row checks first (in column order), then table checks.
        quarantine_fraction: ``quarantined_rows / rows`` (0 for an empty input).
        passed: Every table check passed, and either no row failed or the policy is
            ``quarantine`` and ``quarantine_fraction <= max_quarantine_fraction``.
        on_failure: The policy applied to failing rows (``quarantine`` or ``fail``).
        max_quarantine_fraction: The largest share of quarantined rows the policy allows.
    """

    rows: int
    clean_rows: int
    quarantined_rows: int
    clean_path: Path
    quarantine_path: Path | None
    checks: list[CheckResult]
    quarantine_fraction: float
    passed: bool
    on_failure: str = "quarantine"
    max_quarantine_fraction: float = 0.0

    @property
    def failed_checks(self) -> list[CheckResult]:
        """The checks that did not pass, in report order."""
        return [check for check in self.checks if not check.passed]

    def to_json(self) -> dict[str, Any]:
        """The machine-readable report: counts, policy, verdict and every check with samples."""
        return {
            "passed": self.passed,
            "summary": self.summary(),
            "rows": self.rows,
            "clean_rows": self.clean_rows,
            "quarantined_rows": self.quarantined_rows,
            "quarantine_fraction": self.quarantine_fraction,
            "clean_path": str(self.clean_path),
            "quarantine_path": None if self.quarantine_path is None else str(self.quarantine_path),
            "policy": {
                "on_failure": self.on_failure,
                "max_quarantine_fraction": self.max_quarantine_fraction,
            },
            "checks": [check.to_json() for check in self.checks],
        }

    def summary(self) -> str:
        """One or two lines saying what failed, with the numbers, for messages and logs.

        Example: ``312 of 336,776 rows (0.09%) broke the schema: carrier.allowed 300,
        distance.max 12; table.min_rows failed: 900 rows, fewer than the minimum 1,000``.
        """
        parts: list[str] = []
        row_failures = [c for c in self.failed_checks if c.kind == "row"]
        if self.quarantined_rows:
            counts = ", ".join(f"{c.name} {c.failed:,}" for c in row_failures)
            verdict = ""
            if self.on_failure == "fail":
                verdict = " (on_failure: fail)"
            elif self.quarantine_fraction > self.max_quarantine_fraction:
                verdict = f" (more than the {_percent(self.max_quarantine_fraction)} allowed)"
            parts.append(
                f"{self.quarantined_rows:,} of {self.rows:,} rows "
                f"({_percent(self.quarantine_fraction)}) broke the schema{verdict}: {counts}"
            )
        parts.extend(
            f"{c.name} failed: {c.detail}" for c in self.failed_checks if c.kind == "table"
        )
        if not parts:
            return f"all {self.rows:,} rows passed {len(self.checks)} checks"
        return "; ".join(parts)


def _percent(fraction: float) -> str:
    """``0.000927`` → ``'0.09%'``; keeps two significant digits for tiny shares."""
    percent = fraction * 100
    if percent == 0 or percent >= 0.01:
        return f"{percent:.2f}%"
    return f"{percent:.2g}%"
