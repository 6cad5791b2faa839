"""Leases: named locks that expire, so one process acts while its peers stand by.

The rollout controller takes the lease ``controller:<project>`` and renews it well within its
time to live; if the holder dies, the lease expires and a standby takes over. Acquiring is one
``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` statement, atomic on both backends: it inserts a
free lease, or takes over one that expired or that the caller already holds (renewing it).
On PostgreSQL "expired" is judged by the database server's clock, which every machine shares;
a SQLite store lives on one machine and uses its clock.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from sqlalchemy import case, delete, func, or_, select

from . import _convert as cv
from . import _deploy_convert as dc
from ._base import StoreBase
from ._tables import LeaseRow

__all__ = ["LeaseStore"]


class LeaseStore(StoreBase):
    """Named leases with a holder and an expiry; at most one unexpired holder per name."""

    def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take or renew the lease ``name`` for ``holder`` for ``ttl_s`` seconds.

        Succeeds when the lease is free, expired, or already held by ``holder`` (then its
        expiry moves to ``ttl_s`` seconds from now). Of several processes racing for a free
        lease, exactly one wins.

        Args:
            name: The lease, e.g. ``controller:churn``.
            holder: Identity of the caller, unique among contenders (e.g.
                ``{hostname}:{pid}:{random}``).
            ttl_s: Seconds the lease lasts unless renewed; renew well before (e.g. every
                ``ttl_s / 3``), and stop acting when a renewal fails.

        Returns:
            Whether ``holder`` holds the lease now.
        """
        dc.text(name, "lease name")
        dc.text(holder, "lease holder")
        if isinstance(ttl_s, bool) or not isinstance(ttl_s, int | float):
            raise ValueError(f"ttl_s must be a number of seconds, got {ttl_s!r}")
        if not math.isfinite(ttl_s) or ttl_s <= 0:
            raise ValueError(f"ttl_s must be a positive number of seconds, got {ttl_s!r}")
        now = self._now()
        insert = self._insert()(LeaseRow).values(
            name=name, holder=holder, acquired_at=now, expires_at=now + timedelta(seconds=ttl_s)
        )
        new = insert.excluded
        statement = insert.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "holder": new.holder,
                # A renewal keeps the time the holder first took the lease.
                "acquired_at": case(
                    (LeaseRow.holder == new.holder, LeaseRow.acquired_at), else_=new.acquired_at
                ),
                "expires_at": new.expires_at,
            },
            where=or_(LeaseRow.holder == new.holder, LeaseRow.expires_at <= now),
        ).returning(LeaseRow.holder)
        with self._write() as session:
            return session.execute(statement).first() is not None

    def release_lease(self, name: str, holder: str) -> bool:
        """Give up the lease if ``holder`` holds it, so a standby need not wait for expiry.

        Returns:
            Whether a lease of ``holder`` was released.
        """
        statement = delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder)
        with self._write() as session:
            result: Any = session.execute(statement)
            return bool(result.rowcount)

    def lease_holder(self, name: str) -> str | None:
        """Return who holds the lease now, or ``None`` if it is free or expired."""
        query = select(LeaseRow.holder).where(
            LeaseRow.name == name, LeaseRow.expires_at > self._now()
        )
        with self._read() as session:
            return session.scalar(query)

    def _now(self) -> Any:
        return func.now() if self._postgres else cv.utcnow()
