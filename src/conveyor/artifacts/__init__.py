"""Content-addressed (sha256) artifact storage on a local folder or any fsspec URL.

>>> store = ArtifactStore("/srv/project/.conveyor/artifacts")  # doctest: +SKIP
>>> ref = store.put_bytes(b"hello")  # doctest: +SKIP
>>> store.get_bytes(ref.digest)  # doctest: +SKIP
b'hello'
"""

from conveyor.artifacts._digest import CHUNK_SIZE, ArtifactRef
from conveyor.artifacts._reader import VerifyingReader
from conveyor.artifacts._store import ArtifactStore

__all__ = ["CHUNK_SIZE", "ArtifactRef", "ArtifactStore", "VerifyingReader"]
