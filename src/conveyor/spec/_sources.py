"""``sources:`` — where raw data comes from: files, SQL databases, paginated HTTP APIs.

Each source is selected by its ``type`` (a discriminated union), so an unknown ``type`` or a key
that belongs to another type is reported against the right model.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from conveyor.spec._base import Scalar, SpecModel, problem_error

__all__ = [
    "CursorPagination",
    "FileFormat",
    "FileSource",
    "HttpSource",
    "NextLinkPagination",
    "OffsetPagination",
    "PagePagination",
    "Pagination",
    "Source",
    "SqlSource",
]


class FileFormat(StrEnum):
    """How a file source is read; ``auto`` picks by file extension."""

    auto = "auto"
    csv = "csv"
    parquet = "parquet"
    json = "json"
    ndjson = "ndjson"


class FileSource(SpecModel):
    """Files read by DuckDB: a path, a glob, or an fsspec URL (``s3://bucket/data/*.parquet``)."""

    type: Literal["file"] = Field(description="Source type: 'file'.")
    path: str = Field(
        min_length=1,
        description="Path relative to the project, a glob ('data/*.csv') or an fsspec URL.",
    )
    format: FileFormat = Field(
        FileFormat.auto, description="File format; 'auto' decides from the file extension."
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra reader options passed to DuckDB (e.g. {delim: ';', header: true}).",
    )


class SqlSource(SpecModel):
    """The result of a query against a SQL database (pushed down to the database)."""

    type: Literal["sql"] = Field(description="Source type: 'sql'.")
    url: str = Field(
        min_length=1,
        description="SQLAlchemy database URL; use ${VAR} for credentials so they are not stored.",
    )
    query: str = Field(min_length=1, description="SQL query run by the database.")


class _PaginationBase(SpecModel):
    max_pages: int | None = Field(
        None, ge=1, description="Stop after this many pages (default: until the last page)."
    )


class PagePagination(_PaginationBase):
    """Numbered pages: ``?page=1``, ``?page=2``, ... until a page comes back empty."""

    type: Literal["page"] = Field(description="Pagination type: 'page'.")
    param: str = Field("page", description="Query parameter carrying the page number.")
    start: int = Field(1, ge=0, description="Number of the first page.")
    size_param: str | None = Field(None, description="Query parameter carrying the page size.")
    size: int | None = Field(None, ge=1, description="Page size to request.")


class OffsetPagination(_PaginationBase):
    """Offset and limit: ``?offset=0&limit=100``, ``?offset=100&limit=100``, ..."""

    type: Literal["offset"] = Field(description="Pagination type: 'offset'.")
    offset_param: str = Field("offset", description="Query parameter carrying the offset.")
    limit_param: str = Field("limit", description="Query parameter carrying the limit.")
    limit: int = Field(100, ge=1, description="Records per request.")


class CursorPagination(_PaginationBase):
    """An opaque cursor from each response is sent back to get the next page."""

    type: Literal["cursor"] = Field(description="Pagination type: 'cursor'.")
    field: str = Field(
        description="Dotted path of the next cursor in the response body (e.g. 'meta.next')."
    )
    param: str = Field("cursor", description="Query parameter that sends the cursor back.")


class NextLinkPagination(_PaginationBase):
    """Each response holds the full URL of the next page (or a ``Link: rel=next`` header)."""

    type: Literal["next_link"] = Field(description="Pagination type: 'next_link'.")
    field: str | None = Field(
        None,
        description="Dotted path of the next URL in the response body; "
        "default: the 'Link' response header.",
    )


Pagination = Annotated[
    PagePagination | OffsetPagination | CursorPagination | NextLinkPagination,
    Field(discriminator="type"),
]
"""How an HTTP source walks through pages, selected by ``type``."""


class HttpSource(SpecModel):
    """JSON records from an HTTP API, fetched page by page with retries."""

    type: Literal["http"] = Field(description="Source type: 'http'.")
    url: str = Field(description="URL of the first page (http:// or https://).")
    method: Literal["GET", "POST"] = Field("GET", description="HTTP method.")
    params: dict[str, Scalar] = Field(
        default_factory=dict, description="Query parameters sent with every request."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Request headers; use ${VAR} for tokens so they are not stored.",
    )
    records: str | None = Field(
        None,
        description="Dotted path of the list of records in the response body "
        "(default: the body itself is the list).",
    )
    pagination: Pagination | None = Field(
        None, description="How to fetch further pages (default: a single request)."
    )
    timeout_s: float = Field(30.0, gt=0, description="Timeout of each request in seconds.")
    max_retries: int = Field(
        3, ge=0, description="Retries of a failed request (with exponential backoff)."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise problem_error(f"expected an http:// or https:// URL, found {value!r}")
        return value


Source = Annotated[FileSource | SqlSource | HttpSource, Field(discriminator="type")]
"""One data source, selected by ``type``: ``file``, ``sql`` or ``http``."""
