"""`conveyor init`, `validate-spec`, `run`, `runs`: the first five minutes of a new user."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from conveyor import __version__

Invoke = Callable[..., Result]


def test_version_and_help(invoke: Invoke) -> None:
    assert invoke("--version").stdout.strip() == f"conveyor {__version__}"
    result = invoke()
    for command in ("init", "validate-spec", "run", "runs", "demo"):
        assert command in result.stdout


def test_init_validate_run_then_everything_cached(invoke: Invoke, tmp_path: Path) -> None:
    created = invoke("init", "proj")
    assert created.exit_code == 0, created.output
    project = tmp_path / "proj"
    assert (project / "conveyor.yaml").is_file()
    assert (project / ".conveyor").is_dir()
    assert "# " in (project / "conveyor.yaml").read_text()  # commented for the user

    checked = invoke("--project", "proj", "validate-spec")
    assert checked.exit_code == 0, checked.output
    assert "is valid: project proj" in checked.stdout

    first = invoke("-p", "proj", "run")
    assert first.exit_code == 0, first.output
    assert "2 ran, 0 cached" in first.stdout
    assert (project / ".conveyor" / "conveyor.db").is_file()

    second = invoke("-p", "proj", "run")
    assert second.exit_code == 0, second.output
    assert "all 2 steps unchanged (cached)" in second.stdout

    listing = invoke("-p", "proj", "runs")
    assert listing.exit_code == 0, listing.output
    run_ids = re.findall(r"^│ ([0-9a-f]{8}) ", listing.stdout, flags=re.M)
    assert len(run_ids) == 2
    assert "2 (2 cached)" in listing.stdout

    shown = invoke("-p", "proj", "runs", "show", run_ids[0][:6])
    assert shown.exit_code == 0, shown.output
    assert "succeeded" in shown.stdout
    assert "summarize" in shown.stdout and "cached" in shown.stdout


def test_commands_find_the_project_by_walking_up(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke("init", "proj")
    monkeypatch.chdir(tmp_path / "proj" / "data")
    result = invoke("validate-spec")
    assert result.exit_code == 0, result.output


def test_init_refuses_to_overwrite_a_spec(invoke: Invoke, tmp_path: Path) -> None:
    invoke("init", "proj")
    spec = tmp_path / "proj" / "conveyor.yaml"
    spec.write_text("name: mine\n")
    result = invoke("init", "proj")
    assert result.exit_code == 1
    assert "already exists" in result.stderr
    assert spec.read_text() == "name: mine\n"


def test_missing_project_is_one_clear_line(invoke: Invoke) -> None:
    result = invoke("run")
    assert result.exit_code == 1
    assert "no conveyor.yaml found" in result.stderr
    assert "conveyor init" in result.stderr
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback(invoke: Invoke) -> None:
    result = invoke("--debug", "run")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr


def test_invalid_spec_names_file_key_and_line(invoke: Invoke, tmp_path: Path) -> None:
    invoke("init", "proj")
    spec = tmp_path / "proj" / "conveyor.yaml"
    spec.write_text("name: proj\nmodle: {}\n")
    for args in (("validate-spec",), ("run",)):
        result = invoke("-p", "proj", *args)
        assert result.exit_code == 1
        assert "conveyor.yaml" in result.stderr
        assert "line 2" in result.stderr
        assert "did you mean 'model'" in result.stderr


def test_malformed_yaml(invoke: Invoke, tmp_path: Path) -> None:
    invoke("init", "proj")
    (tmp_path / "proj" / "conveyor.yaml").write_text("name: proj\nsteps: [unclosed\n")
    result = invoke("-p", "proj", "validate-spec")
    assert result.exit_code == 1
    assert "line" in result.stderr
    assert "Traceback" not in result.output


def test_unwritable_state_folder(invoke: Invoke, tmp_path: Path) -> None:
    invoke("init", "proj")
    state = tmp_path / "proj" / ".conveyor"
    for child in state.iterdir():
        child.unlink()
    state.rmdir()
    state.write_text("not a folder")  # as root, permission bits cannot stop us; a file can
    result = invoke("-p", "proj", "run")
    assert result.exit_code == 1
    assert ".conveyor exists but is not a folder" in result.stderr
    assert state.read_text() == "not a folder"


def test_failing_step_then_resume(invoke: Invoke, tmp_path: Path) -> None:
    invoke("init", "proj")
    steps = tmp_path / "proj" / "steps.py"
    original = steps.read_text()
    steps.write_text(original.replace('digits = ctx.config["round"]', 'digits = ctx.config["rnd"]'))
    failed = invoke("-p", "proj", "run")
    assert failed.exit_code == 1
    assert "step 'summarize' failed after 2 attempt(s): KeyError: 'rnd'" in failed.stderr
    assert "conveyor run --resume" in failed.stderr

    steps.write_text(original)
    resumed = invoke("-p", "proj", "run", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "Resuming run (attempt 2)" in resumed.stdout
    assert "reused" in resumed.stdout

    again = invoke("-p", "proj", "run", "--resume")
    assert again.exit_code == 1
    assert "nothing to resume" in again.stderr


def test_runs_show_unknown_id(invoke: Invoke) -> None:
    invoke("init", "proj")
    result = invoke("-p", "proj", "runs", "show", "deadbeef")
    assert result.exit_code == 1
    assert "deadbeef" in result.stderr
