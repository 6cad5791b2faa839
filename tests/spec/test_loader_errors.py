"""Every loader error names the file, the key path, the line, and what to do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.errors import SpecError
from conveyor.spec import LoadedSpec, load_spec

Problems = Callable[..., list[str]]


def test_top_level_typo_suggests_the_nearest_key(problems: Problems) -> None:
    assert problems(
        """\
        name: demo
        modle:
          task: regression
        """
    ) == [
        "conveyor.yaml: 1 problem",
        "  line 2: modle: unknown key 'modle'; did you mean 'model'?",
    ]


def test_nested_typo_in_a_tagged_union_member(problems: Problems) -> None:
    assert problems(
        """\
        name: demo
        rollout:
          polcy: canary
        """
    ) == [
        "conveyor.yaml: 1 problem",
        "  line 3: rollout.polcy: unknown key 'polcy'; did you mean 'policy'?",
    ]


def test_unknown_key_without_close_match_lists_the_allowed_keys(problems: Problems) -> None:
    lines = problems("name: demo\nserve: {zzz: 1}\n")
    assert lines[1] == (
        "  line 2: serve.zzz: unknown key 'zzz'; allowed keys: host, port, workers, "
        "model_threads, runtime, batching, prediction_log, store_grace_seconds, max_body_mb, cache"
    )


def test_wrong_type_says_expected_and_found(problems: Problems) -> None:
    assert problems(
        """\
        name: demo
        serve:
          workers: many
        """
    )[1:] == ["  line 3: serve.workers: expected an integer, found 'many'"]


def test_number_where_a_string_is_expected_suggests_quotes(problems: Problems) -> None:
    assert problems("name: demo\nmodel: {task: regression, target: 2019}\n")[1:] == [
        "  line 2: model.target: expected a string, found 2019; "
        "put it in quotes to make it a string"
    ]


def test_bad_enum_lists_values_and_suggests_one(problems: Problems) -> None:
    assert problems(
        """\
        name: demo
        model:
          task: regresion
          target: y
        """
    )[1:] == [
        "  line 3: model.task: expected one of 'binary_classification', "
        "'multiclass_classification', 'regression', found 'regresion'; did you mean 'regression'?"
    ]


def test_bad_literal_lists_values(problems: Problems) -> None:
    assert problems("name: demo\nserve: {runtime: onx}\n")[1:] == [
        "  line 2: serve.runtime: expected one of 'auto', 'onnx', 'native', found 'onx';"
        " did you mean 'onnx'?"
    ]


def test_missing_required_key_is_reported_on_the_parent_line(problems: Problems) -> None:
    assert problems(
        """\
        name: demo

        model:
          task: regression
        """
    ) == [
        "conveyor.yaml: 1 problem",
        "  line 3: model.target: missing required key 'target' (Column to predict)",
    ]


def test_missing_name_is_reported_on_the_first_line_of_the_mapping(problems: Problems) -> None:
    lines = problems("# my project\n\ndescription: no name\n")
    assert lines[1].startswith("  line 3: name: missing required key 'name'")


def test_name_pattern_is_explained(problems: Problems) -> None:
    assert problems("name: Flights Delay\n")[1:] == [
        "  line 1: name: expected a name of lowercase letters, digits, '-' and '_' that starts "
        "with a letter or digit and has at most 63 characters (e.g. 'flights-delay'), "
        "found 'Flights Delay'"
    ]


def test_discriminator_typo_suggests_the_tag_and_points_at_the_type_key(
    problems: Problems,
) -> None:
    assert problems(
        """\
        name: demo
        sources:
          flights:
            path: data/flights.csv
            type: fiel
        """
    ) == [
        "conveyor.yaml: 1 problem",
        "  line 5: sources.flights.type: unknown type 'fiel'; expected one of 'file', 'sql', "
        "'http'; did you mean 'file'?",
    ]


def test_missing_discriminator(problems: Problems) -> None:
    assert problems("name: demo\nsources:\n  flights: {path: x.csv}\n")[1:] == [
        "  line 3: sources.flights.type: missing required key 'type' (one of 'file', 'sql', 'http')"
    ]


def test_scalar_where_a_tagged_mapping_is_expected(problems: Problems) -> None:
    assert problems("name: demo\nsources:\n  flights: data.csv\n")[1:] == [
        "  line 3: sources.flights: expected a mapping with a 'type' key (one of 'file', "
        "'sql', 'http'), found 'data.csv'"
    ]


def test_union_tags_never_appear_in_paths(problems: Problems) -> None:
    lines = problems(
        """\
        name: demo
        sources:
          flights: {type: file, path: x.csv, pathh: y}
          api:
            type: http
            url: https://api.test/v1
            pagination: {type: cursor, feild: next}
        model:
          task: regression
          target: y
          tune:
            space:
              lr: {type: float, low: 0.5, high: 0.1}
        """
    )
    assert lines[1:] == [
        "  line 3: sources.flights.pathh: unknown key 'pathh'; did you mean 'path'?",
        "  line 7: sources.api.pagination.feild: unknown key 'feild'; did you mean 'field'?",
        "  line 7: sources.api.pagination.field: missing required key 'field' (Dotted path of "
        "the next cursor in the response body (e.g. 'meta.next'))",
        "  line 13: model.tune.space.lr.low: low (0.5) must be less than high (0.1)",
    ]


def test_invalid_mapping_key_is_reported_with_its_rule(problems: Problems) -> None:
    assert problems("name: demo\nsources:\n  my-data: {type: file, path: x}\n")[1:] == [
        "  line 3: sources.my-data: invalid key: expected an identifier of letters, digits and "
        "'_' that does not start with a digit (usable as a SQL table or Python name, e.g. "
        "'flights'), found 'my-data'"
    ]


def test_list_items_are_addressed_by_index(problems: Problems) -> None:
    assert problems(
        """\
        name: demo
        rollout:
          steps: [10, 50, 30, 100]
        """
    )[1:] == [
        "  line 3: rollout.steps[2]: steps must increase: 30 does not exceed the step before it"
        " (50)"
    ]


def test_items_of_a_block_list_get_their_own_line(problems: Problems) -> None:
    assert problems(
        """\
        name: demo
        monitor:
          alerts:
            - on: drift
              webhook: https://hooks.test/a
            - on: drfit
              webhook: https://hooks.test/b
        """
    )[1:] == [
        "  line 6: monitor.alerts[1].on: expected one of 'drift', 'quality_drop', 'rollback', "
        "'retrain', 'run_failed', 'error_rate', 'latency', found 'drfit'; did you mean 'drift'?"
    ]


def test_odd_keys_are_quoted_in_paths(problems: Problems) -> None:
    assert problems(
        """\
        name: demo
        schema:
          columns:
            "dep.time": {type: int, max: 1, min: 2}
        """
    )[1:] == ['  line 4: schema.columns["dep.time"].min: min (2) is greater than max (1)']


def test_duplicate_keys_are_reported_with_both_lines(problems: Problems) -> None:
    assert problems(
        """\
        name: demo
        serve:
          workers: 2
          port: 8080
          workers: 4
        """
    ) == [
        "conveyor.yaml: 1 problem",
        "  line 5: serve.workers: duplicate key 'workers' (also on line 3); YAML keeps only the "
        "last one, so remove or rename one of them",
    ]


def test_merge_keys_are_not_duplicates(parse: Callable[..., LoadedSpec]) -> None:
    loaded = parse(
        """\
        name: demo
        steps:
          a: {run: "m:f", config: &base {k: 1, j: 1}}
          b: {run: "m:f", config: {<<: *base, k: 2}}
        """
    )
    assert loaded.spec.steps["b"].config == {"k": 2, "j": 1}


def test_lines_of_merged_keys_point_at_their_definition(problems: Problems) -> None:
    assert problems(
        """\
        name: demo
        serve:
          batching:
            <<: &fast
              max_batch_size: 0
            max_wait_ms: 1
        """
    )[1:] == ["  line 5: serve.batching.max_batch_size: expected a number of at least 1, found 0"]


def test_several_problems_are_reported_at_once_in_line_order(problems: Problems) -> None:
    lines = problems(
        """\
        name: demo
        serve:
          runtime: onx
        model:
          task: regression
          target: y
          algorithm: lgbm
        modle: {}
        monitor:
          alerts: [{on: drift, webhook: "${HOOK}"}]
          retrain: {schedule: "0 3 * *"}
        """
    )
    assert lines[0] == "conveyor.yaml: 5 problems"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "  line 3",
        "  line 7",
        "  line 8",
        "  line 10",
        "  line 11",
    ]
    assert "monitor.alerts[0].webhook: environment variable HOOK is not set" in lines[4]
    assert lines[5] == (
        "  line 11: monitor.retrain.schedule: expected a cron expression of 5 fields (minute "
        "hour day-of-month month day-of-week), e.g. '0 3 * * 1' for Mondays at 03:00, or "
        "@hourly/@daily/@weekly/@monthly, found '0 3 * *'"
    )


def test_malformed_yaml_gives_line_column_and_the_problem(problems: Problems) -> None:
    assert problems("name: demo\nmodel:\n  task: a: b\n") == [
        "conveyor.yaml: line 3, column 10: invalid YAML: mapping values are not allowed here; "
        "a ':' followed by a space inside a value needs quotes, or the indentation is off"
    ]


def test_unclosed_quote_names_where_it_started(problems: Problems) -> None:
    assert problems('name: "demo\nmodel: {}\n') == [
        "conveyor.yaml: line 3, column 1: invalid YAML: found unexpected end of stream (while "
        "scanning a quoted scalar that started on line 1, column 7)"
    ]


def test_tabs_are_explained(problems: Problems) -> None:
    lines = problems("name: demo\nserve:\n\tworkers: 2\n")
    assert lines[0].startswith("conveyor.yaml: line 3, column 1: invalid YAML: found character")
    assert lines[0].endswith("; indent with spaces, not tabs")


def test_several_documents_are_rejected(problems: Problems) -> None:
    assert problems("name: a\n---\nname: b\n") == [
        "conveyor.yaml: line 2, column 1: invalid YAML: a second document starts here ('---'); "
        "a spec is one document, so remove the '---' line or split the file"
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing yet\n", "---\n"])
def test_empty_file(problems: Problems, text: str) -> None:
    assert problems(text) == [
        "conveyor.yaml: the file is empty; expected a mapping of sections such as 'name:', "
        "'sources:' and 'model:' (run `conveyor init` for a starting point)"
    ]


@pytest.mark.parametrize(
    ("text", "found"), [("- name: demo\n", "a list"), ("demo\n", "the value 'demo'")]
)
def test_top_level_must_be_a_mapping(problems: Problems, text: str, found: str) -> None:
    assert problems(text) == [
        "conveyor.yaml: 1 problem",
        "  line 1: the top level must be a mapping of sections such as 'name:', 'sources:' and "
        f"'model:', found {found}",
    ]


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    path = tmp_path / "conveyor.yaml"
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}: no such file; run `conveyor init` to create one"


def test_a_folder_means_its_conveyor_yaml(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"conveyor\.yaml: no such file; run `conveyor init`"):
        load_spec(tmp_path)
    (tmp_path / "conveyor.yaml").write_text("name: demo\n", encoding="utf-8")
    assert load_spec(tmp_path).path == tmp_path / "conveyor.yaml"


def test_errors_name_the_file_they_came_from(tmp_path: Path) -> None:
    path = tmp_path / "conveyor.yaml"
    path.write_text("name: demo\nmodle: {}\n", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value).splitlines()[0] == f"{path}: 1 problem"


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "conveyor.yaml"
    path.write_bytes(b"name: d\xe9mo\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == (
        f"{path}: not UTF-8 text (byte 0xe9 at offset 7); save the file as UTF-8"
    )


def test_python_tags_are_refused_by_the_safe_loader(problems: Problems) -> None:
    lines = problems("name: !!python/object/apply:os.system ['true']\n")
    assert lines[0].startswith("conveyor.yaml: line 1, column 7: invalid YAML: could not")


def test_yaml_1_1_booleans_stay_strings(parse: Callable[..., LoadedSpec]) -> None:
    # YAML 1.1 reads `on`, `no`, `yes` as booleans: `on:` would become the key True and the
    # country code NO would become False. Only true/false are booleans here.
    loaded = parse(
        """\
        name: demo
        schema:
          columns:
            country: {type: str, allowed: [NO, SE, "on"]}
        monitor:
          alerts: [{on: drift, webhook: "https://hooks.test/a"}]
        """
    )
    assert loaded.raw["schema"]["columns"]["country"]["allowed"] == ["NO", "SE", "on"]
    assert loaded.spec.monitor.alerts[0].on == "drift"
    assert (
        parse("name: demo\nserve: {batching: {enabled: false}}\n").spec.serve.batching.enabled
        is False
    )


def test_recursive_aliases_are_rejected(problems: Problems) -> None:
    assert problems("name: demo\nsteps:\n  a: {run: 'm:f', config: &c {self: *c}}\n") == [
        "conveyor.yaml: 1 problem",
        "  line 3: steps.a.config.self: an alias (*name) refers to a value that contains the "
        "alias itself; recursive values are not allowed",
    ]


def test_parse_spec_keeps_the_text_and_has_no_path(parse: Callable[..., LoadedSpec]) -> None:
    loaded = parse("name: demo  # comment\n")
    assert loaded.text == "name: demo  # comment\n"
    assert loaded.path is None
    assert loaded.raw == {"name": "demo"}
