"""Writing the rendered files: re-rendering is safe, hand edits are never lost silently."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conveyor.deploy.k8s import write_files
from conveyor.errors import ProjectError

Render = Callable[..., Any]


def test_write_then_rewrite_reports_each_file(render: Render, tmp_path: Path) -> None:
    out = tmp_path / "out"
    files = render().rendering.files
    first = write_files(files, out)
    assert [(path.name, status) for path, status in first] == [
        (file.name, "created") for file in files
    ]
    for file in files:
        assert (out / file.name).read_text(encoding="utf-8") == file.text
    again = write_files(files, out)
    assert {status for _, status in again} == {"unchanged"}

    changed = render(image="registry.example.com/fraud:2").rendering.files
    statuses = {path.name: status for path, status in write_files(changed, out)}
    assert statuses["server-deployment.yaml"] == "updated"
    assert statuses["controller-deployment.yaml"] == "updated"
    assert statuses["server-pdb.yaml"] == "unchanged"
    assert "registry.example.com/fraud:2" in (out / "server-deployment.yaml").read_text()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary left


def test_hand_edited_files_are_refused_unless_forced(render: Render, tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_files(render().rendering.files, out)
    edited = out / "server-service.yaml"
    edited.write_text(edited.read_text() + "# my change\n", encoding="utf-8")
    foreign = out / "Dockerfile"
    foreign.write_text("FROM scratch\n", encoding="utf-8")
    newer = render(image="registry.example.com/fraud:2").rendering.files

    with pytest.raises(ProjectError) as refused:
        write_files(newer, out)
    message = str(refused.value)
    assert str(edited) in message and str(foreign) in message
    assert "--force" in message
    assert "fraud:2" not in (out / "server-deployment.yaml").read_text()  # nothing written
    assert edited.read_text().endswith("# my change\n")

    forced = {path.name: status for path, status in write_files(newer, out, force=True)}
    assert forced["server-service.yaml"] == "updated" and forced["Dockerfile"] == "updated"
    assert "# my change" not in edited.read_text()
    assert "fraud:2" in (out / "server-deployment.yaml").read_text()


def test_unwritable_output_is_one_clear_error(render: Render, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ProjectError, match=r"cannot write the manifests in .*--out"):
        write_files(render().rendering.files, blocker / "k8s")
