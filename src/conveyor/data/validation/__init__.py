"""Validation with quarantine: check a snapshot against ``schema:`` and set bad rows aside.

>>> result = validate_snapshot(Path("raw.parquet"), schema, workdir=Path("out"))  # doctest: +SKIP
>>> result.passed, result.quarantined_rows                                        # doctest: +SKIP
(True, 312)
>>> print(result.summary())                                                       # doctest: +SKIP
312 of 336,776 rows (0.09%) broke the schema: carrier.allowed 300, distance.max 12

Rows that break a column check go to ``quarantine.parquet`` with one reason per broken check;
the others go to ``clean.parquet`` unchanged. Whole-table checks pass or fail the table. Data
problems never raise; only a spec that cannot be evaluated raises
:class:`conveyor.errors.DataValidationError`.
"""

from conveyor.data.validation._parquet import REASONS_COLUMN
from conveyor.data.validation._report import render_report_html
from conveyor.data.validation._results import CheckResult, ValidationResult
from conveyor.data.validation._validate import validate_snapshot

__all__ = [
    "REASONS_COLUMN",
    "CheckResult",
    "ValidationResult",
    "render_report_html",
    "validate_snapshot",
]
