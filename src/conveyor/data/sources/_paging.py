"""How an HTTP source walks from one page to the next: page, offset, cursor or next link."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.spec import (
    CursorPagination,
    HttpSource,
    NextLinkPagination,
    OffsetPagination,
    PagePagination,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["PageRequest", "Pager", "PagingError", "lookup", "make_pager"]

Params = dict[str, str | int | float | bool | None]


class PagingError(ValueError):
    """The responses cannot be paged through (a loop, a bad cursor); the caller adds context."""


@dataclass(frozen=True)
class PageRequest:
    """One request: its URL and query parameters."""

    url: str
    params: Params = field(default_factory=dict)


class Pager:
    """A single request and no further page; subclasses implement the pagination types.

    ``next`` sees the page just read and returns the request for the following one, or None
    when there is none. It raises ``PagingError`` when the API would make it loop forever.
    """

    def __init__(self, config: HttpSource) -> None:
        self.config = config

    def first(self) -> PageRequest:
        """The request for the first page."""
        return PageRequest(self.config.url, dict(self.config.params))

    def next(
        self, current: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None:
        """The request for the page after ``current``, or None after the last page."""
        return None


class _PagePager(Pager):
    def __init__(self, config: HttpSource, pagination: PagePagination) -> None:
        super().__init__(config)
        self.pagination = pagination
        self._number = pagination.start

    def first(self) -> PageRequest:
        self._number = self.pagination.start
        params = dict(self.config.params)
        params[self.pagination.param] = self._number
        if self.pagination.size_param and self.pagination.size:
            params[self.pagination.size_param] = self.pagination.size
        return PageRequest(self.config.url, params)

    def next(
        self, current: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None:
        if not records:
            return None
        self._number += 1
        return PageRequest(current.url, {**current.params, self.pagination.param: self._number})


class _OffsetPager(Pager):
    def __init__(self, config: HttpSource, pagination: OffsetPagination) -> None:
        super().__init__(config)
        self.pagination = pagination
        self._offset = 0

    def first(self) -> PageRequest:
        self._offset = 0
        params = dict(self.config.params)
        params[self.pagination.offset_param] = self._offset
        params[self.pagination.limit_param] = self.pagination.limit
        return PageRequest(self.config.url, params)

    def next(
        self, current: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None:
        # Advance by what came back, not by the limit asked for: a server that caps the limit
        # lower must not make us skip records. Stop at the first empty page.
        if not records:
            return None
        self._offset += len(records)
        return PageRequest(
            current.url, {**current.params, self.pagination.offset_param: self._offset}
        )


class _CursorPager(Pager):
    def __init__(self, config: HttpSource, pagination: CursorPagination) -> None:
        super().__init__(config)
        self.pagination = pagination

    def next(
        self, current: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None:
        found, cursor = lookup(body, self.pagination.field)
        if not found or cursor is None or cursor == "":
            return None
        if isinstance(cursor, dict | list):
            raise PagingError(
                f"the cursor {self.pagination.field!r} is a JSON "
                f"{'object' if isinstance(cursor, dict) else 'array'}, not a value to send back"
            )
        if cursor == current.params.get(self.pagination.param):
            raise PagingError(
                f"the API returned the cursor it was sent ({self.pagination.field!r} = "
                f"{cursor!r}), so paging would never end; check `pagination.field`"
            )
        return PageRequest(current.url, {**current.params, self.pagination.param: cursor})


class _NextLinkPager(Pager):
    def __init__(self, config: HttpSource, pagination: NextLinkPagination) -> None:
        super().__init__(config)
        self.pagination = pagination

    def next(
        self, current: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None:
        if self.pagination.field is None:
            link = response.links.get("next", {}).get("url")
        else:
            found, link = lookup(body, self.pagination.field)
            if found and link is not None and not isinstance(link, str):
                raise PagingError(
                    f"the next link {self.pagination.field!r} is a {type(link).__name__}, not a URL"
                )
        if not link:
            return None
        # The link may be relative; it carries its own query, so params are not added again.
        url = str(response.url.join(link))
        if url == str(response.url):
            raise PagingError(
                "the next link points back to the same page, so paging would never end"
            )
        return PageRequest(url, {})


def make_pager(config: HttpSource) -> Pager:
    """The pager for the source's ``pagination`` (a single request when there is none)."""
    pagination = config.pagination
    if isinstance(pagination, PagePagination):
        return _PagePager(config, pagination)
    if isinstance(pagination, OffsetPagination):
        return _OffsetPager(config, pagination)
    if isinstance(pagination, CursorPagination):
        return _CursorPager(config, pagination)
    if isinstance(pagination, NextLinkPagination):
        return _NextLinkPager(config, pagination)
    return Pager(config)


def lookup(body: Any, path: str) -> tuple[bool, Any]:
    """The value at a dotted path (``meta.next``) in a JSON body, and whether it was there."""
    value = body
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return False, None
        value = value[key]
    return True, value
