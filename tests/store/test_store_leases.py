"""Leases: one holder at a time, renewals, expiry and release, on every backend."""

from __future__ import annotations

import math
import time

import pytest

from conveyor.store import MetadataStore


def test_one_holder_at_a_time_until_released(store: MetadataStore, unique: str) -> None:
    name = f"controller:{unique}"
    assert store.lease_holder(name) is None

    assert store.acquire_lease(name, "alpha", 30)
    assert store.lease_holder(name) == "alpha"
    assert not store.acquire_lease(name, "beta", 30)
    assert store.acquire_lease(name, "alpha", 30)  # renewal
    assert store.lease_holder(name) == "alpha"

    assert not store.release_lease(name, "beta")  # not beta's to release
    assert store.lease_holder(name) == "alpha"
    assert store.release_lease(name, "alpha")
    assert store.lease_holder(name) is None
    assert not store.release_lease(name, "alpha")
    assert store.acquire_lease(name, "beta", 30)
    assert store.lease_holder(name) == "beta"
    assert store.acquire_lease(f"{name}-other", "alpha", 30)  # names are independent


def test_an_expired_lease_can_be_taken_over(store: MetadataStore, unique: str) -> None:
    name = f"controller:{unique}"
    assert store.acquire_lease(name, "alpha", 0.3)
    assert not store.acquire_lease(name, "beta", 30)
    time.sleep(0.5)
    assert store.lease_holder(name) is None  # expired: nobody holds it
    assert store.acquire_lease(name, "beta", 30)
    assert not store.acquire_lease(name, "alpha", 30)  # the old holder must not act again
    assert store.lease_holder(name) == "beta"


def test_renewal_extends_the_lease(store: MetadataStore, unique: str) -> None:
    name = f"controller:{unique}"
    assert store.acquire_lease(name, "alpha", 0.6)
    for _ in range(3):
        time.sleep(0.3)
        assert store.acquire_lease(name, "alpha", 0.6)
    assert store.lease_holder(name) == "alpha"  # 0.9 s after taking a 0.6 s lease


@pytest.mark.parametrize(
    ("name", "holder", "ttl_s", "match"),
    [
        ("n", "h", 0, "positive number of seconds"),
        ("n", "h", -1, "positive number of seconds"),
        ("n", "h", math.nan, "positive number of seconds"),
        ("n", "h", math.inf, "positive number of seconds"),
        ("n", "h", "10", "number of seconds"),
        ("", "h", 1, "lease name"),
        ("n", " ", 1, "lease holder"),
    ],
)
def test_invalid_arguments_are_rejected(
    store: MetadataStore, name: str, holder: str, ttl_s: float, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        store.acquire_lease(name, holder, ttl_s)
