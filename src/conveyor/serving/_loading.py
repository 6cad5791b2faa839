"""Loading a registered model version for serving: resolve, download once, verify, warm up."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from conveyor.errors import ModelChecksumError, RegistryError, SettingsError

if TYPE_CHECKING:
    from conveyor.registry import ModelVersionInfo
    from conveyor.serving.runtimes import BaseRuntime

__all__ = [
    "LoadedModel",
    "ResolvedModel",
    "load_model",
    "load_resolved",
    "parse_model_uri",
    "resolve_model",
]

logger = logging.getLogger(__name__)

RuntimeChoice = Literal["auto", "onnx", "native"]


MODEL_SHA_TAG: Final = "conveyor.model_sha256"
ONNX_SHA_TAG: Final = "conveyor.onnx_sha256"
ONNX_VERIFIED_TAG: Final = "conveyor.onnx_verified"
ONNX_REASON_TAG: Final = "conveyor.onnx_reason"

_CACHE_MARKER: Final = ".conveyor-source.json"
"""Written last into a cached version: which registry source the files came from."""

_URI_FORMS: Final = "models:/NAME@ALIAS or models:/NAME/VERSION (a number, or 'latest')"
_ALIAS: Final = re.compile(r"[A-Za-z0-9_\-]+")
_RUNTIMES: Final = ("auto", "onnx", "native")


@dataclass(frozen=True)
class LoadedModel:
    """A registered model version, verified and warmed up, ready to serve.

    Attributes:
        name: The registered model's name.
        version: The version number.
        runtime: The runtime that predicts (``runtime.kind`` says which).
        aliases: The version's aliases when it was loaded (``champion``, ...).
        model_sha256: The sha256 of the model folder's archive (what the registry tag holds).
        onnx_verified: Whether the version has a verified ONNX export (tag and file).
        load_seconds: Resolving, downloading (unless cached), verifying, loading and one
            warm-up prediction, in seconds.
        tags: The version's registry tags.
    """

    name: str
    version: int
    runtime: BaseRuntime
    aliases: tuple[str, ...]
    model_sha256: str
    onnx_verified: bool
    load_seconds: float
    tags: dict[str, str]

    @property
    def uri(self) -> str:
        """``models:/<name>/<version>``."""
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class ResolvedModel:
    """A registered model version whose files are in the local cache, not yet loaded.

    What :func:`resolve_model` found in the registry; picklable, so a server resolves each
    model once (MLflow is slow to import and to connect) and its workers only load the files.
    """

    name: str
    version: int
    aliases: tuple[str, ...]
    source: str
    tags: dict[str, str]
    model_dir: Path
    onnx_path: Path | None


def parse_model_uri(uri: str) -> tuple[str, str]:
    """The model name and version reference of ``models:/NAME@ALIAS`` or ``models:/NAME/3``.

    The reference is ``"@ALIAS"`` for an alias, the number (``"3"``) or ``"latest"``; pass
    it to :meth:`ModelRegistry.get <conveyor.registry.ModelRegistry.get>`.

    Raises:
        SettingsError: ``uri`` has neither form; the message shows both.
    """
    text = str(uri).strip()
    rest = text.removeprefix("models:/")
    if rest == text or not rest:
        raise SettingsError(f"model URI {uri!r} is not a model URI; use {_URI_FORMS}")
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        if name and "/" not in name and _ALIAS.fullmatch(alias):
            return name, "@" + alias
    else:
        name, _, ref = rest.rpartition("/")
        if name and "/" not in name and ((ref.isdigit() and int(ref) > 0) or ref == "latest"):
            return name, str(int(ref)) if ref.isdigit() else ref
    raise SettingsError(f"model URI {uri!r} names no version or alias; use {_URI_FORMS}")


def load_model(
    uri: str,
    *,
    tracking_uri: str,
    cache_dir: Path,
    runtime: RuntimeChoice = "auto",
    threads: int = 1,
) -> LoadedModel:
    """Resolve ``uri`` in the registry, fetch the version's files and make it ready to serve.

    :func:`resolve_model` then :func:`load_resolved`; see them for the details.

    Args:
        uri: ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``.
        tracking_uri: MLflow's tracking (and registry) URI.
        cache_dir: Where downloaded versions are kept.
        runtime: ``"auto"`` (ONNX when the version's export is verified, else native),
            ``"onnx"`` or ``"native"``.
        threads: Threads per prediction (1 per worker in a multi-worker server).

    Raises:
        SettingsError: ``uri``, ``runtime`` or ``threads`` is invalid.
        ModelVersionNotFoundError: No such model, version or alias.
        ModelChecksumError: The files differ from what was registered.
        RegistryError: ``runtime="onnx"`` for a version without a verified ONNX export, or
            the version holds no Conveyor model.
        TrackingError: MLflow cannot be reached.
    """
    started = time.perf_counter()
    _check_settings(runtime, threads)
    resolved = resolve_model(uri, tracking_uri=tracking_uri, cache_dir=cache_dir)
    return load_resolved(resolved, runtime=runtime, threads=threads, started=started)


def _check_settings(runtime: str, threads: int) -> None:
    if runtime not in _RUNTIMES:
        raise SettingsError(f"runtime {runtime!r} is not one of {', '.join(_RUNTIMES)}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise SettingsError(f"threads must be a whole number of at least 1, not {threads!r}")


def resolve_model(uri: str, *, tracking_uri: str, cache_dir: Path) -> ResolvedModel:
    """Find ``uri`` in the registry and make sure its files are in ``cache_dir``.

    The version's MLflow model is downloaded into ``cache_dir/<name>/<version>/`` unless a
    copy of the same registry source is there already, so restarts skip the download; the
    copy appears atomically, so processes resolving at once do not clash.

    Raises:
        SettingsError: ``uri`` is invalid.
        ModelVersionNotFoundError: No such model, version or alias.
        RegistryError: The version holds no Conveyor model.
        TrackingError: MLflow cannot be reached.
    """
    from conveyor.registry import ModelRegistry, connect

    name, ref = parse_model_uri(uri)
    info = ModelRegistry(connect(tracking_uri), name).get(ref)
    local = _fetch(info, Path(cache_dir), tracking_uri)
    model_dir, onnx_path = _artifact_paths(info, local)
    return ResolvedModel(
        name=info.name,
        version=info.version,
        aliases=info.aliases,
        source=info.source,
        tags=dict(info.tags),
        model_dir=model_dir,
        onnx_path=onnx_path,
    )


def load_resolved(
    resolved: ResolvedModel,
    *,
    runtime: RuntimeChoice = "auto",
    threads: int = 1,
    started: float | None = None,
) -> LoadedModel:
    """Verify a resolved version's files, load its runtime and warm it up (no MLflow needed).

    The model folder is checked against the tag ``conveyor.model_sha256`` (and the ONNX file
    against ``conveyor.onnx_sha256`` when ONNX is used); a version registered without that
    tag is loaded with a warning. Before returning, the runtime predicts once on a row of
    missing values, so the first request is not slow.

    Raises:
        SettingsError: ``runtime`` or ``threads`` is invalid.
        ModelChecksumError: The files differ from what was registered.
        RegistryError: ``runtime="onnx"`` for a version without a verified ONNX export.
    """
    from conveyor.serving.runtimes import NativeRuntime, OnnxRuntime

    started = time.perf_counter() if started is None else started
    _check_settings(runtime, threads)
    info, model_dir, onnx_path = resolved, resolved.model_dir, resolved.onnx_path
    model_sha256 = _verify_model(info, model_dir)
    onnx_verified = info.tags.get(ONNX_VERIFIED_TAG) == "true" and onnx_path is not None
    loaded: BaseRuntime
    if runtime == "onnx" and not onnx_verified:
        raise RegistryError(_no_onnx_message(info, onnx_path))
    if runtime != "native" and onnx_verified and onnx_path is not None:
        _verify_onnx(info, onnx_path)
        loaded = OnnxRuntime(model_dir, onnx_path, threads=threads).load()
    else:
        loaded = NativeRuntime(model_dir, threads=threads).load()
    loaded.warm_up()
    seconds = time.perf_counter() - started
    logger.info(
        "loaded version %s of %r with the %s runtime in %.2fs",
        info.version,
        info.name,
        loaded.kind,
        seconds,
    )
    return LoadedModel(
        name=info.name,
        version=info.version,
        runtime=loaded,
        aliases=info.aliases,
        model_sha256=model_sha256,
        onnx_verified=onnx_verified,
        load_seconds=seconds,
        tags=dict(info.tags),
    )


def _fetch(info: ModelVersionInfo, cache_dir: Path, tracking_uri: str) -> Path:
    """The version's MLflow model folder in the cache, downloaded if not there already."""
    import mlflow.artifacts

    from conveyor.registry._client import mlflow_errors

    dest = cache_dir / info.name / str(info.version)
    marker = {"name": info.name, "version": info.version, "source": info.source}
    if _cached_source(dest) == marker:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{info.version}-", dir=dest.parent))
    try:
        with mlflow_errors(f"cannot download version {info.version} of model {info.name!r}"):
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{info.name}/{info.version}",
                dst_path=str(staging),
                tracking_uri=tracking_uri,
            )
        (staging / _CACHE_MARKER).write_text(json.dumps(marker), encoding="utf-8")
        if dest.exists():
            # A stale copy (the version number now names another model): replace it.
            shutil.rmtree(dest, ignore_errors=True)
        try:
            staging.rename(dest)
        except OSError:
            # Another worker finished the same download first; use its copy.
            if _cached_source(dest) != marker:
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def _cached_source(dest: Path) -> object:
    try:
        return json.loads((dest / _CACHE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _artifact_paths(info: ModelVersionInfo, local: Path) -> tuple[Path, Path | None]:
    """The Conveyor model folder and the ONNX file (None if absent) of a downloaded version."""
    import yaml

    from conveyor.registry._pyfunc import MODEL_ARTIFACT, ONNX_ARTIFACT

    try:
        mlmodel = yaml.safe_load((local / "MLmodel").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise RegistryError(
            f"version {info.version} of {info.name!r} ({info.source}) has no readable MLmodel "
            f"file in {local}: {err}"
        ) from err
    pyfunc = (mlmodel.get("flavors") or {}).get("python_function") or {}
    artifacts = pyfunc.get("artifacts") or {}
    model_path = (artifacts.get(MODEL_ARTIFACT) or {}).get("path")
    onnx_path = (artifacts.get(ONNX_ARTIFACT) or {}).get("path")
    model_dir = local / model_path if model_path else None
    if model_dir is None or not (model_dir / "manifest.json").is_file():
        raise RegistryError(
            f"version {info.version} of {info.name!r} ({info.source}) is not a Conveyor "
            "model: it has no 'model' artifact with a manifest.json"
        )
    onnx = local / onnx_path if onnx_path else None
    return model_dir, onnx if onnx is not None and onnx.is_file() else None


def _verify_model(info: ResolvedModel, model_dir: Path) -> str:
    from conveyor.train._archive import pack_model

    found = hashlib.sha256(pack_model(model_dir)).hexdigest()
    expected = info.tags.get(MODEL_SHA_TAG)
    if expected is None:
        logger.warning(
            "version %s of model %r has no %s tag (registered outside Conveyor?), so its "
            "files cannot be verified; loading it anyway (sha256 %s)",
            info.version,
            info.name,
            MODEL_SHA_TAG,
            found,
        )
    elif found != expected:
        raise ModelChecksumError(
            _checksum_message(info, "model folder", model_dir, expected, found)
        )
    return found


def _verify_onnx(info: ResolvedModel, onnx_path: Path) -> None:
    from conveyor.digests import digest_file

    found = digest_file(onnx_path)
    expected = info.tags.get(ONNX_SHA_TAG)
    if expected is None:
        logger.warning(
            "version %s of model %r has no %s tag, so its ONNX file cannot be verified",
            info.version,
            info.name,
            ONNX_SHA_TAG,
        )
    elif found != expected:
        raise ModelChecksumError(_checksum_message(info, "ONNX file", onnx_path, expected, found))


def _checksum_message(info: ResolvedModel, what: str, path: Path, expected: str, found: str) -> str:
    return (
        f"version {info.version} of model {info.name!r}: the {what} {path} has sha256 {found}, "
        f"but the registry recorded {expected}; the model files were changed after "
        "registration; re-register or restore them"
    )


def _no_onnx_message(info: ResolvedModel, onnx_path: Path | None) -> str:
    verified = info.tags.get(ONNX_VERIFIED_TAG)
    if verified == "true":
        why = "its registry entry says the export was verified, but the model has no ONNX file"
    elif verified is None:
        why = f"it has no {ONNX_VERIFIED_TAG} tag (registered outside Conveyor?)"
    else:
        reason = info.tags.get(ONNX_REASON_TAG)
        why = "its ONNX export was not verified" + (f" ({reason})" if reason else "")
        if onnx_path is None:
            why += " and was not logged"
    return (
        f"version {info.version} of model {info.name!r} cannot be served with the onnx "
        f"runtime: {why}; serve it with runtime 'auto' or 'native'"
    )
