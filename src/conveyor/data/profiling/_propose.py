"""A ``schema:`` block for ``conveyor.yaml``, inferred from what a profile saw."""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Final

import yaml

if TYPE_CHECKING:
    from conveyor.data.profiling._profile import ColumnProfile, TableProfile

__all__ = ["propose_schema", "yaml_string"]

MIN_ROWS_SHARE: Final = 0.9
"""The proposed ``min_rows`` is this share of the profiled rows, rounded down."""
NULL_HEADROOM: Final = 1.5
"""The proposed ``max_null_fraction`` is the largest one seen times this, rounded up."""

# Plain scalars some YAML reader takes for something other than a string. PyYAML (YAML 1.1)
# is checked by loading the text; these catch YAML 1.1's other booleans (y/n) and YAML 1.2's
# numbers (1e3, 0o17), and anything starting like a number ('1E', '+1', '.5').
_RISKY: Final = re.compile(r"^(?:[yYnN]|[-+.\d].*|~|null|Null|NULL|\.(?:inf|nan).*)$")
# Characters that end or change a plain scalar inside a flow list ``[a, b]`` or a mapping.
_SPECIAL: Final = frozenset(",[]{}#&*!|>'\"%@`:?\\")


def yaml_string(text: str) -> str:
    """``text`` as a YAML scalar every YAML reader loads back as the same string.

    Plain when that is unambiguous (``EWR``), double-quoted otherwise (``"NO"``, ``"1E"``,
    ``"yes"``, ``"a, b"``, ``""``), so a value such as the country code ``NO`` stays a string.
    """
    return text if _is_plain(text) else json.dumps(text, ensure_ascii=False)


def _is_plain(text: str) -> bool:
    if (
        not text
        or text != text.strip()
        or not text.isprintable()
        or _RISKY.match(text)
        or any(ch in _SPECIAL for ch in text)
        or text.startswith(("-", "?", "<", "="))
    ):
        return False
    try:
        return bool(yaml.safe_load(text) == text)
    except yaml.YAMLError:
        return False


def propose_schema(profile: TableProfile, *, max_allowed: int = 30) -> str:
    """A ``schema:`` block that the profiled data passes, to review and paste into the spec.

    Per column: its type, ``nullable: true`` when it had nulls, ``min``/``max`` (the observed
    range) for numbers, and ``allowed`` (sorted) for string columns with at most
    ``max_allowed`` distinct values. Under ``checks:``, ``min_rows`` is 90 % of the rows
    (rounded down to three significant digits) and ``max_null_fraction`` the largest null
    fraction seen with 50 % headroom (rounded up to a hundredth). Columns of types ``schema:``
    cannot describe (lists, structs, ``TIME``, ...) are named in a comment and left out.

    Args:
        profile: What :func:`profile_relation` or :func:`profile_parquet` returned.
        max_allowed: Most distinct values a string column may have to get ``allowed``;
            capped by how many values the profile lists (``VALUES_LIMIT``).

    Returns:
        YAML text starting with a comment and the line ``schema:``.
    """
    lines = [
        f"# Inferred from {profile.rows:,} rows: review it before use.",
        "# Ranges and allowed values are what this data held, not what is valid; widen them",
        "# where new data may legitimately go further.",
        "schema:",
        "  columns:",
    ]
    skipped: list[str] = []
    for column in profile.columns:
        if column.kind is None:
            skipped.append(f"{column.name} ({column.type})")
            continue
        lines.append(f"    {yaml_string(column.name)}:")
        lines += [f"      {line}" for line in _column_lines(column, max_allowed)]
    if skipped:
        lines.append(f"  # left out, no schema type fits: {', '.join(skipped)}")
    checks = _check_lines(profile)
    if checks:
        lines += ["  checks:", *(f"    {line}" for line in checks)]
    return "\n".join(lines) + "\n"


def _column_lines(column: ColumnProfile, max_allowed: int) -> list[str]:
    lines = [f"type: {column.kind}"]
    if column.nulls:
        lines.append("nullable: true")
    if column.kind in ("int", "float"):
        for key, value in (("min", column.min), ("max", column.max)):
            if value is not None and math.isfinite(value):
                lines.append(f"{key}: {_number(value, column.kind == 'int')}")
    if column.kind == "str" and column.values is not None and len(column.values) <= max_allowed:
        lines.append(f"allowed: [{', '.join(yaml_string(v) for v in column.values)}]")
    return lines


def _check_lines(profile: TableProfile) -> list[str]:
    lines = []
    if profile.rows:
        lines.append(f"min_rows: {_round_down(profile.rows * MIN_ROWS_SHARE)}")
    worst = max((c.null_fraction for c in profile.columns if c.kind is not None), default=0.0)
    if worst > 0:
        # round() first: 0.2 * 1.5 * 100 is 30.000000000000004 in floating point
        allowed = min(1.0, math.ceil(round(worst * NULL_HEADROOM * 100, 6)) / 100)
        lines.append(f"max_null_fraction: {allowed:g}")
    return lines


def _number(value: float, integral: bool) -> str:
    return str(int(value)) if integral else repr(float(value))


def _round_down(value: float, digits: int = 3) -> int:
    """``value`` rounded down to ``digits`` significant digits (303,098.4 → 303,000)."""
    whole = int(value)
    if whole < 10**digits:
        return whole
    scale: int = 10 ** (len(str(whole)) - digits)
    return whole // scale * scale
