"""``monitor.drift``: methods, thresholds per method and per column, sampling."""

from __future__ import annotations

from collections.abc import Callable

from conveyor.spec import DEFAULT_DRIFT_THRESHOLDS, DriftMethod, DriftSpec, LoadedSpec

Parse = Callable[..., LoadedSpec]
Problems = Callable[..., list[str]]


def drift(parse: Parse, body: str) -> DriftSpec:
    return parse(f"name: d\nmonitor:\n  drift: {body}\n").spec.monitor.drift


def test_existing_drift_specs_keep_their_meaning(parse: Parse) -> None:
    spec = drift(parse, "{window: 500, thresholds: {psi: 0.25}, dataset_share: 0.5}")
    assert spec.window == 500
    assert spec.thresholds[DriftMethod.psi] == 0.25
    assert spec.thresholds[DriftMethod.ks] == 0.1
    assert (spec.methods.numeric, spec.methods.categorical) == ("psi", "jensen_shannon")
    assert spec.columns is None and spec.column_thresholds == {}
    # the new fields' defaults
    assert (spec.bins, spec.max_rows, spec.seed) == (10, 1_000_000, 0)


def test_wasserstein_is_a_numeric_method_with_a_default_threshold(parse: Parse) -> None:
    spec = drift(parse, "{methods: {numeric: wasserstein}}")
    assert spec.methods.numeric == "wasserstein"
    assert spec.thresholds[DriftMethod.wasserstein] == 0.1
    assert DEFAULT_DRIFT_THRESHOLDS[DriftMethod.wasserstein] == 0.1


def test_column_thresholds_override_the_method_threshold(parse: Parse) -> None:
    spec = drift(parse, "{thresholds: {psi: 0.3}, column_thresholds: {age: {psi: 0.5, ks: 0.2}}}")
    assert spec.threshold("age", "psi") == 0.5
    assert spec.threshold("age", DriftMethod.ks) == 0.2
    assert spec.threshold("age", "jensen_shannon") == 0.1
    assert spec.threshold("income", "psi") == 0.3


def test_sampling_can_be_turned_off_and_seeded(parse: Parse) -> None:
    spec = drift(parse, "{max_rows: null, seed: 42, bins: 20}")
    assert (spec.max_rows, spec.seed, spec.bins) == (None, 42, 20)


def test_bad_drift_settings_name_their_key(problems: Problems) -> None:
    lines = problems(
        """\
        name: d
        monitor:
          drift:
            columns: [age, income]
            column_thresholds:
              age: {psi: 0}
        """
    )
    assert lines[1:] == [
        "  line 6: monitor.drift.column_thresholds.age.psi: expected a number above 0, found 0"
    ]
    lines = problems(
        """\
        name: d
        monitor:
          drift:
            columns: [age, income]
            column_thresholds: {incme: {ks: 0.2}}
        """
    )
    assert "monitor.drift.column_thresholds.incme" in lines[1]
    assert "did you mean 'income'?" in lines[1]
    lines = problems(
        """\
        name: d
        monitor:
          drift: {methods: {numeric: chi_square}, max_rows: 0}
        """
    )
    assert any("monitor.drift.methods.numeric" in line for line in lines)
    assert any("monitor.drift.max_rows" in line for line in lines)
