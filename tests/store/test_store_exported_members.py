"""Pin the public API of ``conveyor.store``: changing it must be a conscious decision."""

from __future__ import annotations

import conveyor.store


def test_exported_members() -> None:
    assert set(conveyor.store.__all__) == {
        "UNSET",
        "AuditEntry",
        "CacheEntry",
        "DatasetVersionRecord",
        "MetadataStore",
        "RunRecord",
        "RunStatus",
        "StepRunRecord",
        "StepStatus",
        "Unset",
    }
    assert all(hasattr(conveyor.store, name) for name in conveyor.store.__all__)
