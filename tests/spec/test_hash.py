"""The spec hash ignores comments, formatting and key order, and changes with any value."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conveyor.spec import LoadedSpec

Parse = Callable[..., LoadedSpec]

BASE = """\
name: demo
model:
  task: regression
  target: price
  params: {n_estimators: 100, learning_rate: 0.1}
monitor:
  retrain: {schedule: "0 3 * * 1", cooldown: 6h}
steps:
  load: {run: "steps/load.py:load", outputs: [rows], config: {limit: 10}}
  clean: {run: "steps.clean:clean", inputs: {rows: load.rows}}
"""

SAME = """\
# the same spec, written differently
steps:
  clean:
    inputs: {rows: load.rows}     # a comment
    run: steps.clean:clean
  load:
    config:
      limit: 10
    outputs:
      - rows
    run: "steps/load.py:load"

monitor:
    retrain:
        cooldown: 360m
        schedule: '0 3 * * 1'
model:
  params:
    learning_rate: 1.0e-1
    n_estimators: 100
  target: price
  task: regression
name: demo
"""


def test_hash_ignores_comments_whitespace_key_order_and_spelling(parse: Parse) -> None:
    assert parse(BASE).sha256 == parse(SAME).sha256


def test_hash_is_a_sha256_hex_digest(parse: Parse) -> None:
    digest = parse(BASE).sha256
    assert len(digest) == 64
    assert int(digest, 16) >= 0


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("target: price", "target: cost"),
        ("learning_rate: 0.1", "learning_rate: 0.2"),
        ("cooldown: 6h", "cooldown: 7h"),
        ("limit: 10", "limit: 11"),
    ],
)
def test_hash_changes_with_any_value(parse: Parse, old: str, new: str) -> None:
    assert old in BASE
    assert parse(BASE).sha256 != parse(BASE.replace(old, new)).sha256


def test_hash_covers_expanded_values(parse: Parse) -> None:
    text = "name: demo\ndescription: ${D}\n"
    assert parse(text, {"D": "a"}).sha256 != parse(text, {"D": "b"}).sha256


def test_section_hash_only_changes_with_its_section(parse: Parse) -> None:
    base = parse(BASE)
    other_step = parse(BASE.replace("limit: 10", "limit: 11"))
    assert base.section_hash("steps", "clean") == other_step.section_hash("steps", "clean")
    assert base.section_hash("steps", "load") != other_step.section_hash("steps", "load")
    assert base.section_hash("model") == other_step.section_hash("model")
    assert parse(SAME).section_hash("steps", "load") == base.section_hash("steps", "load")


def test_section_hash_without_keys_is_the_spec_hash(parse: Parse) -> None:
    loaded = parse(BASE)
    assert loaded.section_hash() == loaded.sha256


def test_section_hash_of_a_missing_section(parse: Parse) -> None:
    with pytest.raises(KeyError, match=r"the spec has no section 'steps\.nope'"):
        parse(BASE).section_hash("steps", "nope")
