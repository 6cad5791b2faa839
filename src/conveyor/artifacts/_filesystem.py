"""Turning an artifact store URL into an fsspec filesystem, with errors that say what to do."""

from __future__ import annotations

from typing import Any

from conveyor.errors import ArtifactError, BackendUnavailableError

# Protocols whose fsspec implementation ships as one of our extras. Others get fsspec's own hint
# (e.g. "Please install gcsfs to access Google Storage").
_EXTRAS = {"s3": "s3", "s3a": "s3"}


def open_filesystem(url: str, storage_options: dict[str, Any]) -> tuple[Any, str]:
    """Return ``(filesystem, root path)`` for ``url``.

    fsspec is imported here rather than at module level: it costs ~0.2 s, and modules that merely
    mention the artifact store must not slow down ``import conveyor`` or ``conveyor --help``.

    Raises:
        BackendUnavailableError: The protocol's fsspec implementation is not installed.
        ArtifactError: The URL is empty or its protocol is unknown.
    """
    import fsspec.core

    if not url:
        raise ArtifactError(
            "The artifact store URL is empty: give a local folder path, or a URL such as "
            "'file:///abs/path', 'memory://name' or 's3://bucket/prefix'."
        )
    protocol = fsspec.core.split_protocol(url)[0] or "file"
    try:
        fs, root = fsspec.core.url_to_fs(url, **storage_options)
    except ImportError as err:
        extra = _EXTRAS.get(protocol)
        fix = (
            f"Install it with `pip install 'conveyor-ml[{extra}]'`."
            if extra
            else f"Install the fsspec implementation for '{protocol}://' ({err})."
        )
        raise BackendUnavailableError(
            f"The artifact store {url!r} needs the fsspec implementation for "
            f"'{protocol}://', which is not installed. {fix}"
        ) from err
    except ValueError as err:
        raise ArtifactError(
            f"The artifact store URL {url!r} is not supported: {err}. Use a local folder "
            "path or a URL fsspec knows, such as 'file://', 'memory://' or 's3://'."
        ) from err
    return fs, str(root)


def is_local(fs: Any) -> bool:
    """Whether ``fs`` is the local disk, where paths are plain OS paths."""
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)
