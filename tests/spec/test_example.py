"""The example spec in the repository loads, with its variables set, and round-trips."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conveyor.errors import SpecError
from conveyor.spec import (
    CanaryRollout,
    FileSource,
    FloatParam,
    IntParam,
    Spec,
    SqlSource,
    Task,
    load_spec,
)

EXAMPLE = Path(__file__).parents[2] / "examples" / "flights-delay.yaml"
ENV = {"WEATHER_DB_URL": "sqlite:///weather.db", "ALERT_WEBHOOK_URL": "https://hooks.test/a"}


def test_example_loads_with_its_variables_set() -> None:
    loaded = load_spec(EXAMPLE, environ=ENV)
    spec = loaded.spec
    assert loaded.path == EXAMPLE
    assert spec.name == "flights-delay"
    flights, weather = spec.sources["flights"], spec.sources["weather"]
    assert isinstance(flights, FileSource) and flights.path == "data/flights.csv"
    assert isinstance(weather, SqlSource) and weather.url == "sqlite:///weather.db"
    assert spec.dataset is not None and spec.dataset.time_column == "time_hour"
    assert spec.schema_ is not None
    assert spec.schema_.columns["carrier"].allowed is not None
    assert "9E" in spec.schema_.columns["carrier"].allowed
    assert spec.model is not None and spec.model.task is Task.binary_classification
    assert spec.model.tune is not None
    assert spec.model.tune.space["learning_rate"] == FloatParam(
        type="float", low=0.01, high=0.3, log=True
    )
    assert isinstance(spec.model.tune.space["num_leaves"], IntParam)
    assert spec.gate is not None and spec.gate.min == {"roc_auc": 0.70}
    assert isinstance(spec.rollout, CanaryRollout) and spec.rollout.steps == [5, 25, 50, 100]
    assert spec.monitor.quality is not None
    assert spec.monitor.quality.label_delay == timedelta(days=1)
    assert [alert.on for alert in spec.monitor.alerts] == ["drift", "quality_drop"]
    assert spec.monitor.alerts[1].webhook == "https://hooks.test/a"
    assert spec.monitor.retrain is not None
    assert spec.monitor.retrain.cooldown == timedelta(hours=6)
    assert loaded.raw["sources"]["weather"]["url"] == "${WEATHER_DB_URL}"


def test_example_reports_both_missing_variables() -> None:
    with pytest.raises(SpecError) as info:
        load_spec(EXAMPLE, environ={})
    lines = str(info.value).splitlines()
    assert lines[0] == f"{EXAMPLE}: 3 problems"
    assert all("is not set" in line for line in lines[1:])
    assert [line.split(": ")[1] for line in lines[1:]] == [
        "sources.weather.url",
        "monitor.alerts[0].webhook",
        "monitor.alerts[1].webhook",
    ]


def test_example_round_trips_through_json() -> None:
    spec = load_spec(EXAMPLE, environ=ENV).spec
    dumped = spec.model_dump(mode="json", by_alias=True)
    assert Spec.model_validate(dumped) == spec
    assert Spec.model_validate_json(spec.model_dump_json(by_alias=True)) == spec


def test_json_schema_documents_every_user_field() -> None:
    schema = Spec.model_json_schema(by_alias=True)
    definitions = {"Spec": schema, **schema["$defs"]}

    def described(prop: dict[str, Any]) -> bool:
        # pydantic leaves out a field's description when it repeats the model's docstring
        ref = prop.get("$ref", "").rpartition("/")[2]
        return "description" in prop or "description" in definitions.get(ref, {})

    missing = [
        f"{name}.{field}"
        for name, definition in definitions.items()
        for field, prop in definition.get("properties", {}).items()
        if not described(prop)
    ]
    assert missing == []
    assert len(definitions) > 30
