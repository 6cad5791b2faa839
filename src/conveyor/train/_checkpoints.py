"""Where a long training keeps its latest checkpoint, so a restarted one can resume."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Protocol

from conveyor.errors import TrainingError

if TYPE_CHECKING:
    from conveyor.artifacts import ArtifactStore
    from conveyor.store import MetadataStore

__all__ = ["Checkpoints", "MemoryCheckpoints", "StoreCheckpoints"]

TAG_PREFIX = "checkpoint:"
"""Run tag ``checkpoint:<step>`` points at the step's latest checkpoint."""


class Checkpoints(Protocol):
    """The latest checkpoint of one training, as opaque bytes.

    Only the latest matters: :meth:`save` replaces the previous checkpoint. The bytes are
    whatever the algorithm needs to continue bit-identically; their format is its business.
    """

    def load(self) -> bytes | None:
        """The latest checkpoint, or ``None`` if none was saved."""
        ...

    def save(self, data: bytes, epoch: int) -> None:
        """Keep ``data``, written after ``epoch`` completed epochs, as the latest checkpoint."""
        ...


class MemoryCheckpoints:
    """Keeps the latest checkpoint in memory: the default and the test double.

    It survives an exception inside one process (a second ``fit`` with the same object
    resumes), not the process itself.
    """

    def __init__(self) -> None:
        self.data: bytes | None = None
        self.epoch: int | None = None

    def load(self) -> bytes | None:
        """The latest checkpoint, or ``None``."""
        return self.data

    def save(self, data: bytes, epoch: int) -> None:
        """Replace the latest checkpoint."""
        self.data = data
        self.epoch = epoch


class StoreCheckpoints:
    """Durable checkpoints of one pipeline step: bytes in the artifact store, pointer in a tag.

    The bytes go to the content-addressed :class:`~conveyor.artifacts.ArtifactStore`; the run
    tag ``checkpoint:<step>`` holds ``{"digest": ..., "epoch": ...}`` (JSON) in the
    :class:`~conveyor.store.MetadataStore`. The artifact is written before the tag, so the tag
    never points at missing bytes; superseded checkpoints stay in the artifact store until it
    is cleaned up.
    """

    def __init__(
        self, *, store: MetadataStore, artifacts: ArtifactStore, run_id: str, step: str
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.run_id = run_id
        self.step = step

    @property
    def tag(self) -> str:
        """The run tag holding the pointer, ``checkpoint:<step>``."""
        return TAG_PREFIX + self.step

    def load(self) -> bytes | None:
        """The latest checkpoint of the step, or ``None``.

        Raises:
            TrainingError: The tag is not a checkpoint pointer.
            ArtifactNotFoundError, ArtifactCorruptedError: The bytes are gone or damaged.
        """
        pointer = self.store.get_run(self.run_id).tags.get(self.tag)
        if pointer is None:
            return None
        try:
            digest = json.loads(pointer)["digest"]
        except (ValueError, KeyError, TypeError) as err:
            raise TrainingError(
                f"run {self.run_id} tag {self.tag!r} is not a checkpoint pointer: {pointer!r}"
            ) from err
        return self.artifacts.get_bytes(digest)

    def save(self, data: bytes, epoch: int) -> None:
        """Store ``data`` and point the run's tag at it."""
        ref = self.artifacts.put_bytes(data)
        pointer = json.dumps({"digest": ref.digest, "epoch": epoch}, sort_keys=True)
        self.store.merge_run_tags(self.run_id, {self.tag: pointer})
