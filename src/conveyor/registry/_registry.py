"""Model versions of one registered model, with aliases (``champion``, ``challenger``) and audit."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from conveyor.errors import ModelVersionNotFoundError, RegistryError
from conveyor.registry._client import mlflow_errors

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from conveyor.store import MetadataStore

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "METRIC_TAG_PREFIX",
    "PREVIOUS_CHAMPION_TAG",
    "ModelRegistry",
    "ModelVersionInfo",
]

CHAMPION: Final = "champion"
CHALLENGER: Final = "challenger"
PREVIOUS_CHAMPION_TAG: Final = "conveyor.previous_champion"
METRIC_TAG_PREFIX: Final = "conveyor.metric."


@dataclass(frozen=True)
class ModelVersionInfo:
    """One registered model version, as MLflow's registry holds it.

    Attributes:
        name: The registered model's name (the project's name).
        version: The version number, from 1.
        run_id: The MLflow run that logged it, if known.
        source: Where its files are (``models:/m-...`` for models logged with MLflow 3).
        aliases: Its aliases, sorted (``champion``, ``challenger``, ...).
        tags: Its tags (Conveyor's lineage tags start with ``conveyor.``).
        created_at: When it was registered (aware, UTC).
        description: Its free-text description.
    """

    name: str
    version: int
    run_id: str | None
    source: str
    aliases: tuple[str, ...]
    tags: dict[str, str]
    created_at: datetime
    description: str

    @property
    def metrics(self) -> dict[str, float]:
        """The ``conveyor.metric.<name>`` tags as numbers (unparsable values are skipped)."""
        found = {}
        for key, value in self.tags.items():
            if key.startswith(METRIC_TAG_PREFIX):
                try:
                    found[key.removeprefix(METRIC_TAG_PREFIX)] = float(value)
                except ValueError:
                    continue
        return found

    @property
    def target(self) -> str:
        """How audit entries name this version: ``model:<name>/<version>``."""
        return f"model:{self.name}/{self.version}"


class ModelRegistry:
    """The versions of one registered model in MLflow's registry, and their aliases.

    Promotions use aliases, not MLflow's deprecated stages: ``champion`` is the version in
    production, ``challenger`` the one being tried against it. Every change of ``champion``
    or ``challenger`` appends an entry to Conveyor's audit log with who did it and why, and a
    promoted version remembers the champion it replaced (tag ``conveyor.previous_champion``)
    so :meth:`rollback` can return to it. Methods return fresh, immutable
    :class:`ModelVersionInfo` records; MLflow errors become :class:`~conveyor.errors.
    RegistryError` (or :class:`~conveyor.errors.TrackingError` when MLflow is unreachable).
    """

    def __init__(self, client: MlflowClient, name: str) -> None:
        self.client = client
        self.name = name

    def __repr__(self) -> str:
        return f"ModelRegistry({self.name!r})"

    # -- reading -------------------------------------------------------------------------

    def versions(self) -> list[ModelVersionInfo]:
        """Every version, newest first; ``[]`` when the registered model does not exist yet."""
        with mlflow_errors(f"cannot list the versions of model {self.name!r}"):
            aliases = self._aliases()
            if aliases is None:
                return []
            found: list[Any] = []
            token = None
            while True:
                page = self.client.search_model_versions(
                    f"name = '{_quote(self.name)}'", page_token=token
                )
                found.extend(page)
                token = page.token
                if not token:
                    break
        infos = [_info(mv, aliases) for mv in found]
        return sorted(infos, key=lambda info: info.version, reverse=True)

    def get(self, ref: str | int) -> ModelVersionInfo:
        """The version with number ``ref`` (``3``, ``"3"``) or alias (``champion``, ``@champion``).

        ``"latest"`` is the newest version unless an alias has that name.

        Raises:
            ModelVersionNotFoundError: no such version or alias; the message lists what exists.
        """
        key = _parse_ref(ref)
        with mlflow_errors(f"cannot read version {ref!r} of model {self.name!r}"):
            aliases = self._aliases()
            if aliases is not None:
                if isinstance(key, str) and key in aliases:
                    key = aliases[key]
                if key == "latest":
                    newest = self.versions()
                    key = newest[0].version if newest else key
                if isinstance(key, int) and self._exists(key):
                    return _info(self.client.get_model_version(self.name, str(key)), aliases)
        raise ModelVersionNotFoundError(self._not_found(ref, aliases))

    def alias(self, alias: str) -> ModelVersionInfo | None:
        """The version that holds ``alias``, or None."""
        try:
            return self.get("@" + alias.removeprefix("@"))
        except ModelVersionNotFoundError:
            return None

    # -- changing ------------------------------------------------------------------------

    def register(
        self, *, model_uri: str, run_id: str, tags: Mapping[str, str], description: str = ""
    ) -> ModelVersionInfo:
        """Register the logged model at ``model_uri`` as a new version (and the model if new).

        Waits until MLflow reports the version READY.

        Raises:
            RegistryError: MLflow refused the registration, or it did not become READY.
        """
        from mlflow.exceptions import MlflowException

        with mlflow_errors(f"cannot register {model_uri} as a version of model {self.name!r}"):
            try:
                self.client.create_registered_model(self.name)
            except MlflowException as err:
                if err.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                    raise
            created = self.client.create_model_version(
                name=self.name,
                source=model_uri,
                run_id=run_id,
                tags={str(k): str(v) for k, v in tags.items()},
                description=description or None,
                model_id=_logged_model_id(model_uri),
            )
            version = self.client.get_model_version(self.name, created.version)
        if version.status != "READY":
            raise RegistryError(
                f"version {version.version} of model {self.name!r} is {version.status}, not "
                f"READY: {version.status_message or 'no reason given'}"
            )
        return self.get(int(version.version))

    def promote(
        self, ref: str | int, *, reason: str, actor: str, store: MetadataStore
    ) -> ModelVersionInfo:
        """Make version ``ref`` the ``champion`` (it stops being ``challenger``).

        Records the replaced champion in the version's ``conveyor.previous_champion`` tag
        (``""`` if there was none) and appends an audit entry ``promote``.

        Raises:
            RegistryError: no reason given, or the version already is the champion.
            ModelVersionNotFoundError: no such version.
        """
        _require(reason)
        version = self.get(ref)
        current = self.alias(CHAMPION)
        if current is not None and current.version == version.version:
            raise RegistryError(f"version {version.version} of {self.name!r} already is champion")
        previous = None if current is None else current.version
        with mlflow_errors(f"cannot promote version {version.version} of {self.name!r}"):
            number = str(version.version)
            tag = "" if previous is None else str(previous)
            self.client.set_model_version_tag(self.name, number, PREVIOUS_CHAMPION_TAG, tag)
            self.client.set_registered_model_alias(self.name, CHAMPION, number)
            if CHALLENGER in version.aliases:
                self.client.delete_registered_model_alias(self.name, CHALLENGER)
        store.append_audit(
            actor=actor,
            action="promote",
            target=version.target,
            reason=reason,
            details={"previous": previous},
        )
        return self.get(version.version)

    def set_challenger(
        self, ref: str | int, *, reason: str, actor: str, store: MetadataStore
    ) -> ModelVersionInfo:
        """Give version ``ref`` the ``challenger`` alias and append an audit entry ``challenger``.

        Raises:
            RegistryError: no reason given, or the version is the champion.
            ModelVersionNotFoundError: no such version.
        """
        _require(reason)
        version = self.get(ref)
        if CHAMPION in version.aliases:
            raise RegistryError(
                f"version {version.version} of {self.name!r} is the champion; a challenger must "
                "be another version"
            )
        current = self.alias(CHALLENGER)
        with mlflow_errors(f"cannot make version {version.version} of {self.name!r} challenger"):
            self.client.set_registered_model_alias(self.name, CHALLENGER, str(version.version))
        store.append_audit(
            actor=actor,
            action="challenger",
            target=version.target,
            reason=reason,
            details={"previous": None if current is None else current.version},
        )
        return self.get(version.version)

    def rollback(self, *, reason: str, actor: str, store: MetadataStore) -> ModelVersionInfo:
        """Give ``champion`` back to the version the current champion replaced.

        The previous champion is the current one's ``conveyor.previous_champion`` tag or, for
        a version promoted without that tag, the latest ``promote`` entry of the audit log.
        Rolling back again goes one more step back. Appends an audit entry ``rollback``.

        Raises:
            RegistryError: no reason given, no champion, or no previous champion.
        """
        _require(reason)
        current = self.alias(CHAMPION)
        if current is None:
            raise RegistryError(
                f"model {self.name!r} has no champion to roll back; promote a version first "
                "with `conveyor models promote VERSION --reason TEXT`"
            )
        previous = self._previous_champion(current, store)
        if previous is None:
            raise RegistryError(
                f"version {current.version} of {self.name!r} has been champion since it was "
                "registered; nothing to roll back to"
            )
        try:
            target = self.get(previous)
        except ModelVersionNotFoundError as err:
            raise RegistryError(
                f"the previous champion of {self.name!r}, version {previous}, no longer exists; "
                "promote another version instead"
            ) from err
        with mlflow_errors(f"cannot roll {self.name!r} back to version {previous}"):
            self.client.set_registered_model_alias(self.name, CHAMPION, str(target.version))
        store.append_audit(
            actor=actor,
            action="rollback",
            target=target.target,
            reason=reason,
            details={"from": current.version, "to": target.version},
        )
        return self.get(target.version)

    def download(self, ref: str | int, dest: Path) -> Path:
        """Download version ``ref``'s Conveyor model folder into ``dest`` and return ``dest``.

        ``dest`` must not exist or be empty; the folder is ready for ``BaseAlgorithm.load``.

        Raises:
            RegistryError: ``dest`` is not empty, or the version holds no Conveyor model.
            ModelVersionNotFoundError: no such version.
        """
        import mlflow.artifacts
        from mlflow.models import Model

        from conveyor.registry._pyfunc import MODEL_ARTIFACT

        version = self.get(ref)
        dest = Path(dest)
        if dest.exists() and any(dest.iterdir()):
            raise RegistryError(f"cannot download into {dest}: the folder is not empty")
        with (
            tempfile.TemporaryDirectory(prefix="conveyor-download-") as tmp,
            mlflow_errors(f"cannot download version {version.version} of {self.name!r}"),
        ):
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=f"models:/{self.name}/{version.version}",
                    dst_path=tmp,
                    tracking_uri=self.client.tracking_uri,
                )
            )
            pyfunc = Model.load(str(local)).flavors.get("python_function", {})
            relative = (pyfunc.get("artifacts") or {}).get(MODEL_ARTIFACT, {}).get("path")
            folder = local / relative if relative else None
            if folder is None or not (folder / "manifest.json").is_file():
                raise RegistryError(
                    f"version {version.version} of {self.name!r} ({version.source}) is not a "
                    "Conveyor model: it has no 'model' artifact with a manifest.json"
                )
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copytree(folder, dest, dirs_exist_ok=True)
        return dest

    # -- helpers -------------------------------------------------------------------------

    def _aliases(self) -> dict[str, int] | None:
        """Alias to version number, or None when the registered model does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(self.name)
        except MlflowException as err:
            if err.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return {str(alias): int(number) for alias, number in (model.aliases or {}).items()}

    def _exists(self, number: int) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_model_version(self.name, str(number))
        except MlflowException as err:
            if err.error_code == "RESOURCE_DOES_NOT_EXIST":
                return False
            raise
        return True

    def _not_found(self, ref: str | int, aliases: Mapping[str, int] | None) -> str:
        if aliases is None:
            return (
                f"no model registered yet as {self.name!r}; run `conveyor run` to train and "
                "register one"
            )
        numbers = [info.version for info in self.versions()]
        shown = ", ".join(map(str, numbers[:20])) + (", ..." if len(numbers) > 20 else "")
        named = ", ".join(f"{a} → {v}" for a, v in sorted(aliases.items())) or "none"
        kind = "version" if isinstance(_parse_ref(ref), int) else "version or alias"
        return (
            f"model {self.name!r} has no {kind} {ref!r}; versions: {shown or 'none'}; "
            f"aliases: {named}"
        )

    def _previous_champion(self, current: ModelVersionInfo, store: MetadataStore) -> int | None:
        tag = current.tags.get(PREVIOUS_CHAMPION_TAG)
        if tag is not None:
            return int(tag) if tag.strip().isdigit() else None
        for entry in store.list_audit(target=current.target, limit=50):
            if entry.action == "promote":
                previous = entry.details.get("previous")
                return int(previous) if previous is not None else None
        return None


def _parse_ref(ref: str | int) -> int | str:
    if isinstance(ref, int):
        return ref
    text = str(ref).strip()
    if text.isdigit():
        return int(text)
    return text.removeprefix("@")


def _info(mv: Any, aliases: Mapping[str, int]) -> ModelVersionInfo:
    number = int(mv.version)
    return ModelVersionInfo(
        name=str(mv.name),
        version=number,
        run_id=mv.run_id or None,
        source=str(mv.source or ""),
        aliases=tuple(sorted(a for a, v in aliases.items() if v == number)),
        tags={str(k): str(v) for k, v in (mv.tags or {}).items()},
        created_at=datetime.fromtimestamp((mv.creation_timestamp or 0) / 1000, UTC),
        description=str(mv.description or ""),
    )


def _logged_model_id(model_uri: str) -> str | None:
    # MLflow 3 logs models as ``models:/m-<hex>``; registering one links the version to it.
    rest = model_uri.removeprefix("models:/")
    if rest != model_uri and rest.startswith("m-") and "/" not in rest:
        return rest
    return None


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _require(reason: str) -> None:
    if not reason or not reason.strip():
        raise RegistryError("a reason is required: say why, e.g. --reason 'better AUC on May data'")
