"""Loading registered versions for serving: URIs, runtime choice, cache, checksums, warm-up."""

from __future__ import annotations

import hashlib
import logging
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest

from conveyor.errors import (
    ModelChecksumError,
    ModelVersionNotFoundError,
    RegistryError,
    SettingsError,
)
from conveyor.serving import (
    LoadedModel,
    NativeRuntime,
    OnnxRuntime,
    columns_from_records,
    load_model,
    parse_model_uri,
)
from conveyor.train._archive import pack_model

from .conftest import RegisteredModel, RegisterVersion


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/flights@champion", ("flights", "@champion")),
        ("models:/flights/3", ("flights", "3")),
        (" models:/flights/03 ", ("flights", "3")),
        ("models:/flights/latest", ("flights", "latest")),
        ("models:/my-model_2@challenger-b", ("my-model_2", "@challenger-b")),
    ],
)
def test_model_uris_name_a_model_and_a_version_or_alias(
    uri: str, expected: tuple[str, str]
) -> None:
    assert parse_model_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "flights",
        "models:/",
        "models:/flights",
        "models:/flights/",
        "models:/flights/0",
        "models:/flights/Production",
        "models:/flights@",
        "models:/@champion",
        "models:/a/b/3",
        "runs:/abc123/model",
        "models:/flights@champ ion",
    ],
)
def test_a_bad_uri_is_refused_with_the_accepted_forms(uri: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_model_uri(uri)
    message = str(caught.value)
    assert repr(uri) in message
    assert "models:/NAME@ALIAS or models:/NAME/VERSION" in message


def _load(
    model: RegisteredModel, cache: Path, uri: str | None = None, **options: Any
) -> LoadedModel:
    return load_model(uri or model.uri, tracking_uri=model.tracking_uri, cache_dir=cache, **options)


def _probabilities(loaded: LoadedModel, model: RegisteredModel) -> np.ndarray[Any, Any]:
    columns = columns_from_records(model.rows, loaded.runtime.feature_schema)
    proba = loaded.runtime.predict(columns).probabilities
    assert proba is not None
    return proba


def test_a_verified_version_loads_with_onnx_by_number_and_alias(
    registered_model: RegisteredModel, tmp_path: Path
) -> None:
    loaded = _load(registered_model, tmp_path)
    assert isinstance(loaded.runtime, OnnxRuntime)
    assert (loaded.name, loaded.version) == (registered_model.name, registered_model.version)
    assert loaded.aliases == ("champion",)
    assert loaded.onnx_verified
    assert loaded.model_sha256 == hashlib.sha256(pack_model(registered_model.model_dir)).hexdigest()
    assert loaded.model_sha256 == loaded.tags["conveyor.model_sha256"]
    assert loaded.uri == registered_model.uri
    assert 0 < loaded.load_seconds < 60
    assert (tmp_path / registered_model.name / str(registered_model.version)).is_dir()

    by_alias = _load(registered_model, tmp_path, f"models:/{registered_model.name}@champion")
    assert by_alias.version == registered_model.version
    np.testing.assert_array_equal(
        _probabilities(by_alias, registered_model), _probabilities(loaded, registered_model)
    )


def test_the_native_runtime_can_be_asked_for_and_agrees(
    registered_model: RegisteredModel, tmp_path: Path
) -> None:
    native = _load(registered_model, tmp_path, runtime="native", threads=2)
    assert isinstance(native.runtime, NativeRuntime)
    assert native.runtime.threads == 2
    assert native.onnx_verified  # the version has a verified export; it is just not used
    onnx = _load(registered_model, tmp_path, runtime="onnx")
    difference = _probabilities(native, registered_model) - _probabilities(onnx, registered_model)
    assert np.abs(difference).max() <= 1e-5


def test_a_cached_version_is_not_downloaded_again(
    registered_model: RegisteredModel, tmp_path: Path
) -> None:
    _load(registered_model, tmp_path)
    folder = tmp_path / registered_model.name / str(registered_model.version)
    marker = folder / "MLmodel"
    stamp = marker.stat().st_mtime_ns
    _load(registered_model, tmp_path)
    assert marker.stat().st_mtime_ns == stamp
    # Nothing half-downloaded is left beside the cached copy.
    assert sorted(p.name for p in folder.parent.iterdir()) == [str(registered_model.version)]


def test_a_version_without_a_verified_export_falls_back_to_native(
    registered_model: RegisteredModel, register_version: RegisterVersion, tmp_path: Path
) -> None:
    name = f"no-onnx-{secrets.token_hex(3)}"
    version = register_version(name, onnx=False)
    uri = f"models:/{name}/{version}"
    loaded = _load(registered_model, tmp_path, uri)
    assert isinstance(loaded.runtime, NativeRuntime)
    assert not loaded.onnx_verified
    with pytest.raises(RegistryError) as caught:
        _load(registered_model, tmp_path, uri, runtime="onnx")
    message = str(caught.value)
    assert f"version {version} of model {name!r} cannot be served with the onnx runtime" in message
    assert "serve it with runtime 'auto' or 'native'" in message


def test_a_version_registered_outside_conveyor_loads_with_a_warning(
    registered_model: RegisteredModel,
    register_version: RegisterVersion,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = f"outside-{secrets.token_hex(3)}"
    version = register_version(name, conveyor_tags=False)
    with caplog.at_level(logging.WARNING, logger="conveyor.serving"):
        loaded = _load(registered_model, tmp_path, f"models:/{name}/{version}")
    assert isinstance(loaded.runtime, NativeRuntime)  # an unverified export is not used
    assert "has no conveyor.model_sha256 tag" in caplog.text
    assert loaded.model_sha256 in caplog.text


def test_a_changed_cached_file_is_refused(
    registered_model: RegisteredModel, tmp_path: Path
) -> None:
    loaded = _load(registered_model, tmp_path)
    folder = tmp_path / registered_model.name / str(registered_model.version)
    manifest = folder / "artifacts" / "model" / "manifest.json"
    manifest.write_text(manifest.read_text(encoding="utf-8") + " ", encoding="utf-8")
    with pytest.raises(ModelChecksumError) as caught:
        _load(registered_model, tmp_path)
    message = str(caught.value)
    assert f"version {registered_model.version} of model {registered_model.name!r}" in message
    assert loaded.model_sha256 in message  # what the registry recorded
    found = hashlib.sha256(pack_model(manifest.parent)).hexdigest()
    assert f"sha256 {found}" in message
    assert "the model files were changed after registration; re-register or restore them" in message


def test_a_changed_onnx_file_is_refused_but_native_still_loads(
    registered_model: RegisteredModel, tmp_path: Path
) -> None:
    _load(registered_model, tmp_path)
    onnx = (
        tmp_path
        / registered_model.name
        / str(registered_model.version)
        / "artifacts"
        / "model.onnx"
    )
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    with pytest.raises(ModelChecksumError, match=r"the ONNX file .* has sha256"):
        _load(registered_model, tmp_path)
    assert isinstance(_load(registered_model, tmp_path, runtime="native").runtime, NativeRuntime)


def test_a_changed_registry_artifact_is_refused(
    registered_model: RegisteredModel, register_version: RegisterVersion, tmp_path: Path
) -> None:
    import mlflow

    name = f"tampered-{secrets.token_hex(3)}"
    version = register_version(name)
    client = mlflow.MlflowClient(registered_model.tracking_uri)
    source = client.get_model_version(name, str(version)).source  # models:/m-<id>
    model_id = source.removeprefix("models:/")
    stored = Path(urlparse(client.get_logged_model(model_id).artifact_location).path)
    pickled = stored / "artifacts" / "model" / "model.pkl"
    assert pickled.is_file()
    pickled.write_bytes(pickled.read_bytes() + b"tampered")
    with pytest.raises(ModelChecksumError, match=f"version {version} of model '{name}'"):
        _load(registered_model, tmp_path, f"models:/{name}/{version}")


def test_unknown_versions_and_aliases_are_not_found(
    registered_model: RegisteredModel, tmp_path: Path
) -> None:
    for ref in ("/999", "@nobody"):
        with pytest.raises(ModelVersionNotFoundError, match="versions: "):
            _load(registered_model, tmp_path, f"models:/{registered_model.name}{ref}")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"runtime": "tensorrt"}, "runtime 'tensorrt' is not one of auto, onnx, native"),
        ({"threads": 0}, "threads must be a whole number of at least 1, not 0"),
    ],
)
def test_bad_options_are_settings_errors(
    registered_model: RegisteredModel, tmp_path: Path, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(SettingsError, match=match):
        _load(registered_model, tmp_path, **options)
